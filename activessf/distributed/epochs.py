"""Per-epoch progress of Ray Train runs on the driver's console.

``ray.train.report`` metrics reach the Train *controller* (an actor), not the driver that called
``fit``. Ray Train V2 schedules the controller on the driver's node, so a ``UserCallback`` there
appends rank 0's record of each report to a JSON-lines file beside the run's outputs, and the
driver tails that file into a ``console.Bar`` (epochs done, loss). Several runs (folds trained at
once) append to one file; a line is one small ``write``, so lines never interleave.
"""

from __future__ import annotations

import json
import os
import threading
from contextlib import contextmanager
from typing import Any, Iterator

from ray.train import UserCallback

from activessf import console

EPOCHS_FILE = "epochs.jsonl"


class EpochLog(UserCallback):
    """Controller-side: append rank 0's reported scalars to ``path`` after every report."""

    def __init__(self, path: str) -> None:
        self.path = path

    def after_report(self, run_context: Any, metrics: list[dict], checkpoint: Any) -> None:
        if not metrics:
            return
        record = {k: v for k, v in metrics[0].items() if isinstance(v, (int, float, str))}
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(record) + "\n")


def _read_new(path: str, offset: int) -> tuple[list[dict], int]:
    """Whole lines appended to ``path`` since ``offset``; the new offset."""
    if not os.path.exists(path):
        return [], offset
    with open(path, "rb") as fh:
        fh.seek(offset)
        data = fh.read()
    end = data.rfind(b"\n") + 1
    records = [json.loads(line) for line in data[:end].splitlines() if line.strip()]
    return records, offset + end


@contextmanager
def watch_epochs(folder: str, desc: str, total: int) -> Iterator[list[UserCallback]]:
    """Show the epochs Ray Train runs report while the ``with`` body trains them.

    Args:
        folder: Local folder for ``epochs.jsonl`` (the stage's output folder).
        desc: Bar label.
        total: Epochs expected, over all runs the body starts.

    Yields:
        The callbacks to give each run's ``RunConfig(callbacks=...)``.
    """
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, EPOCHS_FILE)
    with open(path, "w", encoding="utf-8"):
        pass  # a rerun's bar counts only its own epochs
    stop = threading.Event()
    bar = console.Bar(desc, total, unit="epoch")

    def tail() -> None:
        offset = 0
        while True:
            records, offset = _read_new(path, offset)
            for rec in records:
                bar.update(1, **({"loss": rec["loss"]} if "loss" in rec else {}))
            if stop.wait(0.5):
                if not records:
                    return

    thread = threading.Thread(target=tail, name="epoch-progress", daemon=True)
    thread.start()
    try:
        yield [EpochLog(path)]
    finally:
        stop.set()
        thread.join(timeout=5)
        bar.close()
