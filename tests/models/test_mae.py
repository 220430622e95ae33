"""MAE on a timm ViT: forward, registry, views, init checkpoints, timm-loadable export."""

import pytest
import timm
import torch
from safetensors.torch import load_file, save_file
from timm.models.vision_transformer import Block, VisionTransformer

from activessf.engine.training import build_training_state
from activessf.models.encoder import build_encoder, load_init_checkpoint
from activessf.models.mae import MAE
from activessf.models.registry import available_methods, build_method, register_method
from activessf.pretrain.export import export_encoder
from tests.models.tiny import tiny_config


@pytest.fixture(scope="module")
def cfg():
    return tiny_config()


def test_forward_shapes_and_timm_parts(cfg):
    torch.manual_seed(0)
    mae = build_method("mae", cfg)
    assert isinstance(mae, MAE) and isinstance(mae.encoder, VisionTransformer)
    assert all(isinstance(b, Block) for b in mae.decoder_blocks)
    x = mae.views(torch.randint(0, 256, (3, 40, 40, 3), dtype=torch.uint8))
    assert x.shape == (3, 3, 32, 32) and x.dtype == torch.float32
    out = mae(x)
    assert out["pred"].shape == (3, 16, 8 * 8 * 3) and out["mask"].shape == (3, 16)
    assert out["mask"].sum(1).tolist() == [12.0] * 3
    out["loss"].backward()
    assert mae.encoder.blocks[0].attn.qkv.weight.grad.abs().sum() > 0  # the loss reaches the encoder
    assert mae.encoder.pos_embed.grad is None  # fixed sin-cos, frozen as in MAE
    assert mae.reconstruct(x, out["pred"]).shape == x.shape


def test_weight_decay_groups(cfg):
    mae = build_method("mae", cfg)
    opt = build_training_state(mae, cfg.optim, 1e-3, 1, "fp32", torch.device("cpu")).optimizer
    decay = {id(p) for g in opt.param_groups if g["weight_decay"] > 0 for p in g["params"]}
    named = dict(mae.named_parameters())
    for name in ("mask_token", "encoder.cls_token", "encoder.norm.weight", "decoder_embed.bias"):
        assert id(named[name]) not in decay, name
    assert id(named["encoder.blocks.0.attn.qkv.weight"]) in decay
    assert [g["betas"] for g in opt.param_groups] == [(0.9, 0.95)] * len(opt.param_groups)


def test_registry_unknown_and_custom():
    assert "mae" in available_methods()
    with pytest.raises(KeyError, match="unknown pretraining method"):
        build_method("nope", None)

    @register_method("test_dummy")
    def _dummy(cfg):
        return torch.nn.Linear(1, 1)

    assert isinstance(build_method("test_dummy", None), torch.nn.Linear)


def test_views_crop_each_sample_and_accept_both_layouts(cfg):
    mae = build_method("mae", cfg)
    torch.manual_seed(1)
    img = torch.randint(0, 256, (1, 48, 48, 3), dtype=torch.uint8).expand(6, -1, -1, -1)
    views = mae.views(img)
    assert not all(torch.equal(views[0], v) for v in views[1:])  # one crop per sample
    chw = mae.views.plain(img.permute(0, 3, 1, 2))
    assert torch.allclose(chw, mae.views.plain(img))


def test_init_checkpoint_timm_style_and_official_mae(tmp_path, cfg):
    src = build_method("mae", cfg)
    dst = build_method("mae", cfg)
    enc_file = tmp_path / "enc.safetensors"
    save_file({k: v.contiguous() for k, v in src.encoder.state_dict().items()}, enc_file)
    report = load_init_checkpoint(dst, enc_file)
    assert report.missing == [k for k in report.missing if not k.startswith("encoder.")]  # decoder only
    assert torch.equal(dst.encoder.blocks[1].mlp.fc1.weight, src.encoder.blocks[1].mlp.fc1.weight)
    # Official MAE layout: {'model': encoder keys at top level + mask_token + decoder_*}.
    official = dict(src.encoder.state_dict())
    official |= {k: v for k, v in src.state_dict().items() if k.startswith("decoder_") or k == "mask_token"}
    torch.save({"model": official, "epoch": 3}, tmp_path / "mae.pth")
    fresh = build_method("mae", cfg)
    report = load_init_checkpoint(fresh, tmp_path / "mae.pth")
    assert report.missing == [] and report.unexpected == [] and report.skipped == []
    assert torch.equal(fresh.decoder_pred.weight, src.decoder_pred.weight)


def test_init_checkpoint_from_other_image_size_resamples(tmp_path, cfg):
    big = build_encoder("vit_tiny_patch16_224", 64, 8, {"depth": 2})
    save_file({k: v.contiguous() for k, v in big.state_dict().items()}, tmp_path / "big.safetensors")
    mae = build_method("mae", cfg)
    report = load_init_checkpoint(mae, tmp_path / "big.safetensors")
    assert report.skipped == [] and report.unexpected == []
    assert torch.equal(mae.encoder.blocks[0].norm1.weight, big.blocks[0].norm1.weight)


def test_exported_encoder_loads_in_timm(tmp_path, cfg):
    mae = build_method("mae", cfg)
    path = export_encoder(mae, str(tmp_path / "encoder.safetensors"), {"encoder": cfg.model.encoder})
    model = timm.create_model(
        "vit_tiny_patch16_224", pretrained=True, pretrained_cfg_overlay=dict(file=path), num_classes=0,
        img_size=32, patch_size=8, depth=2,
    )
    saved = load_file(path)
    assert saved and all(torch.equal(model.state_dict()[k], v) for k, v in saved.items())
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 192)
