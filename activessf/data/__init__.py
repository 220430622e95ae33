"""Data shipped with the package: the embedded real sample used by ``make demo``."""

from pathlib import Path

SAMPLE_DIR = Path(__file__).resolve().parent / "sample"
SAMPLE_LABELED = SAMPLE_DIR / "pbc11" / "labeled"
SAMPLE_UNLABELED = SAMPLE_DIR / "pbc11" / "unlabeled"
# Labeled cells no stage trains on: what the demo classifies with its final model.
SAMPLE_HOLDOUT = SAMPLE_DIR / "pbc11" / "holdout"
SAMPLE_SMEARS = SAMPLE_DIR / "bccd" / "JPEGImages"
