"""``activessf export``: the final fit -> a bundle that rebuilds itself, with ONNX parity on real crops."""

import json
import shutil

import numpy as np
import onnxruntime as ort
import pytest
import torch

from activessf.inference.bundle import BundleError, load_bundle, read_meta
from activessf.inference.cells import normalize
from activessf.inference.export import export_bundle, find_arms, pick_arm
from activessf.pretrain.images import load_image
from tests.trained import CLASSES


def _held_out_crops(shared_data, size):
    """Real pbc11 cells the model never saw (the fixture trains on the first 6 of each class)."""
    paths = [p for c in CLASSES for p in sorted((shared_data / "pbc11" / "labeled" / c).glob("*.jpg"))[6:9]]
    return np.stack([load_image(str(p), size) for p in paths])


def test_final_fit_trained_on_every_labeled_crop(finished_run):
    final = json.loads((finished_run / "final" / "final.json").read_text())
    assert final["classes"] == list(CLASSES)
    assert [h["epoch"] for h in final["history"]] == [1, 2]
    metrics = json.loads((finished_run / "metrics.json").read_text())
    assert metrics["final_model"].endswith("final/model.safetensors")
    assert [f["fold"] for f in metrics["folds"]] == [0, 1]


def test_bundle_describes_itself(bundle, finished_run):
    meta = read_meta(str(bundle))
    assert meta["classes"] == list(CLASSES) and meta["members"] == 1
    assert meta["kind"] == "final fit on all labeled crops"
    assert meta["model"]["name"] == "vit_tiny_patch16_224" and meta["input"]["size"] == 32
    assert len(meta["input"]["mean"]) == 3 and meta["regions"]["preset"] in ("default", "paper")
    assert meta["cv"]["n_folds"] == 2 and 0.0 <= meta["cv"]["macro_pr_auc"]["mean"] <= 1.0
    assert set(meta["files"]) == {"model.safetensors", "model.onnx", "README.md"}
    card = (bundle / "README.md").read_text()
    assert all(c in card for c in CLASSES) and "macro PR-AUC" in card


def test_onnx_matches_torch_on_real_crops(bundle, shared_data):
    b = load_bundle(str(bundle))
    x = normalize(_held_out_crops(shared_data, b.size), b.meta["input"]["mean"], b.meta["input"]["std"])
    with torch.no_grad():
        ref = b.model(torch.from_numpy(x)).numpy()
    sess = ort.InferenceSession(b.onnx_path, providers=["CPUExecutionProvider"])
    for batch in (x[:1], x):  # the batch axis is dynamic
        got = sess.run(None, {"image": batch})[0]
        assert got.shape == (len(batch), len(CLASSES))
        assert np.abs(got - ref[: len(batch)]).max() <= 1e-4
    np.testing.assert_allclose(ref.sum(1), 1.0, atol=1e-5)


def test_loading_rebuilds_the_final_model(bundle, finished_run, shared_data):
    from safetensors.torch import load_file

    from activessf.inference.bundle import build_member

    b = load_bundle(str(bundle))
    net = build_member(b.meta["model"], len(CLASSES))
    net.load_state_dict(load_file(str(finished_run / "final" / "model.safetensors")))
    x = torch.from_numpy(normalize(_held_out_crops(shared_data, b.size), b.meta["input"]["mean"], b.meta["input"]["std"]))
    with torch.no_grad():
        np.testing.assert_allclose(b.model(x).numpy(), torch.softmax(net.eval()(x), 1).numpy(), atol=1e-6)


def test_broken_bundles_fail_naming_what_is_wrong(bundle, tmp_path):
    bad = tmp_path / "b"
    shutil.copytree(bundle, bad)
    (bad / "model.onnx").write_bytes((bad / "model.onnx").read_bytes() + b"x")
    with pytest.raises(BundleError, match="model.onnx: contents differ"):
        read_meta(str(bad))
    (bad / "model.onnx").unlink()
    with pytest.raises(BundleError, match="missing model.onnx"):
        read_meta(str(bad))
    shutil.rmtree(bad)
    shutil.copytree(bundle, bad)
    meta = json.loads((bad / "model.json").read_text())
    (bad / "model.json").write_text(json.dumps(meta | {"activessf_version": "0.0.1"}))
    with pytest.raises(BundleError, match="made by activessf 0.0.1"):
        load_bundle(str(bad))
    with pytest.raises(BundleError, match="no such bundle folder"):
        read_meta(str(tmp_path / "nothing"))


def test_fold_ensemble_and_arm_choice(finished_run, tmp_path):
    meta = export_bundle(str(finished_run), str(tmp_path / "ens"), ensemble=True)
    assert meta["members"] == 2 and meta["kind"] == "fold ensemble"
    assert meta["onnx"]["max_abs_diff_vs_torch"] <= 1e-4
    assert len(load_bundle(str(tmp_path / "ens")).model.members) == 2
    with pytest.raises(BundleError, match="no arm 'nope'"):
        pick_arm(find_arms(str(finished_run)), "nope")


def test_a_run_folder_ships_its_best_arm_by_macro_pr_auc(tmp_path):
    """``export --run RUN`` without ``--arm``: every finished arm of the run is found (an arm
    still training, without metrics.json, is not), the best by macro PR-AUC is picked."""
    for slug, name, pr_auc in (("mae_w_selection", "MAE w/ selection", 0.41), ("resnet18", "ResNet18", 0.62),
                               ("vit", "ViT", 0.55), ("unfinished", None, None)):
        (tmp_path / "finetune" / slug).mkdir(parents=True)
        if name:
            metrics = {"method": name, "summary": {"macro_pr_auc": {"mean": pr_auc, "std": 0.0}}}
            (tmp_path / "finetune" / slug / "metrics.json").write_text(json.dumps(metrics))
    arms = find_arms(str(tmp_path))
    assert [a.name for a in arms] == ["MAE w/ selection", "ResNet18", "ViT"]
    assert pick_arm(arms, None).name == "ResNet18"
    assert pick_arm(arms, "vit").name == "ViT" and pick_arm(arms, "MAE w/ selection").folder.endswith("mae_w_selection")
