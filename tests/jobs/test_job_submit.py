"""The pipeline as a real Ray job: a local head (``ray start --head``), ``ray job submit``, SUCCEEDED.

Then the same pipeline again in this process: every stage is found complete and skipped.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from activessf.data import SAMPLE_LABELED, SAMPLE_UNLABELED
from activessf.distributed.runtime import LOCAL_TRAIN_ENV
from tests.conftest import PROJECT_ROOT

BIN = Path(sys.executable).parent
CLASSES = ["EO", "LY", "PLATELET", "SNE"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tiny_inputs(root: Path) -> tuple[Path, Path]:
    """6 labeled cells of 4 classes and 30 pool images from the embedded sample."""
    for cls in CLASSES:
        (root / "labeled" / cls).mkdir(parents=True)
        for src in sorted((SAMPLE_LABELED / cls).iterdir())[:6]:
            shutil.copy(src, root / "labeled" / cls / src.name)
    (root / "pool").mkdir()
    for src in sorted(SAMPLE_UNLABELED.iterdir())[:30]:
        shutil.copy(src, root / "pool" / src.name)
    return root / "labeled", root / "pool"


def _tiny_config(root: Path) -> Path:
    labeled, pool = _tiny_inputs(root)
    cfg = yaml.safe_load((PROJECT_ROOT / "configs" / "demo.yaml").read_text())
    cfg["pipeline"].update(labeled=str(labeled), unlabeled=str(pool), output=str(root / "run"))
    # The demo's first arm (pretraining on the selection); arms side by side, the comparison and
    # the choice of the best arm have their own tests (tests/pipeline).
    cfg["pipeline"]["arms"] = [cfg["pipeline"]["arms"][0]]
    cfg["selection"]["k"] = 4
    # The demo's export + predict stages have their own test (tests/pipeline/test_holdout.py);
    # this test exports and predicts through the CLI below.
    cfg["pipeline"].pop("predict_holdout", None)
    # Random features keep this test to the job machinery (the labeled backbone has its own tests).
    cfg["features"]["source"] = "random"
    cfg["pretrain"]["optim"].update(epochs=1, warmup_epochs=0)
    cfg["finetune"]["optim"].update(epochs=1, warmup_epochs=0)
    cfg["finetune"]["train"].update(n_folds=2)
    path = root / "tiny.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _head(env: dict, port: int, dash: int) -> subprocess.Popen:
    """``ray start --head --block`` in a process group of its own (Ray's processes join it)."""
    # Every port explicit and free: a default one (e.g. the agent's 52365) may belong to another
    # Ray runtime on this machine.
    cmd = [str(BIN / "ray"), "start", "--head", "--block", f"--port={port}", f"--dashboard-port={dash}",
           f"--dashboard-agent-listen-port={_free_port()}", f"--dashboard-agent-grpc-port={_free_port()}",
           f"--runtime-env-agent-port={_free_port()}", f"--metrics-export-port={_free_port()}",
           "--node-ip-address=127.0.0.1", "--dashboard-host=127.0.0.1", "--include-dashboard=true",
           "--num-cpus=2", "--num-gpus=0", "--disable-usage-stats"]
    return subprocess.Popen(cmd, env=env, cwd=PROJECT_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
                            start_new_session=True)


def _job(env: dict, *args: str, timeout: float = 120) -> str:
    out = subprocess.run([str(BIN / "ray"), "job", *args], env=env, cwd=PROJECT_ROOT, capture_output=True, text=True,
                         timeout=timeout)
    return out.stdout + out.stderr


def _client(env: dict):
    """The job server's Python client, in this process (polling with the CLI would start a Python
    process importing Ray every few seconds, on the same 2 cores as the job)."""
    from ray.job_submission import JobSubmissionClient

    return JobSubmissionClient(env["RAY_ADDRESS"])


def _wait_status(env: dict, job_id: str, limit: float) -> str:
    """Poll the job's status until it ends (SUCCEEDED, FAILED or STOPPED) or ``limit`` s pass."""
    client, deadline = _client(env), time.time() + limit
    while time.time() < deadline:
        status = str(client.get_job_status(job_id).value)
        if status in ("SUCCEEDED", "FAILED", "STOPPED"):
            return status
        time.sleep(3)
    return "TIMEOUT"


def _submit_and_wait(env: dict, config: Path) -> str:
    job_id = f"activessf_test_{os.getpid()}_{int(time.time())}"
    submit = ("submit", "--no-wait", f"--submission-id={job_id}", "--working-dir", ".", "--runtime-env",
              "jobs/runtime_env.yaml", "--", "python", "-m", "jobs.pipeline", "--config", str(config))
    deadline = time.time() + 90
    out = _job(env, *submit)
    while "No available agent" in out and time.time() < deadline:
        # The job server answers before the node's agent has registered; it asks to retry.
        time.sleep(3)
        out = _job(env, *submit)
    assert f"Job '{job_id}' submitted successfully" in out, out
    state = _wait_status(env, job_id, limit=900)
    if state != "SUCCEEDED":
        pytest.fail(f"job {job_id} ended {state}:\n" + _client(env).get_job_logs(job_id)[-6000:])
    return _client(env).get_job_logs(job_id)


def _server_up(env: dict) -> bool:
    try:
        _client(env).list_jobs()
        return True
    except Exception:  # noqa: BLE001 - connection refused / not ready yet, any client error
        return False


@pytest.fixture
def local_head():
    """A real Ray head on 127.0.0.1 (2 CPUs, dashboard = job server), stopped afterwards."""
    port, dash = _free_port(), _free_port()
    # A throwaway loopback cluster: Ray 2.60's token authentication is turned off for it.
    # Train's polling as in the local runtime (activessf.distributed.runtime.LOCAL_TRAIN_ENV).
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", RAY_ADDRESS=f"http://127.0.0.1:{dash}",
               RAY_AUTH_MODE="disabled", **LOCAL_TRAIN_ENV)
    env.pop("RAY_ADDRESS_FOR_DRIVER", None)
    head = _head({k: v for k, v in env.items() if k != "RAY_ADDRESS"}, port, dash)
    try:
        deadline = time.time() + 90
        while not _server_up(env):
            assert head.poll() is None, "ray start --head exited"
            assert time.time() < deadline, "the Ray job server did not come up"
            time.sleep(2)
        yield env
    finally:
        # The whole throwaway cluster at once: a graceful ``ray start --block`` shutdown gives each
        # process its own grace period (~30 s), which tests nothing here.
        os.killpg(head.pid, signal.SIGKILL)
        head.wait(timeout=60)


def _assert_tracked(run: Path) -> None:
    """The job's MLflow store, read back: the pipeline's run with its pretraining and arms as
    children, each arm's folds and final fit below it, all FINISHED; every fold's per-epoch loss
    (logged live from Train) and scores, and each arm's means, equal what the stages wrote and
    the report shows."""
    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{run}/mlruns/mlflow.db")
    runs = mlflow.search_runs(experiment_names=["activessf"])
    assert set(runs["status"]) == {"FINISHED"}
    stage = runs["tags.activessf.stage"].fillna("pipeline")
    assert stage.value_counts().to_dict() == {"pipeline": 1, "pretrain": 1, "finetune": 1, "finetune_fold": 2,
                                              "finetune_final": 1}
    pipeline = runs[stage == "pipeline"].iloc[0]
    client = mlflow.tracking.MlflowClient()
    for _, arm in runs[stage == "finetune"].iterrows():
        slug = arm["params.train.run_name"]
        summary = json.loads((run / "finetune" / slug / "metrics.json").read_text())["summary"]
        assert arm["tags.mlflow.parentRunId"] == pipeline["run_id"]
        assert arm["metrics.accuracy.mean"] == pytest.approx(summary["accuracy"]["mean"])
        assert pipeline[f"metrics.{slug}.macro_pr_auc"] == pytest.approx(summary["macro_pr_auc"]["mean"])
        folds = runs[(runs["tags.mlflow.parentRunId"] == arm["run_id"]) & (stage == "finetune_fold")]
        for _, fold in folds.iterrows():
            recorded = json.loads((run / "finetune" / slug / f"fold_{fold['params.fold']}" / "metrics.json").read_text())
            losses = client.get_metric_history(fold["run_id"], "train_loss")
            assert [(m.step, m.value) for m in losses] == [(h["epoch"], pytest.approx(h["loss"])) for h in recorded["history"]]
            assert fold["metrics.accuracy"] == pytest.approx(recorded["accuracy"])
    pretrain = runs[stage == "pretrain"].iloc[0]
    recorded = [json.loads(line) for line in (run / "pretrain_selected" / "metrics.jsonl").read_text().splitlines()]
    assert pretrain["metrics.loss"] == pytest.approx(recorded[-1]["loss"])


@pytest.mark.slow
@pytest.mark.timeout(1500)
def test_pipeline_job_succeeds_and_rerun_skips(ray_session, local_head, tmp_path, capsys):
    config = _tiny_config(tmp_path)
    logs = _submit_and_wait(local_head, config)
    run = tmp_path / "run"
    assert "[11/11] report: done" in logs, logs[-3000:]
    state = json.loads((run / "pipeline_state.json").read_text())["stages"]
    assert set(state) == {"regions_pool", "regions_labeled", "labeled_crops", "features_labeled", "features_pool",
                          "selection", "pretrain_selected", "folds", "finetune/mae_w_selection", "compare", "report"}
    crops = state["labeled_crops"]["summary"]
    assert crops["labeled_images"] == 24 == crops["central"] + crops["no_central_region"] + crops["rejected"]
    compare = json.loads((run / "compare" / "compare.json").read_text())
    assert compare["methods"] == ["MAE w/ selection"] and len(compare["classes"]) == 4
    html = (run / "report.html").read_text()
    assert html.count("data:image/png;base64,") >= 5 and "Table II" in html
    _assert_tracked(run)

    from activessf.pipeline.plan import build_plan
    from activessf.pipeline.run import run_pipeline

    capsys.readouterr()
    run_pipeline(build_plan(str(config)))
    out = capsys.readouterr().out
    for stage in ("pretrain_selected", "finetune/mae_w_selection", "compare"):
        assert f"{stage}: complete, skipped" in out, out

    # What ships: the arm's final fit, exported from the run folder and applied to new images.
    from activessf.cli import main

    assert (run / "finetune" / "mae_w_selection" / "final" / "model.safetensors").is_file()
    assert main(["export", "--run", str(run), "--output", str(tmp_path / "bundle")]) == 0
    meta = json.loads((tmp_path / "bundle" / "model.json").read_text())
    assert meta["arm"] == "MAE w/ selection" and meta["classes"] == compare["classes"]
    assert meta["regions"] == yaml.safe_load((run / "pipeline_config.yaml").read_text())["regions"]
    assert main(["predict", "--model", str(tmp_path / "bundle"), "--input", str(config.parent / "pool"),
                 "--output", str(tmp_path / "pred"), "--local"]) == 0
    assert "predict: inputs=30 = ok 30 + rejected 0" in capsys.readouterr().out
