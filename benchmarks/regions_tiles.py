"""Tiles/s per core of the ``default`` CRF preset on 1024 x 1024 tiles cut from bccd mosaics.

A whole-slide stage runs the preset per tile, so its cost per tile is the figure that scales.
Each tile is a 3 x 3 mosaic of seeded-random bccd smears (640 x 480 each) cropped to the tile
size: real stain, real cells, real red-cell density. Used by ``bench_regions.py --tiles``.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import cv2
import numpy as np

from activessf.regions.adaptive import find_regions_default
from activessf.regions.config import DefaultCRFParams


def mosaic_tiles(folder: Path, n: int, size: int, seed: int) -> list[np.ndarray]:
    """``n`` RGB tiles ``[size, size, 3]`` uint8, each a cropped 3 x 3 mosaic of smears in ``folder``."""
    paths = sorted(folder.glob("*.jpg"))
    rng = np.random.default_rng(seed)
    tiles = []
    for _ in range(n):
        picks = [cv2.imread(str(paths[i]))[..., ::-1] for i in rng.choice(len(paths), 9, replace=False)]
        h, w = min(p.shape[0] for p in picks), min(p.shape[1] for p in picks)
        rows = [np.hstack([p[:h, :w] for p in picks[r * 3 : r * 3 + 3]]) for r in range(3)]
        tiles.append(np.ascontiguousarray(np.vstack(rows)[:size, :size]))
    return tiles


def time_tiles(fn, params, tiles: list[np.ndarray], repeats: int, seed: int) -> dict:
    """Per-tile median and min wall and median CPU milliseconds of ``fn(tile, params, seed)``; regions per tile."""
    medians, mins, cpus, counts = [], [], [], []
    for tile in tiles:
        walls, cpu = [], []
        for _ in range(repeats):
            t0, c0 = time.perf_counter(), time.process_time()
            regions = fn(tile, params, seed)
            walls.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
        medians.append(statistics.median(walls) * 1000)
        mins.append(min(walls) * 1000)
        cpus.append(statistics.median(cpu) * 1000)
        counts.append(len(regions))
    median_ms, min_ms, cpu_ms = statistics.fmean(medians), statistics.fmean(mins), statistics.fmean(cpus)
    return {"ms_per_tile_median": median_ms, "ms_per_tile_min": min_ms, "cpu_ms_per_tile": cpu_ms,
            "tiles_per_s_per_core": 1000.0 / median_ms, "tiles_per_s_per_core_min": 1000.0 / min_ms,
            "tiles_per_s_per_core_cpu": 1000.0 / cpu_ms, "regions_per_tile": statistics.fmean(counts)}


def tile_section(folder: Path, n: int, repeats: int, seed: int, baseline=None, size: int = 1024) -> dict:
    """Time the current preset (and ``baseline = (fn, params_class)`` if given) on ``n`` tiles; print a table."""
    tiles = mosaic_tiles(folder, n, size, seed)
    out = {"tile_size": size, "tiles": n, "default": time_tiles(find_regions_default, DefaultCRFParams(), tiles,
                                                               repeats, seed)}
    if baseline is not None:
        out["default_base"] = time_tiles(baseline[0], baseline[1](), tiles, repeats, seed)
    print(f"\n{size}x{size} bccd mosaic tiles ({n}), one core")
    print(f"{'row':<15}{'ms/tile (median)':>18}{'(min)':>8}{'CPU ms':>8}{'tiles/s':>9}{'(min)':>7}{'(CPU)':>7}"
          f"{'regions/tile':>14}")
    for name in ("default", "default_base"):
        if name in out:
            r = out[name]
            print(f"{name:<15}{r['ms_per_tile_median']:>18.1f}{r['ms_per_tile_min']:>8.1f}{r['cpu_ms_per_tile']:>8.1f}"
                  f"{r['tiles_per_s_per_core']:>9.1f}{r['tiles_per_s_per_core_min']:>7.1f}"
                  f"{r['tiles_per_s_per_core_cpu']:>7.1f}{r['regions_per_tile']:>14.2f}")
    return out
