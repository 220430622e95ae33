"""Per-epoch progress of Ray Train runs on the driver's console.

``ray.train.report`` metrics reach the Train *controller* (an actor), not the driver that called
``fit``. Ray Train V2 schedules the controller on the driver's node, so a ``UserCallback`` there
appends rank 0's record of each report to a JSON-lines file beside the run's outputs, and the
driver tails that file into a ``console.Bar`` (epochs done, loss) and hands each record to the
tracking sink (``activessf.tracking.set_epoch_sink``), which logs it to MLflow while the run
trains. Several runs (folds trained at once) append to one file; a line is one small ``write``,
so lines never interleave.
"""

from __future__ import annotations

import json
import os
import threading
from contextlib import contextmanager
from typing import Any, Iterator

from ray.train import UserCallback

from activessf import console, tracking
from activessf.io.fs import local_folder

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
        folder: The stage's output folder, where ``epochs.jsonl`` goes (for an s3:// one, a local
            scratch folder: the file is tailed while Train runs).
        desc: Bar label.
        total: Epochs expected, over all runs the body starts.

    Yields:
        The callbacks to give each run's ``RunConfig(callbacks=...)``.
    """
    folder = local_folder(folder)  # tailed locally: an s3:// output gets a scratch folder
    path = os.path.join(folder, EPOCHS_FILE)
    with open(path, "w", encoding="utf-8"):
        pass  # a rerun's bar counts only its own epochs
    stop = threading.Event()
    bar = console.Bar(desc, total, unit="epoch")
    sink = [tracking.epoch_sink()]

    def tail() -> None:
        offset = 0
        while True:
            records, offset = _read_new(path, offset)
            for rec in records:
                bar.update(1, **({"loss": rec["loss"]} if "loss" in rec else {}))
                _track(sink, rec)
            if stop.wait(0.5):
                if not records:
                    return

    thread = threading.Thread(target=tail, name="epoch-progress", daemon=True)
    thread.start()
    try:
        yield [EpochLog(path)]
    finally:
        stop.set()
        # Its last records may still be on their way to the tracking store.
        thread.join(timeout=30)
        bar.close()


def _track(sink: list, record: dict) -> None:
    """Log ``record`` through ``sink[0]``; a tracking failure is logged once and ends tracking
    of this stage's epochs (its runs are completed from the stage's files afterwards), never
    the training."""
    if sink[0] is None:
        return
    try:
        sink[0](record)
    except Exception as exc:  # noqa: BLE001 (the store is not the run's business)
        console.log(f"tracking: per-epoch logging stopped: {type(exc).__name__}: {exc}")
        sink[0] = None
