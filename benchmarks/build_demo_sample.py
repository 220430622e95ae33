"""Build the embedded pbc11 sample of ``make demo`` from the full pbc11 set (seeded, reproducible).

    .venv/bin/python benchmarks/build_demo_sample.py [--source ../shared/data/pbc11]

Writes ``activessf/data/sample/pbc11/`` (``labeled/<CLASS>/``, ``holdout/<CLASS>/``,
``unlabeled/``), every image resized to ``--size`` px (JPEG quality 90). Per class, ``--holdout``
images are held back first (the demo classifies them with the final model; no stage trains on
them), then up to ``--per-class`` become the labeled set, so the rare classes (PMY 15, MMY 25)
keep all they have. 96 px keeps the package small while region filtering still finds each
image's central cell (measured: 66 of 66 at 96 px, 65 of 66 at 64 px) and the demo trains at 64.
"""

from __future__ import annotations

import argparse
import random
import shutil
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "activessf" / "data" / "sample" / "pbc11"


def _save(src: Path, dst: Path, size: int) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    with Image.open(src) as im:
        im.convert("RGB").resize((size, size), Image.Resampling.BICUBIC).save(dst, quality=90)


def build(source: Path, size: int, per_class: int, holdout: int, pool: int, seed: int) -> dict[str, int]:
    """Write the sample; returns how many images each part got."""
    rng = random.Random(seed)
    for part in ("labeled", "holdout", "unlabeled"):
        shutil.rmtree(OUT / part, ignore_errors=True)
    counts = {"labeled": 0, "holdout": 0, "unlabeled": 0}
    for cls_dir in sorted(p for p in (source / "labeled").iterdir() if p.is_dir()):
        files = sorted(cls_dir.glob("*.jpg"))
        rng.shuffle(files)
        for f in files[:holdout]:
            _save(f, OUT / "holdout" / cls_dir.name / f.name, size)
        for f in files[holdout:holdout + per_class]:
            _save(f, OUT / "labeled" / cls_dir.name / f.name, size)
        counts["holdout"] += len(files[:holdout])
        counts["labeled"] += len(files[holdout:holdout + per_class])
    files = sorted((source / "unlabeled").glob("*.jpg"))
    for f in sorted(rng.sample(files, pool)):
        _save(f, OUT / "unlabeled" / f.name, size)
    counts["unlabeled"] = pool
    return counts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--source", type=Path, default=ROOT.parent / "shared" / "data" / "pbc11")
    ap.add_argument("--size", type=int, default=96)
    ap.add_argument("--per-class", type=int, default=40)
    ap.add_argument("--holdout", type=int, default=1)
    ap.add_argument("--pool", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    print(build(a.source, a.size, a.per_class, a.holdout, a.pool, a.seed))


if __name__ == "__main__":
    main()
