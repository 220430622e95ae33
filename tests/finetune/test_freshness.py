"""A fold (and the final fit) is done only for the recipe, folds and data that made it."""

import json

import numpy as np
import pytest

from activessf.config import build_config
from activessf.finetune.config import FinetuneConfig
from activessf.finetune.freshness import finetune_fingerprint, ray_run_name
from activessf.finetune.inputs import FoldInputs, FoldRun
from activessf.finetune.outputs import final_done, fold_done, load_fold, write_final, write_fold

BASE = ["model.name=resnet18", "model.img_size=32", "optim.layer_decay=null", "optim.epochs=2"]


def _fp(*sets, digest="d1", data="s1"):
    return finetune_fingerprint(build_config(FinetuneConfig, None, BASE + list(sets)), digest, data)


def test_fingerprint_follows_what_decides_the_scores():
    base = _fp()
    assert _fp() == base
    # The probe: another model or epoch count is another result.
    assert _fp("model.name=resnet34") != base
    assert _fp("optim.epochs=3") != base
    assert _fp("aug.hflip=0.0") != base
    assert _fp(digest="d2") != base and _fp(data="s2") != base
    # How the run is executed is not: resuming with another stop point or concurrency reuses folds.
    assert _fp("train.stop_after_epochs=1", "train.max_concurrent_folds=1", "train.run_name=x",
               "train.method_name=y", "train.final_fit=true") == base


def test_fingerprint_follows_the_init_file_content(tmp_path):
    init = tmp_path / "encoder.safetensors"
    init.write_bytes(b"weights one")
    first = _fp(f"model.init={init}")
    assert _fp(f"model.init={init}") == first
    init.write_bytes(b"weights two")  # re-pretrained at the same path
    assert _fp(f"model.init={init}") != first


def _write(tmp_path, fp):
    inputs = FoldInputs(fold=0, classes=["a", "b"], train_paths=[], train_y=[], test_ids=["x", "y"], test_y=[0, 1],
                        fingerprint=fp)
    run = FoldRun(history=[], epoch=1, proba=np.array([[0.9, 0.1], [0.2, 0.8]]), kept=np.array([0, 1]))
    return write_fold(str(tmp_path), inputs, run, "m")


def test_fold_done_only_for_its_fingerprint(tmp_path):
    assert not fold_done(str(tmp_path), 0, "aaa")
    _write(tmp_path, "aaa")
    assert fold_done(str(tmp_path), 0, "aaa")
    assert not fold_done(str(tmp_path), 0, "bbb")  # another recipe: retrain, never reprint old scores
    assert load_fold(str(tmp_path), 0)["fingerprint"] == "aaa"
    # A metrics.json written before fingerprints existed is not done either.
    path = tmp_path / "fold_0" / "metrics.json"
    m = json.loads(path.read_text())
    m.pop("fingerprint")
    path.write_text(json.dumps(m))
    assert not fold_done(str(tmp_path), 0, "aaa")


def test_final_done_only_for_its_fingerprint(tmp_path):
    torch = pytest.importorskip("torch")
    cfg = build_config(FinetuneConfig, None, BASE)
    write_final(str(tmp_path), FoldRun(history=[], epoch=1, model={"w": torch.zeros(2)}), ["a", "b"], cfg,
                fingerprint="aaa")
    assert final_done(str(tmp_path), "aaa") and not final_done(str(tmp_path), "bbb")


def test_ray_run_name_separates_recipes():
    # Another recipe never resumes the old one's Ray checkpoints.
    assert ray_run_name("ft", 0, "0123456789abcdef") != ray_run_name("ft", 0, "fedcba9876543210")
    assert ray_run_name("ft", 2, "0123456789abcdef").startswith("ft_fold2_")
    assert ray_run_name("ft", "final", None) == "ft_foldfinal"
