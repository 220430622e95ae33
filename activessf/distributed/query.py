"""``activessf query``'s scoring pass on Ray Data (the stage's entry point is ``activessf.stages.query``).

Reading tasks decode the pool's (and the labeled set's) crop files, an actor pool holds the model
(one actor per GPU when the cluster has GPUs, else ``concurrency`` CPU actors) and returns each
crop's probabilities and penultimate features.
"""

from __future__ import annotations

from typing import Iterable

import pyarrow as pa

from activessf.active.config import QueryConfig
from activessf.active.scoring import ScoreCrops, read_batch


def iter_ray(paths: pa.Table, bundle: str, cfg: QueryConfig, size: int) -> Iterable[pa.Table]:
    """Score ``row``, ``path`` on Ray Data; yields ``row``, ``probs``, ``emb`` batches (any order)."""
    import ray

    from activessf.distributed.runtime import data_context_quiet, ensure_ray, model_actors

    ensure_ray()
    data_context_quiet()
    use_gpu, actors = model_actors(cfg.use_gpu, cfg.concurrency)
    chunk = cfg.batch_size * 4
    ds = ray.data.from_arrow(paths).repartition(max(1, min(paths.num_rows // chunk + 1, 4096)))
    read = ds.map_batches(read_batch, fn_kwargs={"size": size}, batch_size=chunk, batch_format="pyarrow", num_cpus=1)
    scored = read.map_batches(
        ScoreCrops, fn_constructor_kwargs={"folder": bundle, "threads": cfg.threads, "use_gpu": use_gpu,
                                           "batch_size": cfg.batch_size},
        compute=ray.data.ActorPoolStrategy(size=actors), batch_size=chunk, batch_format="pyarrow",
        num_gpus=1 if use_gpu else 0, num_cpus=0 if use_gpu else cfg.threads)
    yield from scored.iter_batches(batch_size=None, batch_format="pyarrow")
