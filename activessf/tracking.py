"""Experiment tracking with MLflow: the ``tracking`` section and a small client around MLflow.

By default every ``activessf run`` logs into a store inside its run folder
(``sqlite:///<run>/mlruns/mlflow.db``, artifacts under ``<run>/mlruns/artifacts``), so nothing
needs a server and nothing is downloaded; ``tracking.tracking_uri`` names a server instead
(``http://host:5000``). MLflow is imported only when tracking is on, and every call goes through
``MlflowClient`` with explicit run ids, so runs logged from several places (the driver, Tune's
callback) never depend on a process-global "active run".

Per-epoch metrics are logged while a Ray Train run trains: the controller's callback writes rank
0's report of each epoch to the stage's ``epochs.jsonl`` and the driver's epoch watcher
(``activessf.distributed.epochs``) hands each record to the sink ``set_epoch_sink`` installed
(the pipeline's or a stage command's), which logs it into the ``StageRuns`` of that stage.
"""

from __future__ import annotations

import logging
import math
import os
import re
import threading
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping

from activessf import console
from activessf.config import require
from activessf.io.fs import local_folder

# MLflow's limit on a param value (longer values are cut, with a marker).
_MAX_PARAM = 6000
# Keys of per-epoch records that are bookkeeping, not metrics.
_NOT_METRICS = {"epoch", "fold", "workers", "attempt_start_epoch", "torch_threads", "steps"}
# The fold name of a fine-tuning's final fit (``activessf.finetune``'s ``FINAL``).
FINAL_FOLD = "final"

_epoch_sink: Callable[[Mapping[str, Any]], None] | None = None


def set_epoch_sink(sink: Callable[[Mapping[str, Any]], None] | None) -> None:
    """Who receives the per-epoch records of the Train runs this process starts (None: nobody)."""
    global _epoch_sink
    _epoch_sink = sink


def epoch_sink() -> Callable[[Mapping[str, Any]], None] | None:
    """The sink ``set_epoch_sink`` installed, or None."""
    return _epoch_sink


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
    # SQLite needs a local file: a run folder on object storage keeps its store in a local scratch folder.
    base = os.path.join(local_folder(root), "mlruns")
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
        _import_mlflow_quietly()
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


def _import_mlflow_quietly() -> None:
    """Import MLflow with its own loggers at WARNING unless ``--verbose`` (or the user's
    ``MLFLOW_LOGGING_LEVEL``): MLflow gives its loggers a stderr handler at import, and its INFO
    lines (creating and upgrading the store's tables) would reach the terminal."""
    quiet = not console.verbose() and not os.environ.get("MLFLOW_LOGGING_LEVEL")  # the user's level wins
    if quiet:
        os.environ["MLFLOW_LOGGING_LEVEL"] = "WARNING"
    import mlflow  # noqa: F401  (configures MLflow's loggers on first import)

    if quiet:  # imported earlier (a notebook, Ray Tune's integration) at its default INFO
        logging.getLogger("mlflow").setLevel(logging.WARNING)
    console.reroute_logs()  # its WARNINGs (and alembic's) to the run's log file


def _now_ms() -> int:
    import time

    return int(time.time() * 1000)


class StageRuns:
    """The MLflow runs of one training stage, each opened on first use: the stage's run and,
    when its records name a ``fold``, a child run per fold (the final fit too).

    Per-epoch records arrive live while the stage trains (``on_epoch``, from the driver's epoch
    watcher thread) and again from the files the stage wrote (``log_history``, when it finished
    or was skipped on a rerun); a step already logged to a run is never logged twice, so a
    resumed stage's history is complete and not doubled.

    Args:
        tracker: The store, or a callable that makes it on first use (nothing is written, no
            folder created, until a run opens).
        name: The stage run's name.
        params: Its params (the stage's resolved config).
        parent: Run to nest it under (the pipeline's), if any.
        stage: Value of its ``activessf.stage`` tag.
    """

    def __init__(self, tracker: "Tracker | Callable[[], Tracker]", name: str, params: Mapping[str, Any],
                 parent: str | None = None, stage: str = "pretrain") -> None:
        self._tracker = tracker
        self.name, self.params, self.parent, self.stage = name, params, parent, stage
        self._lock = threading.RLock()
        self._run: str | None = None
        self._folds: dict[str, str] = {}
        self._steps: dict[str, set[int]] = {}

    @property
    def tracker(self) -> "Tracker":
        with self._lock:
            if not isinstance(self._tracker, Tracker):
                self._tracker = self._tracker()
            return self._tracker

    @property
    def opened(self) -> bool:
        """Whether any run of the stage exists yet."""
        return self._run is not None

    def run(self) -> str:
        """The stage's run id (opened now if need be)."""
        with self._lock:
            if self._run is None:
                self._run = self.tracker.start(self.name, self.params, parent=self.parent,
                                               tags={"activessf.stage": self.stage})
            return self._run

    def fold_run(self, fold: Any) -> str:
        """The child run of ``fold`` (tag ``<stage>_fold``, or ``<stage>_final`` for the final fit)."""
        key = str(fold)
        with self._lock:
            if key not in self._folds:
                final = key == FINAL_FOLD
                name = f"{self.name} {'final fit' if final else f'fold {key}'}"
                tag = f"{self.stage}_{'final' if final else 'fold'}"
                self._folds[key] = self.tracker.start(name, {"fold": key}, parent=self.run(),
                                                      tags={"activessf.stage": tag})
            return self._folds[key]

    def on_epoch(self, record: Mapping[str, Any]) -> None:
        """One epoch's record (rank 0's report): into its fold's run (``train_`` metrics) or the stage's."""
        if record.get("fold") is None:
            self.log_history(self.run(), [record])
        else:
            self.log_history(self.fold_run(record["fold"]), [record], prefix="train_")

    def log_history(self, run: str, history: Iterable[Mapping[str, Any]], prefix: str = "") -> None:
        """Per-epoch records into ``run``, skipping the steps already logged there."""
        with self._lock:
            done = self._steps.setdefault(run, set())
            rows = [row for row in epoch_metrics(history, prefix) if row[2] not in done]
            self.tracker.log_metrics(run, rows)
            done.update(step for _, _, step in rows)

    def close(self, ok: bool = True) -> None:
        """End every run opened (the folds first); later records would open new ones."""
        with self._lock:
            for run in self._folds.values():
                self.tracker.end(run, ok)
            if self._run is not None:
                self.tracker.end(self._run, ok)
            self._folds, self._run = {}, None
