"""What ``activessf run`` logs to MLflow: one parent run per pipeline run, a child per stage.

The parent run holds the whole resolved config as params, each arm's cross-validated scores as
final metrics (``<arm>.accuracy``, ...) and the report, comparison tables and figures as
artifacts. Each pretraining is a child run (its config, per-epoch loss and throughput, loss
curve and reconstructions); each fine-tuned arm is a child run with its mean scores and
confusion matrix, and each of its folds a grandchild (per-epoch loss, the fold's accuracy,
macro PR-AUC and F1). Everything is read from the files the stages wrote, after each stage
finishes, so tracking adds no work to the training processes and a resumed run logs what the
stage recorded.
"""

from __future__ import annotations

import glob
import json
import os
from typing import Any

from activessf.config import to_dict
from activessf.pipeline.plan import Plan
from activessf.tracking import Tracker, TrackingConfig, epoch_metrics

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

    def begin(self) -> None:
        """Open the parent run with the resolved config as params."""
        if not self.cfg.enabled:
            return
        self.tracker = Tracker(self.cfg, self.plan.root)
        self.parent = self.tracker.start(os.path.basename(self.plan.root.rstrip("/")) or "run", self.plan.resolved(),
                                         tags={"activessf.run_folder": self.plan.root})

    def stage_done(self, name: str, summary: dict) -> None:
        """Log what stage ``name`` wrote (pretraining, fine-tuning, report); others need nothing."""
        if self.tracker is None:
            return
        if name in self.plan.pretrains:
            self._pretrain(name)
        elif name.startswith("finetune/"):
            self._finetune(name.split("/", 1)[1])
        elif name == "report":
            self._report(summary)

    def end(self, ok: bool) -> None:
        """Close the parent run (FAILED when the pipeline stopped on an error)."""
        if self.tracker is not None and self.parent is not None:
            self.tracker.end(self.parent, ok)

    def _pretrain(self, folder: str) -> None:
        source, cfg = self.plan.pretrains[folder]
        log_pretrain(self.tracker, self.plan.path(folder), folder, {"source": source, **to_dict(cfg)}, self.parent)

    def _finetune(self, slug: str) -> None:
        arm, _, cfg = self.plan.arms[slug]
        summary = log_finetune(self.tracker, self.plan.path("finetune", slug), arm.name,
                               {"arm": arm.name, **to_dict(cfg)}, self.parent)
        self.tracker.log_metrics(self.parent, {f"{slug}.{m}": summary[m]["mean"] for m in SCORES if m in summary})

    def _report(self, summary: dict) -> None:
        compare = self.plan.path("compare")
        files = [summary.get("md"), summary.get("html")] + sorted(glob.glob(os.path.join(compare, "*")))
        self.tracker.log_artifacts(self.parent, [f for f in files if isinstance(f, str)])
        self.tracker.log_artifacts(self.parent, [self.plan.path("pipeline_config.yaml")])


def log_pretrain(tracker: Tracker, out: str, name: str, params: dict, parent: str | None = None) -> str:
    """One pretraining's run: config, per-epoch loss/lr/throughput, loss curve, reconstructions."""
    run = tracker.start(name, params, parent=parent, tags={"activessf.stage": "pretrain"})
    tracker.log_metrics(run, epoch_metrics(_jsonl(os.path.join(out, "metrics.jsonl"))))
    tracker.log_artifacts(run, [os.path.join(out, f) for f in ("loss_curve.png", "reconstructions.png",
                                                               "pretrain_config.yaml")])
    tracker.end(run)
    return run


def log_finetune(tracker: Tracker, out: str, name: str, params: dict, parent: str | None = None) -> dict:
    """A fine-tuned arm's run (mean/std scores, confusion matrix) with a child run per fold.

    Args:
        tracker: The store.
        out: The ``run_finetune`` output folder (``metrics.json``, ``fold_<k>/metrics.json``).
        name: Run name (the arm's).
        params: Its config.
        parent: The pipeline's run, if any.

    Returns:
        The run's ``summary`` from ``metrics.json`` (metric -> mean, std, n).
    """
    run = tracker.start(name, params, parent=parent, tags={"activessf.stage": "finetune"})
    for path in sorted(glob.glob(os.path.join(out, "fold_*", "metrics.json"))):
        _log_fold(tracker, run, _json(path), name)
    summary = _json(os.path.join(out, "metrics.json"))["summary"]
    scores = {f"{m}.mean": summary[m]["mean"] for m in SCORES if m in summary}
    scores |= {f"{m}.std": summary[m]["std"] for m in SCORES if m in summary}
    tracker.log_metrics(run, scores)
    tracker.log_artifacts(run, [os.path.join(out, f) for f in ("metrics.json", "confusion_matrix.png",
                                                               "finetune_config.yaml")])
    tracker.end(run)
    return summary


def _log_fold(tracker: Tracker, parent: str, metrics: dict[str, Any], arm: str) -> None:
    """A fold's run: per-epoch training loss and lr, then its test scores."""
    fold = metrics.get("fold")
    run = tracker.start(f"{arm} fold {fold}", {"fold": fold, "n_test": metrics.get("n_test")}, parent=parent,
                        tags={"activessf.stage": "finetune_fold"})
    tracker.log_metrics(run, epoch_metrics(metrics.get("history") or [], prefix="train_"))
    final = {m: metrics[m] for m in SCORES if isinstance(metrics.get(m), (int, float))}
    final |= {f"pr_auc.{c}": v for c, v in (metrics.get("per_class_pr_auc") or {}).items() if isinstance(v, (int, float))}
    tracker.log_metrics(run, final)
    tracker.end(run)
