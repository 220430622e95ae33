"""What ``activessf run`` (and a lone ``activessf pretrain`` / ``finetune``) logs to MLflow.

One parent run per pipeline run: the whole resolved config as params, each arm's
cross-validated scores as final metrics (``<arm>.accuracy``, ...), and the report, comparison
tables and figures as artifacts. Each pretraining is a child run (its config, per-epoch loss and
throughput, loss curve and reconstructions); each fine-tuned arm is a child run with its mean
scores and confusion matrix, each of its folds a grandchild (per-epoch loss and lr, the fold's
accuracy, macro PR-AUC and F1) and its final fit one more; the feature backbone is a child run
with its final fit. Per-epoch metrics are logged live, while the stage trains (rank 0's reports,
through ``activessf.tracking.set_epoch_sink``); scores, artifacts and any epoch not yet logged
(a stage skipped on a rerun) come from the files the stage wrote, when it finishes.
"""

from __future__ import annotations

import glob
import json
import os
from contextlib import contextmanager
from typing import Any, Iterator, Mapping

from activessf import progress
from activessf.config import build_config, load_yaml, to_dict
from activessf.pipeline.plan import Plan
from activessf.tracking import StageRuns, Tracker, TrackingConfig, set_epoch_sink

SCORES = ("accuracy", "macro_pr_auc", "macro_f1")


def _json(path: str) -> dict:
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def _jsonl(path: str) -> list[dict]:
    if not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


class PipelineTracking:
    """MLflow runs of one pipeline run (a no-op when ``tracking.enabled`` is false)."""

    def __init__(self, plan: Plan, cfg: TrackingConfig) -> None:
        self.plan, self.cfg = plan, cfg
        self.tracker: Tracker | None = None
        self.parent: str | None = None
        # Training stage name -> its runs (opened by its first epoch record or its files).
        self.live: dict[str, StageRuns] = {}

    def begin(self) -> None:
        """Open the parent run with the resolved config as params; take the live epoch records."""
        if not self.cfg.enabled:
            return
        self.tracker = Tracker(self.cfg, self.plan.root)
        self.parent = self.tracker.start(os.path.basename(self.plan.root.rstrip("/")) or "run", self.plan.resolved(),
                                         tags={"activessf.run_folder": self.plan.root})
        set_epoch_sink(self._on_epoch)

    def _on_epoch(self, record: Mapping[str, Any]) -> None:
        runs = self._runs(progress.current())
        if runs is not None:
            runs.on_epoch(record)

    def _runs(self, name: str | None) -> StageRuns | None:
        """The runs of training stage ``name`` (None for the other stages)."""
        if name in self.live:
            return self.live[name]
        if name in self.plan.pretrains:
            source, cfg = self.plan.pretrains[name]
            runs = StageRuns(self.tracker, name, {"source": source, **to_dict(cfg)}, self.parent, "pretrain")
        elif name and name.startswith("finetune/") and name.split("/", 1)[1] in self.plan.arms:
            a = self.plan.arms[name.split("/", 1)[1]]
            runs = StageRuns(self.tracker, a.arm.name, {"arm": a.arm.name, **to_dict(a.finetune)}, self.parent, "finetune")
        elif name == "feature_backbone":
            runs = StageRuns(self.tracker, name, to_dict(self.plan.features), self.parent, "feature_backbone")
        else:
            return None
        self.live[name] = runs
        return runs

    def stage_done(self, name: str, summary: dict) -> None:
        """Complete the runs of stage ``name`` from what it wrote (pretraining, fine-tuning, report)."""
        if self.tracker is None:
            return
        if name in self.plan.pretrains:
            log_pretrain(self._runs(name), self.plan.path(name))
        elif name.startswith("finetune/"):
            slug = name.split("/", 1)[1]
            scores = log_finetune(self._runs(name), self.plan.path("finetune", slug))
            self.tracker.log_metrics(self.parent, {f"{slug}.{m}": scores[m]["mean"] for m in SCORES if m in scores})
        elif name == "report":
            self._report(summary)
        runs = self.live.pop(name, None)
        if runs is not None:
            runs.close()

    def end(self, ok: bool) -> None:
        """Close the parent run (FAILED when the pipeline stopped on an error) and any stage's."""
        set_epoch_sink(None)
        for runs in self.live.values():
            runs.close(ok=False)  # a stage that raised, or was interrupted
        self.live.clear()
        if self.tracker is not None and self.parent is not None:
            self.tracker.end(self.parent, ok)

    def _report(self, summary: dict) -> None:
        compare = self.plan.path("compare")
        files = [summary.get("md"), summary.get("html")] + sorted(glob.glob(os.path.join(compare, "*")))
        self.tracker.log_artifacts(self.parent, [f for f in files if isinstance(f, str)])
        self.tracker.log_artifacts(self.parent, [self.plan.path("pipeline_config.yaml")])


def log_pretrain(runs: StageRuns, out: str) -> str:
    """A pretraining's run: config, per-epoch loss/lr/throughput, loss curve, reconstructions."""
    run = runs.run()
    runs.log_history(run, _jsonl(os.path.join(out, "metrics.jsonl")))
    runs.tracker.log_artifacts(run, [os.path.join(out, f) for f in ("loss_curve.png", "reconstructions.png",
                                                                    "pretrain_config.yaml")])
    runs.close()
    return run


def log_finetune(runs: StageRuns, out: str) -> dict:
    """A fine-tuned arm's run (mean/std scores, confusion matrix) with a child run per fold.

    Args:
        runs: The arm's runs (those its folds opened while training, if any).
        out: The ``run_finetune`` output folder (``metrics.json``, ``fold_<k>/metrics.json``).

    Returns:
        The run's ``summary`` from ``metrics.json`` (metric -> mean, std, n).
    """
    run = runs.run()
    for path in sorted(glob.glob(os.path.join(out, "fold_*", "metrics.json"))):
        _log_fold(runs, _json(path))
    summary = _json(os.path.join(out, "metrics.json"))["summary"]
    scores = {f"{m}.mean": summary[m]["mean"] for m in SCORES if m in summary}
    scores |= {f"{m}.std": summary[m]["std"] for m in SCORES if m in summary}
    runs.tracker.log_metrics(run, scores)
    runs.tracker.log_artifacts(run, [os.path.join(out, f) for f in ("metrics.json", "confusion_matrix.png",
                                                                    "finetune_config.yaml")])
    runs.close()
    return summary


def _log_fold(runs: StageRuns, metrics: dict[str, Any]) -> None:
    """A fold's run: per-epoch training loss and lr (those not logged live), then its test scores."""
    run = runs.fold_run(metrics.get("fold"))
    runs.tracker.log_params(run, {"n_test": metrics.get("n_test")})
    runs.log_history(run, metrics.get("history") or [], prefix="train_")
    final = {m: metrics[m] for m in SCORES if isinstance(metrics.get(m), (int, float))}
    final |= {f"pr_auc.{c}": v for c, v in (metrics.get("per_class_pr_auc") or {}).items() if isinstance(v, (int, float))}
    runs.tracker.log_metrics(run, final)


class CommandTracking:
    """MLflow runs of a lone ``activessf pretrain`` or ``finetune`` command (``track_command``)."""

    def __init__(self, kind: str, output: str, runs: StageRuns | None) -> None:
        self.kind, self.output, self.runs = kind, output, runs

    def finish(self, completed: bool) -> None:
        """The command's stage returned: log its files (a stopped one keeps its live epochs only)."""
        if self.runs is None:
            return
        if completed:
            (log_pretrain if self.kind == "pretrain" else log_finetune)(self.runs, self.output)
        self.runs.close()


def command_tracking_config(config_path: str | None, overrides: list[str]) -> TrackingConfig:
    """The ``tracking`` section of a pipeline-style ``--config`` and the ``--set tracking.*`` values."""
    use_file = config_path is not None and isinstance(load_yaml(config_path).get("tracking"), dict)
    sets = [s for s in overrides if s.startswith("tracking.")]
    return build_config(TrackingConfig, config_path if use_file else None, sets, section="tracking")


@contextmanager
def track_command(kind: str, output: str, cfg: Any, config_path: str | None,
                  overrides: list[str]) -> Iterator[CommandTracking]:
    """Track a lone stage command in ``<output>/mlruns`` (or ``tracking.tracking_uri``).

    The store is made on the first epoch record, so a command that fails its checks leaves
    nothing behind; the run is FAILED if the body raises. Call ``finish`` with the stage's
    ``completed`` flag when it returns.

    Args:
        kind: ``"pretrain"`` or ``"finetune"``.
        output: The command's output folder.
        cfg: Its stage config (the run's params).
        config_path: ``--config`` (its ``tracking`` section applies, if it has one).
        overrides: ``--set`` values (``tracking.enabled=false`` turns tracking off).
    """
    tcfg = command_tracking_config(config_path, overrides)
    if not tcfg.enabled:
        yield CommandTracking(kind, output, None)
        return
    name = getattr(cfg, "method_name", lambda: None)() if kind == "finetune" else None
    name = name or os.path.basename(os.path.abspath(output))
    runs = StageRuns(lambda: Tracker(tcfg, output), name, to_dict(cfg), stage=kind)
    set_epoch_sink(runs.on_epoch)
    try:
        yield CommandTracking(kind, output, runs)
    except BaseException:
        set_epoch_sink(None)
        runs.close(ok=False)  # writes nothing when no run was opened
        raise
    set_epoch_sink(None)
    runs.close()  # already closed by ``finish``, unless the body returned without it
