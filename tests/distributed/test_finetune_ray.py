"""Fine-tuning on Ray Train V2 with a tiny ViT on real pbc11 crops, then a paired comparison.

One sequence (kept short for 2 CPUs): 2 DDP workers of half a CPU, 2 folds x 2 epochs, both folds
at once, stop after epoch 1 of each fold; a rerun under the same run names resumes both folds at
epoch 2 from their Ray checkpoints; a third call finds every fold complete; a fourth with another
recipe retrains fold 0 from scratch. A second method on
the same folds file, compared with this one, is the pipeline's job (tests/jobs/test_job_submit.py).
"""

import json

import pyarrow.parquet as pq
import pytest

from activessf.config import build_config
from activessf.stages.finetune import run_finetune
from activessf.evaluation.folds import read_folds
from activessf.finetune.config import FinetuneConfig

TINY = [
    "model.name=vit_tiny_patch16_224", "model.img_size=32", "model.patch_size=8", "model.encoder_kwargs={depth: 2}",
    "optim.epochs=2", "optim.warmup_epochs=0", "optim.batch_size=4", "aug.randaug_ops=1",
    "train.n_folds=3", "train.only_folds=[0, 1]", "train.num_workers=2", "train.cpus_per_worker=0.5",
]


@pytest.fixture(scope="module")
def labeled(tmp_path_factory, shared_data):
    """An ImageFolder of 4 real images for each of 3 classes (symlinks)."""
    root = tmp_path_factory.mktemp("labeled")
    for name in ("BA", "EO", "LY"):
        (root / name).mkdir()
        for p in sorted((shared_data / "pbc11" / "labeled" / name).glob("*.jpg"))[:4]:
            (root / name / p.name).symlink_to(p)
    return root


@pytest.mark.slow
def test_two_folds_then_resume(tmp_path, labeled, ray_session):
    out_a = tmp_path / "vit"
    cfg = build_config(FinetuneConfig, None, TINY + ["train.method_name=vit-scratch"])
    stopped = run_finetune(str(labeled), str(out_a), build_config(FinetuneConfig, None, TINY + [
        "train.method_name=vit-scratch", "train.stop_after_epochs=1"]))
    assert not stopped["completed"] and stopped["stopped_fold"] == 0 and not (out_a / "metrics.json").exists()
    # One Ray run per fold and recipe: <run_name>_fold<k>_<fingerprint>.
    assert all(len(list((out_a / "ray_runs").glob(f"finetune_fold{k}_*/epoch_0001"))) == 1 for k in (0, 1))
    paths = run_finetune(str(labeled), str(out_a), cfg)
    assert paths["completed"]
    report = json.loads((out_a / "metrics.json").read_text())
    assert [f["fold"] for f in report["folds"]] == [0, 1] and report["classes"] == ["BA", "EO", "LY"]
    assert 0.0 <= report["summary"]["accuracy"]["mean"] <= 1.0 and (out_a / "confusion_matrix.png").stat().st_size
    folds = read_folds(paths["folds"])
    for k in (0, 1):
        pred = pq.read_table(out_a / f"fold_{k}" / "predictions.parquet")
        assert sorted(pred["id"].to_pylist()) == sorted(i for i, f in zip(folds["id"].to_pylist(), folds["fold"].to_pylist()) if f == k)
        assert len(pred["probabilities"][0].as_py()) == 3
        history = json.loads((out_a / f"fold_{k}" / "metrics.json").read_text())["history"]
        assert [h["epoch"] for h in history] == [1, 2] and history[0]["workers"] == 2
        # The folds ran concurrently; each one's epoch 2 ran in the second invocation, resumed
        # from its epoch-1 checkpoint.
        assert [h["attempt_start_epoch"] for h in history] == [0, 1]
    # Same output again: folds are complete, nothing retrains, same report.
    again = run_finetune(str(labeled), str(out_a), cfg)
    assert again["report"]["folds"] == report["folds"]
    # Another recipe on the same output retrains under its own Ray run name and is not "done" by
    # the old fold files: tests/finetune/test_freshness.py (run names, fold fingerprints).
