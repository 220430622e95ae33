"""MLflow tracking: flat params, per-epoch metrics (live and from files), runs read back."""

import json

import pytest

from activessf.config import ConfigError, build_config
from activessf.tracking import StageRuns, Tracker, TrackingConfig, epoch_metrics, flatten, metric_name


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
    log_finetune(StageRuns(tracker, "vit-tiny", {"optim": {"epochs": 2}}, stage="finetune"), str(finished_run))
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


def _history(tracker, run, key):
    return [(m.step, m.value) for m in sorted(tracker.client.get_metric_history(run, key), key=lambda m: m.step)]


def test_live_epochs_then_files_log_each_step_once(tmp_path):
    """Records logged live open the fold and final-fit runs lazily; the stage's files then add
    only the epochs not logged yet (a resumed stage), and its scores."""
    made = []

    def store():
        made.append(Tracker(TrackingConfig(experiment="t"), str(tmp_path)))
        return made[-1]

    runs = StageRuns(store, "arm", {"optim": {"epochs": 3}}, stage="finetune")
    runs.close()  # nothing opened: nothing written
    assert not made and not (tmp_path / "mlruns").exists()
    runs.on_epoch({"epoch": 2, "fold": 0, "loss": 1.5, "lr": 0.1, "workers": 1})
    runs.on_epoch({"epoch": 1, "fold": "final", "loss": 2.5, "lr": 0.2})
    history = [{"epoch": e, "fold": 0, "loss": 3.0 - e / 2, "lr": 0.1} for e in (1, 2, 3)]
    fold = runs.fold_run(0)
    runs.log_history(fold, history, prefix="train_")
    tracker = runs.tracker
    assert len(made) == 1
    assert _history(tracker, fold, "train_loss") == [(1, 2.5), (2, 1.5), (3, 1.5)]
    final = runs.fold_run("final")
    assert _history(tracker, final, "train_loss") == [(1, 2.5)]
    assert "train_workers" not in tracker.client.get_run(fold).data.metrics
    arm = runs.run()
    runs.close()
    for run, tag in ((fold, "finetune_fold"), (final, "finetune_final"), (arm, "finetune")):
        info = tracker.client.get_run(run)
        assert info.info.status == "FINISHED" and info.data.tags["activessf.stage"] == tag
    assert tracker.client.get_run(fold).data.tags["mlflow.parentRunId"] == arm


def test_command_tracking_config(tmp_path):
    from activessf.pipeline.track import command_tracking_config

    stage_yaml = tmp_path / "pretrain.yaml"
    stage_yaml.write_text("optim: {epochs: 3}\n")
    assert command_tracking_config(str(stage_yaml), ["optim.epochs=2"]).enabled
    assert not command_tracking_config(None, ["optim.epochs=2", "tracking.enabled=false"]).enabled
    pipe_yaml = tmp_path / "pipe.yaml"
    pipe_yaml.write_text("pretrain: {optim: {epochs: 3}}\ntracking: {tracking_uri: 'http://h:5000'}\n")
    assert command_tracking_config(str(pipe_yaml), []).tracking_uri == "http://h:5000"
    with pytest.raises(ConfigError, match="tracking.experiment"):
        command_tracking_config(None, ["tracking.experiment= "])


def test_pretrain_command_is_tracked_live(ray_session, tmp_path, capfd):
    """``activessf pretrain`` alone: one MLflow run in ``<output>/mlruns`` with its config, each
    epoch's loss as it trained (logged before the run ended, not all at once afterwards) equal
    to ``metrics.jsonl``, and its figures; MLflow's INFO lines never reach the terminal (MLflow
    imported first here, as a notebook would)."""
    import mlflow

    from activessf.cli import main
    from activessf.data import SAMPLE_UNLABELED
    from tests.models.tiny import TINY

    images = tmp_path / "images"
    images.mkdir()
    for src in sorted(SAMPLE_UNLABELED.iterdir())[:16]:
        (images / src.name).symlink_to(src)
    out = tmp_path / "pre"
    sets = [x for s in [*TINY, "optim.epochs=3", "train.cpus_per_worker=0.5"] for x in ("--set", s)]
    capfd.readouterr()
    assert main(["pretrain", "--data", str(images), "--output", str(out), *sets]) == 0
    printed = capfd.readouterr()
    assert "mlflow" not in printed.out + printed.err
    mlflow.set_tracking_uri(f"sqlite:///{out}/mlruns/mlflow.db")
    runs = mlflow.search_runs(experiment_names=["activessf"])
    assert len(runs) == 1
    run = runs.iloc[0]
    assert run["status"] == "FINISHED" and run["tags.activessf.stage"] == "pretrain"
    assert run["params.optim.epochs"] == "3" and run["tags.mlflow.runName"] == "pre"
    recorded = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    client = mlflow.tracking.MlflowClient()
    losses = sorted(client.get_metric_history(run["run_id"], "loss"), key=lambda m: m.step)
    assert [m.step for m in losses] == [r["epoch"] for r in recorded] == [1, 2, 3]
    assert [m.value for m in losses] == pytest.approx([r["loss"] for r in recorded])
    assert run["metrics.loss"] == pytest.approx(recorded[-1]["loss"])
    ended = client.get_run(run["run_id"]).info.end_time
    assert ended - losses[0].timestamp > 500  # epoch 1 was logged while the run trained
    assert {"loss_curve.png", "pretrain_config.yaml"} <= {a.path for a in client.list_artifacts(run["run_id"])}
