"""The main job of ``make demo``: the whole pipeline on the embedded real sample, on CPU.

Runs ``activessf run --config configs/demo.yaml`` (regions -> a feature backbone trained on the
labeled crops -> features -> selection -> MAE pretraining on the selected crops -> 3-fold
fine-tuning of two arms, MAE w/ selection and the supervised ResNet18 -> comparison -> export of
the best arm -> predict on 11 held-back cells -> report) into ``outputs/demo``, tracked in
MLflow (``outputs/demo/mlruns``), and prints the report's path. A rerun skips finished stages.
Extra arguments go to ``activessf run`` (e.g. ``--output DIR``, ``--set finetune.optim.epochs=2``).
"""

import sys
import time
from pathlib import Path

from activessf.cli import main

CONFIG = Path(__file__).resolve().parent.parent / "configs" / "demo.yaml"

if __name__ == "__main__":
    start = time.time()
    code = main(["run", "--config", str(CONFIG), *sys.argv[1:]])
    print(f"demo finished in {time.time() - start:.0f} s (exit {code})")
    sys.exit(code)
