"""The main job of ``make demo``: the whole pipeline on the embedded real sample, on CPU.

Runs ``activessf run --config configs/demo.yaml`` (regions -> features -> selection -> MAE
pretraining with and without selection -> 5-fold fine-tuning of four arms -> comparison ->
report) into ``outputs/demo`` and prints the report's path. A rerun skips finished stages.
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
