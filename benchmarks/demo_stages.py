"""Where a pipeline run's time went: each stage's seconds and, for Ray Train stages, how much of
it was training (the longest of the runs trained at once, summed over its epochs) and how much
was everything else (process start-up, imports, data loading, checkpoints, shut-down).

    .venv/bin/python benchmarks/demo_stages.py outputs/demo [--json benchmarks/out/demo_stages.json]

Reads ``pipeline_state.json`` (stage seconds) and each Train stage's ``epochs.jsonl`` (rank 0's
per-epoch records, with ``seconds`` and ``fold``); prints a table and writes JSON.
"""

from __future__ import annotations

import argparse
import json
import os
from collections import defaultdict


def stage_times(run: str) -> list[dict]:
    """One row per finished stage: ``stage``, ``seconds``, and for Train stages ``runs``,
    ``epochs`` (over all runs), ``train_s`` (the longest run's epoch seconds) and ``other_s``."""
    with open(os.path.join(run, "pipeline_state.json"), encoding="utf-8") as fh:
        stages = json.load(fh)["stages"]
    rows = []
    for name, rec in stages.items():
        row = {"stage": name, "seconds": rec["seconds"]}
        path = os.path.join(run, name, "epochs.jsonl")
        if os.path.exists(path):
            per_run: dict[str, float] = defaultdict(float)
            epochs = 0
            with open(path, encoding="utf-8") as fh:
                for line in fh:
                    if line.strip():
                        r = json.loads(line)
                        per_run[str(r.get("fold"))] += float(r.get("seconds", 0.0))
                        epochs += 1
            train = max(per_run.values(), default=0.0)
            row |= {"runs": len(per_run), "epochs": epochs, "train_s": round(train, 1),
                    "other_s": round(rec["seconds"] - train, 1)}
        rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", help="run folder (pipeline_state.json)")
    parser.add_argument("--json", default="benchmarks/out/demo_stages.json")
    args = parser.parse_args()
    rows = stage_times(args.run)
    print(f"{'stage':34} {'s':>7} {'runs':>5} {'epochs':>7} {'train s':>8} {'other s':>8}")
    for r in rows:
        print(f"{r['stage']:34} {r['seconds']:7.1f} {r.get('runs', ''):>5} {r.get('epochs', ''):>7} "
              f"{r.get('train_s', ''):>8} {r.get('other_s', ''):>8}")
    print(f"{'sum of stages':34} {sum(r['seconds'] for r in rows):7.1f}")
    os.makedirs(os.path.dirname(args.json) or ".", exist_ok=True)
    with open(args.json, "w", encoding="utf-8") as fh:
        json.dump({"run": os.path.abspath(args.run), "stages": rows}, fh, indent=1)


if __name__ == "__main__":
    main()
