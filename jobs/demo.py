"""The main job of ``make demo``: the pipeline's stages on the embedded real sample, on CPU.

Runs what exists of the pipeline on ``activessf/data/sample`` and prints where every output is.
Output folder: ``outputs/demo`` (override with ``--output``).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from activessf.config import build_config
from activessf.data import SAMPLE_SMEARS, SAMPLE_UNLABELED
from activessf.distributed.regions import run_regions
from activessf.regions.config import RegionsConfig


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--output", default="outputs/demo")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    args = parser.parse_args(argv)
    out = Path(args.output)
    start = time.time()
    cfg = build_config(RegionsConfig, None, args.overrides, section="regions")
    for name, source in [("regions_pool", SAMPLE_UNLABELED), ("regions_smears", SAMPLE_SMEARS)]:
        print(f"== region filtering on {source}", flush=True)
        run_regions(str(source), str(out / name), cfg)
    print(f"\ndemo finished in {time.time() - start:.0f} s. Outputs:")
    for name in ("regions_pool", "regions_smears"):
        print(f"  {out / name}/contact_sheet.png   (kept boxes drawn on a sample of images)")
        print(f"  {out / name}/manifest.parquet, regions.parquet, crops/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
