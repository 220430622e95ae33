"""Feature extraction on Ray Data: reader tasks feed an actor pool holding the backbone.

The stage entry point (fingerprint, outputs) is ``activessf.stages.features``.
"""

from __future__ import annotations

from typing import Iterable

import pyarrow as pa
import ray

from activessf.distributed.runtime import data_context_quiet, ensure_ray
from activessf.features.backbone import FeatureExtractor
from activessf.features.config import FeaturesConfig, resolve_num_gpus
from activessf.features.stage import load_crops


def iter_ray(items: pa.Table, cfg: FeaturesConfig, size: int) -> Iterable[dict]:
    """Featurize on Ray Data; yields numpy batches with ``feature`` and the status columns.

    Reads and decodes run as tasks; the model lives in an actor pool, one actor per GPU when the
    cluster has GPUs (``num_gpus=1`` each) or ``concurrency`` CPU actors of one CPU each, so the
    readers always keep CPUs to run on.
    """
    ensure_ray()
    data_context_quiet()
    gpus = resolve_num_gpus(cfg, ray.cluster_resources().get("GPU", 0.0))
    n_actors = cfg.concurrency or (max(1, int(ray.cluster_resources().get("GPU", 0))) if gpus else 1)
    n_blocks = max(1, min(items.num_rows // cfg.batch_size + 1, 4096))
    ds = ray.data.from_arrow(items).repartition(n_blocks)
    loaded = ds.map_batches(load_crops, fn_kwargs={"size": size}, batch_size=cfg.batch_size, batch_format="pyarrow")
    feats = loaded.map_batches(
        FeatureExtractor,
        fn_constructor_kwargs={"config": cfg},
        compute=ray.data.ActorPoolStrategy(size=n_actors),
        batch_size=cfg.batch_size,
        batch_format="numpy",
        num_gpus=gpus,
        num_cpus=0 if gpus else 1,
        # Ray Data restarts pool actors by default, and Ray's core worker then logs an error that
        # a restart could not rebuild constructor arguments held in the object store. A lost
        # feature actor fails the stage instead; a rerun redoes it (features are cheap).
        max_restarts=0,
    )
    yield from feats.iter_batches(batch_size=None, batch_format="numpy")
