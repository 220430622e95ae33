"""MoCo v3, ConvMAE and MixMIM through the Ray Train V2 loop: 1 epoch, 2 gloo workers, pbc11 crops.

Checkpoint/resume/recovery is the same code path as MAE (tests/distributed/test_pretrain_ray.py);
here each method runs once end to end (DDP incl. MoCo's all_gather, checkpoint, export) and its
exported encoder is loaded the way fine-tuning loads it.
"""

import json

import pytest
import timm
import torch
from safetensors.torch import load_file

from activessf.stages.pretrain import run_pretrain
from activessf.models.convmae import load_convmae_encoder
from tests.models.tiny import tiny_config

RAY = ["optim.epochs=1", "train.num_workers=2", "train.cpus_per_worker=0.5", "train.num_reconstructions=2"]
METHODS = {
    "mocov3": ["model.mocov3.proj_dim=16", "model.mocov3.proj_hidden_dim=32"],
    "convmae": ["model.convmae.dims=[8, 16, 32]", "model.convmae.depths=[1, 1, 2]", "model.convmae.heads=2"],
    "mixmim": [],
}


@pytest.fixture(scope="module")
def listing(tmp_path_factory, shared_data):
    root = tmp_path_factory.mktemp("methods")
    classes = sorted(p for p in (shared_data / "pbc11" / "labeled").iterdir() if p.is_dir())[:8]
    paths = [str(p) for c in classes for p in sorted(c.glob("*.jpg"))[:2]]
    assert len(paths) == 16
    (root / "images.txt").write_text("\n".join(paths))
    return root


@pytest.mark.parametrize("name", sorted(METHODS))
def test_method_trains_checkpoints_and_exports(name, listing, ray_session):
    cfg = tiny_config(*RAY, f"model.method={name}", *METHODS[name], f"train.run_name={name}_test",
                      f"train.storage_path={listing / 'ray'}")
    paths = run_pretrain(str(listing / "images.txt"), str(listing / name), cfg)
    assert paths["completed"] and paths["epochs_done"] == 1
    with open(paths["metrics"]) as fh:
        (record,) = [json.loads(line) for line in fh]
    assert record["workers"] == 2 and record["images"] == 16 and record["loss"] > 0 and record["images_per_s"] > 0
    assert ("reconstructions" in paths) == (name != "mocov3")
    saved = load_file(paths["encoder"])
    state = torch.load(f"{paths['checkpoint']}/state.pt", weights_only=True)["model"]
    if name == "convmae":
        encoder = load_convmae_encoder(paths["encoder"])
        assert encoder(torch.zeros(1, 3, 32, 32)).shape == (1, 32)
    else:
        encoder = timm.create_model("vit_tiny_patch16_224", pretrained=True, pretrained_cfg_overlay=dict(file=paths["encoder"]),
                                    num_classes=0, img_size=32, patch_size=8, depth=2)
    assert all(torch.equal(encoder.state_dict()[k], v) for k, v in saved.items())
    assert all(torch.equal(state[f"encoder.{k}"], v) for k, v in saved.items())
    if name == "mocov3":  # the EMA copy moved towards the trained encoder but is not equal to it
        key = "blocks.1.attn.qkv.weight"
        assert not torch.equal(state[f"momentum_encoder.{key}"], saved[key])
