"""Peak memory of the Ray Data region stage as the number of inputs grows.

Samples the resident memory (RSS) of this driver and every process of the local Ray runtime
(raylet, GCS, workers) every 0.2 s while the stage runs, and reports the peak minus the idle
baseline. Flat memory means the 4k-input peak is close to the 1k-input peak: rows stream through
the stage rather than piling up in the driver or the object store.
"""

from __future__ import annotations

import tempfile
import threading
import time

import psutil
import pyarrow as pa


def _ray_tree_rss() -> int:
    me = psutil.Process()
    procs = [me, *me.children(recursive=True)]
    total = 0
    for p in procs:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total


class PeakSampler:
    """Background thread recording the peak of ``_ray_tree_rss`` while active."""

    def __init__(self, period: float = 0.2):
        self.period, self.peak, self._stop = period, 0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, _ray_tree_rss())
            time.sleep(self.period)

    def __enter__(self) -> "PeakSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def measure_stage_memory(paths: list[str], sizes: list[int], preset: str = "default") -> list[dict]:
    """Run the Ray region stage on the first ``n`` paths for each ``n`` in ``sizes``.

    Returns:
        One row per size: inputs, seconds, peak and baseline RSS of the Ray process tree (MiB).
    """
    import ray

    from activessf.config import build_config
    from activessf.distributed.regions import iter_ray
    from activessf.io.schema import image_id_for
    from activessf.io.sources import INPUTS_SCHEMA
    from activessf.regions.config import RegionsConfig
    from activessf.regions.stage import write_stage_outputs

    cfg = build_config(RegionsConfig, None, [f"preset={preset}", "crop_size=64", "contact_sheet_images=0"])
    rows = []
    for n in sizes:
        chosen = paths[:n]
        inputs = pa.table(
            {"image_id": [image_id_for(p) for p in chosen], "source_path": chosen, "label": [None] * len(chosen),
             "reason": [None] * len(chosen)},
            schema=INPUTS_SCHEMA,
        )
        # A fresh runtime per size, so neither run inherits the other's warm workers.
        ray.init(num_cpus=2, include_dashboard=False)
        time.sleep(2.0)
        baseline = _ray_tree_rss()
        with tempfile.TemporaryDirectory() as out, PeakSampler() as sampler:
            start = time.perf_counter()
            summary = write_stage_outputs(iter_ray(inputs, cfg, out), out, expected_inputs=n)
            seconds = time.perf_counter() - start
        ray.shutdown()
        rows.append(
            {
                "inputs": n,
                "regions": summary.regions,
                "seconds": round(seconds, 1),
                "baseline_mib": round(baseline / 2**20),
                "peak_mib": round(sampler.peak / 2**20),
                "peak_over_baseline_mib": round((sampler.peak - baseline) / 2**20),
            }
        )
    return rows
