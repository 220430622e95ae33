"""``activessf predict`` on Ray Data (the stage's entry point is ``activessf.stages.predict``).

Inputs stream through two maps: CPU tasks decode and region-filter each image with the bundle's
own preset (``cut_batch``), and an actor pool holding the model classifies the cells
(``ClassifyBatch``: one actor per GPU when the cluster has GPUs, else ``concurrency`` CPU actors).
The driver writes each finished batch as a part file at once, so memory stays flat in the input
size and a rerun skips the inputs already done.
"""

from __future__ import annotations

from typing import Iterable

import pyarrow as pa
import ray

from activessf.config import from_dict
from activessf.distributed.runtime import data_context_quiet, ensure_ray, model_actors
from activessf.inference.batches import ClassifyBatch, cut_batch
from activessf.inference.config import PredictConfig
from activessf.distributed.slides import MAX_TILE_BLOCKS
from activessf.inference.slides import cut_tiles, plan_slides, slide_merger
from activessf.regions.config import RegionsConfig


def _classify(ds, folder: str, cfg: PredictConfig):
    """The classifier actor map over a dataset of ``CUT_SCHEMA`` rows."""
    use_gpu, actors = model_actors(cfg.use_gpu, cfg.concurrency)
    return ds.map_batches(
        ClassifyBatch,
        fn_constructor_kwargs={"folder": folder, "runtime": cfg.runtime, "threads": cfg.threads,
                               "use_gpu": use_gpu, "batch_size": cfg.batch_size},
        compute=ray.data.ActorPoolStrategy(size=actors),
        batch_size=cfg.chunk_size, batch_format="pyarrow",
        num_gpus=1 if use_gpu else 0, num_cpus=0 if use_gpu else cfg.threads,
    )


def iter_ray(inputs: pa.Table, folder: str, cfg: PredictConfig, regions: dict, size: int) -> Iterable[pa.Table]:
    """Cut and classify ``inputs`` on Ray Data; yields finished batches (rows of inputs with ``probs``)."""
    ensure_ray()
    data_context_quiet()
    ds = ray.data.from_arrow(inputs).repartition(max(1, min(inputs.num_rows // cfg.chunk_size + 1, 4096)))
    cut = ds.map_batches(cut_batch, fn_kwargs={"regions": regions, "size": size, "mode": cfg.mode},
                         batch_size=cfg.chunk_size, batch_format="pyarrow", num_cpus=1)
    yield from _classify(cut, folder, cfg).iter_batches(batch_size=None, batch_format="pyarrow")


def iter_slides_ray(slides: pa.Table, folder: str, cfg: PredictConfig, regions: dict, size: int) -> Iterable[pa.Table]:
    """Whole slides on Ray Data: plan tiles, cut each tile's cells, classify, merge per slide."""
    ensure_ray()
    data_context_quiet()
    per_batch = from_dict(RegionsConfig, regions).slides.tiles_per_batch
    ds = ray.data.from_arrow(slides).repartition(max(1, min(slides.num_rows, MAX_TILE_BLOCKS)))
    planned = ds.map_batches(plan_slides, fn_kwargs={"regions": regions, "mode": cfg.mode}, batch_size=1,
                             batch_format="pyarrow", num_cpus=1).materialize()
    blocks = max(1, min(-(-planned.count() // per_batch), MAX_TILE_BLOCKS))
    cut = planned.repartition(blocks).map_batches(cut_tiles, fn_kwargs={"regions": regions, "size": size},
                                                  batch_size=per_batch, batch_format="pyarrow", num_cpus=1)
    merger = slide_merger(folder, regions)
    for batch in _classify(cut, folder, cfg).iter_batches(batch_size=None, batch_format="pyarrow"):
        yield from merger.add(batch)
    merger.close()


