"""MLflow tracking: flat params, per-epoch metrics, and a finished fine-tune read back."""

import json

import pytest

from activessf.config import ConfigError, build_config
from activessf.tracking import Tracker, TrackingConfig, epoch_metrics, flatten, metric_name


def test_flatten_and_epoch_metrics():
    assert flatten({"optim": {"epochs": 8, "betas": [0.9, 0.95]}, "name": "vit", "kw": {}}) == {
        "optim.epochs": "8", "optim.betas": "[0.9, 0.95]", "name": "vit", "kw": "{}"}
    rows = epoch_metrics([{"epoch": 1, "loss": 2.0, "lr": 1e-3, "fold": 0, "ok": True, "note": "x"},
                          {"epoch": 2, "loss": float("nan")}], prefix="train_")
    assert rows == [("train_loss", 2.0, 1), ("train_lr", 1e-3, 1)]
    assert metric_name("pr_auc.B cell (CD19+)") == "pr_auc.B cell _CD19__"


def test_tracking_section_is_checked():
    with pytest.raises(ConfigError, match="tracking.experiment"):
        build_config(TrackingConfig, None, ["experiment= "])
    assert build_config(TrackingConfig, None, ["enabled=false"]).enabled is False


def test_finished_finetune_reads_back(tmp_path, finished_run):
    """Every fold and the arm's mean scores, as ``mlflow.search_runs`` returns them, match
    ``metrics.json`` (what the report prints)."""
    import mlflow

    from activessf.pipeline.track import log_finetune

    tracker = Tracker(TrackingConfig(experiment="t"), str(tmp_path))
    log_finetune(tracker, str(finished_run), "vit-tiny", {"optim": {"epochs": 2}})
    report = json.loads((finished_run / "metrics.json").read_text())
    mlflow.set_tracking_uri(tracker.uri)
    runs = mlflow.search_runs(experiment_names=["t"])
    arm = runs[runs["tags.activessf.stage"] == "finetune"].iloc[0]
    assert arm["params.optim.epochs"] == "2" and arm["status"] == "FINISHED"
    for metric in ("accuracy", "macro_pr_auc", "macro_f1"):
        assert arm[f"metrics.{metric}.mean"] == pytest.approx(report["summary"][metric]["mean"])
    folds = runs[runs["tags.activessf.stage"] == "finetune_fold"]
    assert len(folds) == 2 and set(folds["tags.mlflow.parentRunId"]) == {arm["run_id"]}
    for _, fold in folds.iterrows():
        recorded = json.loads((finished_run / f"fold_{fold['params.fold']}" / "metrics.json").read_text())
        assert fold["metrics.accuracy"] == pytest.approx(recorded["accuracy"])
        losses = tracker.client.get_metric_history(fold["run_id"], "train_loss")
        assert [m.value for m in sorted(losses, key=lambda m: m.step)] == pytest.approx(
            [h["loss"] for h in recorded["history"]])
    artifacts = {a.path for a in tracker.client.list_artifacts(arm["run_id"])}
    assert {"metrics.json", "confusion_matrix.png"} <= artifacts
