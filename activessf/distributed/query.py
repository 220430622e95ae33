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


def _use_gpu(cfg: QueryConfig, cluster_gpus: float) -> bool:
    return cfg.use_gpu == "true" or (cfg.use_gpu == "auto" and cluster_gpus >= 1)


def iter_ray(paths: pa.Table, bundle: str, cfg: QueryConfig, size: int) -> Iterable[pa.Table]:
    """Score ``row``, ``path`` on Ray Data; yields ``row``, ``probs``, ``emb`` batches (any order)."""
    import ray

    from activessf.distributed.runtime import data_context_quiet, ensure_ray

    ensure_ray()
    data_context_quiet()
    gpus = ray.cluster_resources().get("GPU", 0.0)
    use_gpu = _use_gpu(cfg, gpus)
    actors = cfg.concurrency or (max(1, int(gpus)) if use_gpu else 1)
    chunk = cfg.batch_size * 4
    ds = ray.data.from_arrow(paths).repartition(max(1, min(paths.num_rows // chunk + 1, 4096)))
    read = ds.map_batches(read_batch, fn_kwargs={"size": size}, batch_size=chunk, batch_format="pyarrow", num_cpus=1)
    scored = read.map_batches(
        ScoreCrops, fn_constructor_kwargs={"folder": bundle, "threads": cfg.threads, "use_gpu": use_gpu,
                                           "batch_size": cfg.batch_size},
        compute=ray.data.ActorPoolStrategy(size=actors), batch_size=chunk, batch_format="pyarrow",
        num_gpus=1 if use_gpu else 0, num_cpus=0 if use_gpu else cfg.threads)
    yield from scored.iter_batches(batch_size=None, batch_format="pyarrow")
