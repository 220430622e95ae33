"""A whole ``activessf run`` on object storage: images in one bucket, the run folder and Ray Train
checkpoints in another, on a real S3 API server (moto on 127.0.0.1, ``tests/s3.py``).

The run is the CLI (``activessf run``) in this process, on the session's Ray runtime, whose
workers inherit the S3 endpoint (``tests/conftest.py``). It is stopped once after the first
pretraining epoch (``train.stop_after_epochs``), resumed from the checkpoint on S3, then run a
third time: every stage but the report is skipped, no object of the run folder is written again,
and nothing lands in the working folder.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from activessf.io import fs as afs
from tests.conftest import PROJECT_ROOT

CLASSES = ("EO", "LY", "SNE")
# Rewritten by every run: the report stage (keyed by the time) and the run's resolved config.
REWRITTEN = ("report.md", "report.html", "pipeline_state.json", "pipeline_config.yaml")


def _inputs(shared_data: Path, root: Path) -> Path:
    """4 labeled pbc11 cells of 3 classes and 12 pool images under ``root``."""
    for cls in CLASSES:
        (root / "labeled" / cls).mkdir(parents=True)
        for p in sorted((shared_data / "pbc11" / "labeled" / cls).glob("*.jpg"))[:4]:
            shutil.copy(p, root / "labeled" / cls / p.name)
    (root / "pool").mkdir()
    for p in sorted((shared_data / "pbc11" / "unlabeled").glob("*.jpg"))[:12]:
        shutil.copy(p, root / "pool" / p.name)
    return root


def _config(path: Path, images: str, run: str) -> Path:
    """The demo's recipe cut down: one MAE arm, 32 px, 2 pretraining epochs' worth of steps, 2 folds of 1 epoch."""
    cfg = yaml.safe_load((PROJECT_ROOT / "configs" / "demo.yaml").read_text())
    cfg["pipeline"].update(labeled=f"{images}/labeled", unlabeled=f"{images}/pool", output=run, final_fit=False,
                           arms=[{"name": "MAE w/ selection", "pretrain": "selected"}])
    cfg["pipeline"].pop("predict_holdout", None)
    # MLflow tracking reads the stages' files with local paths (activessf/pipeline/track.py): not yet on S3.
    cfg["tracking"] = {"enabled": False}
    cfg["regions"].update(crop_size=32, contact_sheet_images=2)
    cfg["features"] = {"source": "random", "backbone": "resnet18", "batch_size": 16}
    cfg["selection"]["k"] = 3
    for stage in ("pretrain", "finetune"):
        model = cfg[stage]["model"]
        model.update(img_size=32, encoder_kwargs={"depth": 2})
    cfg["pretrain"]["optim"].update(epochs=2, warmup_epochs=0, batch_size=8)
    cfg["pretrain"]["train"].update(num_reconstructions=2, checkpoint_every=1)
    cfg["finetune"]["optim"].update(epochs=1, warmup_epochs=0, batch_size=8)
    cfg["finetune"]["train"].update(n_folds=2, max_concurrent_folds=2, cpus_per_worker=0.5)
    path.write_text(yaml.safe_dump(cfg))
    return path


def _run(capsys, config: Path, *sets: str) -> str:
    """``activessf run --config CONFIG --set ...``; what it printed."""
    from activessf.cli import main

    capsys.readouterr()
    code = main(["run", "--config", str(config)] + [a for s in sets for a in ("--set", s)])
    out = capsys.readouterr()
    assert code == 0, out.out[-4000:] + out.err[-4000:]
    return out.out


def _objects(s3_server, bucket: str) -> dict[str, tuple]:
    """key -> (ETag, LastModified) of every object of the run folder (not the empty ``.../`` folder
    markers pyarrow's ``create_dir`` puts again on every run)."""
    client, found = s3_server.client(), {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix="run/"):
        found.update({o["Key"]: (o["ETag"], o["LastModified"]) for o in page.get("Contents", [])
                      if not o["Key"].endswith("/")})
    return found


# Three `activessf run` calls (the third skips everything and starts no Ray Train run).
@pytest.mark.slow
@pytest.mark.timeout(900)
def test_whole_run_on_s3_stops_resumes_and_skips(s3_server, ray_session, shared_data, tmp_path, capsys, monkeypatch):
    images_bucket, runs_bucket = s3_server.make_bucket("images"), s3_server.make_bucket("runs")
    s3_server.upload_tree(_inputs(shared_data, tmp_path / "images"), f"s3://{images_bucket}")
    run = f"s3://{runs_bucket}/run"
    config = _config(tmp_path / "tiny.yaml", f"s3://{images_bucket}", run)
    work = tmp_path / "cwd"  # the working folder: nothing of the run may land there
    work.mkdir()
    monkeypatch.chdir(work)

    # 1. Stopped after the first pretraining epoch: its checkpoint is on S3, the stage unfinished.
    out = _run(capsys, config, "pretrain.train.stop_after_epochs=1")
    assert "pretrain_selected stopped after epoch 1" in out, out[-3000:]
    state = json.loads(afs.read_bytes(f"{run}/pipeline_state.json"))["stages"]
    assert {"regions_pool", "regions_labeled", "labeled_crops", "features_labeled", "features_pool",
            "selection"} == set(state)
    assert state["regions_labeled"]["summary"]["inputs"] == 12 and state["regions_pool"]["summary"]["inputs"] == 12
    keys = s3_server.keys(runs_bucket, "run/")
    ckpts = sorted(k for k in keys if "/pretrain_selected/ray_runs/" in k and k.endswith("/state.pt"))
    assert [k.split("/")[-2] for k in ckpts] == ["epoch_0001"], ckpts

    # 2. Resumed: data stages skipped, pretraining continues from epoch 1's checkpoint on S3.
    out = _run(capsys, config)
    for stage in ("regions_pool", "features_pool", "selection"):
        assert f"{stage}: complete, skipped" in out, out[-3000:]
    metrics = [json.loads(line) for line in afs.read_bytes(f"{run}/pretrain_selected/metrics.jsonl").splitlines()]
    # (The pipeline's step budget sets the epochs on the selection; every one after the first was
    # trained by the resumed attempt, which started from epoch 1's checkpoint.)
    assert [m["epoch"] for m in metrics] == list(range(1, len(metrics) + 1)) and len(metrics) >= 2, metrics
    assert metrics[0]["attempt_start_epoch"] == 0 and {m["attempt_start_epoch"] for m in metrics[1:]} == {1}, metrics
    keys = s3_server.keys(runs_bucket, "run/")
    assert any(k.endswith("pretrain_selected/encoder.safetensors") for k in keys)
    for fold in (0, 1):
        fold_metrics = json.loads(afs.read_bytes(f"{run}/finetune/mae_w_selection/fold_{fold}/metrics.json"))
        assert fold_metrics["n_test"] > 0 and 0.0 <= fold_metrics["accuracy"] <= 1.0
        assert any(f"/mae_w_selection_fold{fold}_" in k and k.endswith("/state.pt") for k in keys)
    compare = json.loads(afs.read_bytes(f"{run}/compare/compare.json"))
    assert compare["methods"] == ["MAE w/ selection"] and compare["classes"] == list(CLASSES)
    assert b"data:image/png;base64," in afs.read_bytes(f"{run}/report.html")

    # 3. Complete: every stage but the report skipped, no object rewritten, Ray never touched
    # (``ensure_ray`` asks ``ray.is_initialized`` first).
    before = _objects(s3_server, runs_bucket)
    with monkeypatch.context() as m:
        m.setattr(ray_session, "is_initialized", lambda: pytest.fail("a finished run's rerun started or joined Ray"))
        out = _run(capsys, config)
    assert out.count("complete, skipped") == 10, out[-3000:]
    after = _objects(s3_server, runs_bucket)
    assert set(after) == set(before)
    assert {k: v for k, v in after.items() if not k.endswith(REWRITTEN)} == \
        {k: v for k, v in before.items() if not k.endswith(REWRITTEN)}
    assert list(work.iterdir()) == []  # no ./s3:/... folder in the working folder
