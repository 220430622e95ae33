"""Experiment tracking with MLflow: the ``tracking`` section and a small client around MLflow.

By default every ``activessf run`` logs into a store inside its run folder
(``sqlite:///<run>/mlruns/mlflow.db``, artifacts under ``<run>/mlruns/artifacts``), so nothing
needs a server and nothing is downloaded; ``tracking.tracking_uri`` names a server instead
(``http://host:5000``). MLflow is imported only when tracking is on, and every call goes through
``MlflowClient`` with explicit run ids, so runs logged from several places (the driver, Tune's
callback) never depend on a process-global "active run".
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from activessf.config import require

# MLflow's limit on a param value (longer values are cut, with a marker).
_MAX_PARAM = 6000
# Keys of per-epoch records that are bookkeeping, not metrics.
_NOT_METRICS = {"epoch", "fold", "workers", "attempt_start_epoch", "torch_threads", "steps"}


@dataclass
class TrackingConfig:
    """The ``tracking`` section of a pipeline YAML."""

    # Log runs to MLflow at all (off: no MLflow import, no store).
    enabled: bool = True
    # None: a SQLite store inside the run folder; else any MLflow tracking URI (a server).
    tracking_uri: str | None = None
    # MLflow experiment every run of this config is filed under.
    experiment: str = "activessf"

    def __post_init__(self) -> None:
        require(bool(self.experiment.strip()), "tracking.experiment", "must not be empty")
        require(self.tracking_uri is None or bool(self.tracking_uri.strip()), "tracking.tracking_uri",
                "must be a URI or null (a store inside the run folder)")


def store_uri(cfg: TrackingConfig, root: str) -> tuple[str, str | None]:
    """Tracking URI and artifact location of ``cfg`` for the run folder ``root``."""
    if cfg.tracking_uri:
        return cfg.tracking_uri, None
    base = os.path.join(os.path.abspath(root), "mlruns")
    os.makedirs(base, exist_ok=True)
    return f"sqlite:///{base}/mlflow.db", os.path.join(base, "artifacts")


def flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested config -> ``{"finetune.optim.epochs": "8", ...}`` (MLflow params are flat strings)."""
    out: dict[str, str] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            out.update(flatten(value, name + "."))
        else:
            text = str(value)
            out[name] = text if len(text) <= _MAX_PARAM else text[: _MAX_PARAM - 3] + "..."
    return out


def metric_name(key: str) -> str:
    """``key`` with the characters MLflow refuses in a metric name (class names are data) as ``_``."""
    return re.sub(r"[^\w\-./ ]", "_", key)


def epoch_metrics(history: Iterable[Mapping[str, Any]], prefix: str = "") -> list[tuple[str, float, int]]:
    """``(key, value, step)`` for each finite numeric field of each per-epoch record."""
    rows = []
    for rec in history:
        step = int(rec.get("epoch", 0))
        for key, value in rec.items():
            if key in _NOT_METRICS or isinstance(value, bool) or not isinstance(value, (int, float)):
                continue
            if math.isfinite(value):
                rows.append((prefix + key, float(value), step))
    return rows


class Tracker:
    """Runs of one experiment in one store; each method takes the run id it logs to."""

    def __init__(self, cfg: TrackingConfig, root: str) -> None:
        from mlflow.tracking import MlflowClient

        self.uri, artifacts = store_uri(cfg, root)
        self.client = MlflowClient(tracking_uri=self.uri)
        found = self.client.get_experiment_by_name(cfg.experiment)
        if found is not None:
            self.experiment_id = found.experiment_id
        else:
            self.experiment_id = self.client.create_experiment(cfg.experiment, artifact_location=artifacts)

    def start(self, name: str, params: Mapping[str, Any] | None = None, parent: str | None = None,
              tags: Mapping[str, str] | None = None) -> str:
        """A new run (nested under ``parent`` if given) with its params; its id."""
        all_tags = dict(tags or {})
        if parent:
            all_tags["mlflow.parentRunId"] = parent
        run = self.client.create_run(self.experiment_id, run_name=name, tags=all_tags)
        if params:
            self.log_params(run.info.run_id, params)
        return run.info.run_id

    def log_params(self, run_id: str, params: Mapping[str, Any]) -> None:
        from mlflow.entities import Param

        items = [Param(k, v) for k, v in flatten(params).items()]
        for start in range(0, len(items), 100):  # MLflow takes at most 100 params per batch
            self.client.log_batch(run_id, params=items[start:start + 100])

    def log_metrics(self, run_id: str, metrics: Mapping[str, float] | Iterable[tuple[str, float, int]]) -> None:
        """Final metrics (a mapping, step 0) or per-epoch ``(key, value, step)`` rows."""
        from mlflow.entities import Metric

        rows = [(k, float(v), 0) for k, v in metrics.items()] if isinstance(metrics, Mapping) else list(metrics)
        now = _now_ms()
        items = [Metric(metric_name(k), v, now, s) for k, v, s in rows if math.isfinite(v)]
        for start in range(0, len(items), 1000):
            self.client.log_batch(run_id, metrics=items[start:start + 1000])

    def log_artifacts(self, run_id: str, paths: Iterable[str], folder: str | None = None) -> None:
        """Copy the existing files among ``paths`` into the run's artifacts (under ``folder``)."""
        for path in paths:
            if path and os.path.isfile(path):
                self.client.log_artifact(run_id, path, folder)

    def end(self, run_id: str, ok: bool = True) -> None:
        self.client.set_terminated(run_id, "FINISHED" if ok else "FAILED")


def _now_ms() -> int:
    import time

    return int(time.time() * 1000)
