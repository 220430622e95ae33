"""Whole slides on Ray Data: one row per slide expanded into tile tasks, each tile read in its task.

Two maps: ``plan_batch`` (one slide per call: open it, run the glass test on its coarsest level,
emit its header and tile rows), then, after spreading the tile rows evenly over blocks,
``process_tiles`` (read, filter and crop each tile). No task ever holds a whole slide, and the
tiles of one slide spread over every free CPU (or node) rather than queueing in one task.
"""

from __future__ import annotations

import math
from typing import Iterator

import pyarrow as pa
import ray

from activessf.distributed.runtime import data_context_quiet, ensure_ray
from activessf.regions.config import RegionsConfig
from activessf.slides.collect import SlideCollector
from activessf.slides.tasks import TILE_SCHEMA, plan_slide, process_tiles

# Blocks of tile rows: enough for every CPU of a large cluster, few enough for the scheduler.
MAX_TILE_BLOCKS = 4096


def plan_batch(batch: pa.Table, cfg: RegionsConfig) -> pa.Table:
    """Map of the planning tasks: slide rows -> ``TILE_SCHEMA`` rows (a header and tiles per slide)."""
    rows = [t for r in batch.to_pylist() for t in plan_slide(r, cfg)]
    return pa.Table.from_pylist(rows, schema=TILE_SCHEMA)


def iter_slides_ray(slides: pa.Table, cfg: RegionsConfig, out_dir: str) -> Iterator[tuple[pa.Table, pa.Table]]:
    """Tile and filter ``slides`` on Ray Data; yield each finished slide's ``(manifest, regions)``.

    Args:
        slides: Inputs rows (``image_id``, ``source_path``, ``label``, ``reason``) of whole slides.
        cfg: Stage config (``cfg.slides`` for the tiling).
        out_dir: Stage output folder (crops are written by the tile tasks).
    """
    ensure_ray()
    data_context_quiet()
    compute = ray.data.TaskPoolStrategy(size=cfg.concurrency) if cfg.concurrency else None
    ds = ray.data.from_arrow(slides).repartition(max(1, min(slides.num_rows, MAX_TILE_BLOCKS)))
    # Planning is cheap (a slide's header and coarsest level); materialising it tells how many
    # tiles there are, so they can be spread over blocks evenly before the expensive map.
    planned = ds.map_batches(plan_batch, fn_kwargs={"cfg": cfg}, batch_size=1, batch_format="pyarrow",
                             compute=compute, num_cpus=1).materialize()
    n_rows = planned.count()
    blocks = max(1, min(math.ceil(n_rows / cfg.slides.tiles_per_batch), MAX_TILE_BLOCKS))
    results = planned.repartition(blocks).map_batches(
        process_tiles, fn_kwargs={"cfg": cfg, "out_dir": out_dir}, batch_size=cfg.slides.tiles_per_batch,
        batch_format="pyarrow", compute=compute, num_cpus=1)
    collector = SlideCollector(out_dir, cfg.slides.dedup_iou)
    for batch in results.iter_batches(batch_size=None, batch_format="pyarrow"):
        yield from collector.add(batch)
    yield from collector.close()
