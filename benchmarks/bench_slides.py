"""Whole slides through the Ray Data region stage: tiles/s, cells/s and peak memory, 1 vs N slides.

Builds synthetic pyramidal TIFF slides of about 20,000 x 20,000 px (JPEG tiles, 0.25 um/px in
the TIFF tags) from real BCCD smear fields (white-balanced, laid edge to edge in a margin of
glass, each slide a different seeded order of the fields) into ``benchmarks/out/slides/`` (built
once, reused, not committed). Then runs ``run_regions`` on Ray Data over the first slide, then
over all of them, and reports per run: tiles read and skipped (glass), cells, seconds, tiles/s,
cells/s, tiles/s per CPU, and the peak resident memory of the driver plus every Ray process
(``stage_memory.PeakSampler``; RSS sums count the shared object store once per process that
maps it, so they over-state) and of the largest single process. Flat memory from 1 to N slides
is the evidence that no slide is ever held whole.

    .venv/bin/python benchmarks/bench_slides.py --slides 1 10 --set slides.mpp=0.5
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from activessf.slides.synthetic import Mosaic, write_slide  # noqa: E402
from benchmarks.stage_memory import PeakSampler  # noqa: E402
from tests.slides.builders import GLASS, white_balance  # noqa: E402


def build_slides(folder: Path, n: int, data: Path, cols: int, rows: int, margin: int) -> list[Path]:
    """``n`` slides of ``cols`` x ``rows`` BCCD fields (different seeded orders); existing ones are kept."""
    folder.mkdir(parents=True, exist_ok=True)
    images = sorted((data / "bccd" / "JPEGImages").glob("*.jpg"))[:120]
    fields = [white_balance(cv2.imread(str(p))[..., ::-1]) for p in images]
    fields = [f for f in fields if f.shape == fields[0].shape]
    paths = []
    for k in range(n):
        path = folder / f"slide_{cols}x{rows}_{k:02d}.tif"
        if not path.exists():
            order = np.random.default_rng(k).integers(0, len(fields), cols * rows).tolist()
            started = time.perf_counter()
            tmp = path.with_suffix(".tmp")
            write_slide(str(tmp), Mosaic(fields, cols, rows, margin, order=order, glass=GLASS))
            tmp.rename(path)
            print(f"built {path.name}: {path.stat().st_size / 2**20:.0f} MiB in {time.perf_counter() - started:.0f} s",
                  flush=True)
        paths.append(path)
    return paths


def process_peak() -> int:
    """Largest RSS of any one process of this driver's tree (the driver or a Ray worker)."""
    me = psutil.Process()
    peak = 0
    for p in [me, *me.children(recursive=True)]:
        try:
            peak = max(peak, p.memory_info().rss)
        except psutil.Error:
            pass
    return peak


def run_once(paths: list[Path], overrides: list[str]) -> dict:
    """The Ray region stage over ``paths`` (a manifest of them); its counts, rates and peaks."""
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq
    import threading

    from activessf.config import build_config
    from activessf.stages.regions import run_regions
    from activessf.regions.config import RegionsConfig

    cfg = build_config(RegionsConfig, None, ["contact_sheet_images=0", *overrides])
    with tempfile.TemporaryDirectory(dir=ROOT / "benchmarks" / "out") as tmp:
        manifest = Path(tmp) / "inputs.csv"
        pacsv.write_csv(pa.table({"source_path": [str(p) for p in paths]}), str(manifest))
        single = {"peak": 0}
        stop = threading.Event()

        def watch() -> None:
            while not stop.is_set():
                single["peak"] = max(single["peak"], process_peak())
                time.sleep(0.2)

        thread = threading.Thread(target=watch, daemon=True)
        thread.start()
        with PeakSampler() as total:
            started = time.perf_counter()
            summary = run_regions(str(manifest), str(Path(tmp) / "out"), cfg, executor="ray", force=True)
            seconds = time.perf_counter() - started
        stop.set()
        thread.join()
        man = pq.read_table(Path(tmp) / "out" / "manifest.parquet").to_pandas()
    tiles = int(man.tiles_read.sum())
    cpus = int(__import__("ray").cluster_resources().get("CPU", 1))
    return {"slides": len(paths), "ok": summary.ok, "tiles_read": tiles, "tiles_skipped": int(man.tiles_skipped.sum()),
            "cells": summary.regions, "seconds": round(seconds, 1), "tiles_per_s": round(tiles / seconds, 2),
            "tiles_per_s_per_cpu": round(tiles / seconds / cpus, 2), "cells_per_s": round(summary.regions / seconds, 1),
            "peak_total_mib": round(total.peak / 2**20), "peak_process_mib": round(single["peak"] / 2**20),
            "cpus": cpus}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--slides", type=int, nargs="+", default=[1, 10], help="slide counts to run (each a run)")
    ap.add_argument("--cols", type=int, default=28, help="fields per row (640 px each)")
    ap.add_argument("--rows", type=int, default=37, help="field rows (480 px each)")
    ap.add_argument("--margin", type=int, default=1024, help="glass around the fields, level-0 px")
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    ap.add_argument("--set", action="append", default=[], help="region config override, e.g. slides.mpp=0.5")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "out" / "bench_slides.json"))
    args = ap.parse_args()
    from activessf.distributed.runtime import ensure_ray

    paths = build_slides(ROOT / "benchmarks" / "out" / "slides", max(args.slides), Path(args.data), args.cols,
                         args.rows, args.margin)
    ensure_ray()
    rows = [run_once(paths[:n], args.set) for n in args.slides]
    w, h = Mosaic([np.zeros((480, 640, 3), np.uint8)], args.cols, args.rows, args.margin).size
    print(f"slides of {w} x {h} px, overrides {args.set or 'none'}, load average {psutil.getloadavg()[0]:.1f}")
    keys = list(rows[0])
    print(" | ".join(keys))
    for r in rows:
        print(" | ".join(str(r[k]) for k in keys))
    Path(args.out).write_text(json.dumps({"slide_px": [w, h], "overrides": args.set, "runs": rows}, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
