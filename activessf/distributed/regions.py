"""Cell Region Filtering on Ray Data (images; whole slides are in ``distributed.slides``).

The stage entry point (inputs, fingerprint, outputs) is ``activessf.stages.regions``.
"""

from __future__ import annotations

from typing import Iterator

import pyarrow as pa
import ray

from activessf.distributed.runtime import data_context_quiet, ensure_ray
from activessf.regions.config import RegionsConfig
from activessf.regions.process import process_batch, split_batch


def iter_ray(inputs: pa.Table, cfg: RegionsConfig, out_dir: str) -> Iterator[tuple[pa.Table, pa.Table]]:
    """Map ``process_batch`` over the images with Ray Data tasks; yield ``(manifest, regions)`` as they stream.

    Tasks (not actors): the filter holds no state worth keeping warm, and a task pool lets Ray
    Data size itself without claiming every CPU. Each task reads its own files, so a cluster
    reads in parallel from object storage.
    """
    ensure_ray()
    data_context_quiet()
    n_blocks = max(1, min(inputs.num_rows // cfg.batch_size + 1, 4096))
    ds = ray.data.from_arrow(inputs).repartition(n_blocks)
    compute = ray.data.TaskPoolStrategy(size=cfg.concurrency) if cfg.concurrency else None
    mapped = ds.map_batches(
        process_batch,
        fn_kwargs={"cfg": cfg, "out_dir": out_dir},
        batch_size=cfg.batch_size,
        batch_format="pyarrow",
        compute=compute,
        num_cpus=1,
    )
    for batch in mapped.iter_batches(batch_size=None, batch_format="pyarrow"):
        yield split_batch(batch)
