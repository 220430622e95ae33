"""Feature sources: weights in timm / DINOv2 / pretrain-export layouts load and embed exactly as
the network that wrote them; random features are flagged loudly; configs reject bad combinations."""

from __future__ import annotations

import numpy as np
import pytest
import timm
import torch
from safetensors.torch import save_file

from activessf.config import ConfigError
from activessf.features.backbone import preprocess_batch
from activessf.features.config import RANDOM_WARNING, FeaturesConfig, LabeledBackboneConfig
from activessf.features.sources import build_source_backbone, source_warning, strip_wrappers
from activessf.pretrain.export import export_encoder

DINO = "vit_small_patch14_dinov2"
DINO_REG = "vit_small_patch14_reg4_dinov2"


def _vit(name: str, size: int = 28) -> torch.nn.Module:
    torch.manual_seed(7)
    return timm.create_model(name, pretrained=False, num_classes=0, img_size=size, depth=2).eval()


def _embed(model: torch.nn.Module, data_cfg: dict, images: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model(preprocess_batch(images, data_cfg)).numpy()


def _images(n: int = 3, size: int = 28) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 255, (n, size, size, 3), dtype=np.uint8)


def _dinov2_original(state: dict, registers: bool) -> dict:
    """timm keys -> the layout DINOv2 / DinoBloom checkpoints use (mask_token, register_tokens)."""
    out = {k: v.clone() for k, v in state.items()}
    out["mask_token"] = torch.zeros(1, out["cls_token"].shape[-1])
    if registers:  # DINOv2 keeps a cls position in pos_embed; timm's reg models fold it into cls_token
        out["register_tokens"] = out.pop("reg_token")
        out["pos_embed"] = torch.cat([torch.zeros_like(out["pos_embed"][:, :1]), out["pos_embed"]], dim=1)
    return out


def _load_vit(tmp_path, state: dict, name: str, size: int = 28) -> torch.nn.Module:
    """Load through the feature stage's own path into a 2-block model of ``name``."""
    from activessf.features.backbone import load_weights

    path = tmp_path / "w.safetensors"
    save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    model = _vit(name, size)
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
    load_weights(model, path)
    return model


@pytest.mark.parametrize("name,registers", [(DINO, False), (DINO_REG, True)])
@pytest.mark.parametrize("wrap", [False, True])
def test_dinov2_layouts_give_the_writers_features(tmp_path, name, registers, wrap):
    ref = _vit(name)
    state = _dinov2_original(ref.state_dict(), registers)
    if wrap:  # a DINOv2 training checkpoint: teacher wrapper, blocks in one chunk, a DINO head
        state = {"teacher.backbone." + (k.replace("blocks.", "blocks.0.", 1) if k.startswith("blocks.") else k): v
                 for k, v in state.items()}
        state["teacher.dino_head.last_layer.weight"] = torch.zeros(4, 4)
    got = _load_vit(tmp_path, state, name)
    x = torch.randn(2, 3, 28, 28)
    with torch.no_grad():
        np.testing.assert_allclose(got(x).numpy(), ref(x).numpy(), rtol=1e-5, atol=1e-5)


def test_dinov2_positions_resample_to_another_input_size(tmp_path):
    ref = _vit(DINO, size=56)  # 4 x 4 patches + cls, as a 518 px file is to a 224 px model
    got = _load_vit(tmp_path, _dinov2_original(ref.state_dict(), False), DINO, size=28)
    assert got.pos_embed.shape[1] == 1 + 2 * 2
    assert torch.isfinite(got(torch.randn(1, 3, 28, 28))).all()


def test_strip_wrappers_keeps_plain_cnn_keys():
    state = {"conv1.weight": torch.zeros(1), "fc.weight": torch.zeros(1)}
    assert strip_wrappers(state).keys() == state.keys()


class _Method(torch.nn.Module):
    def __init__(self, encoder):
        super().__init__()
        self.encoder = encoder


@pytest.mark.parametrize("method,pool", [("mae", "avg"), ("mocov3", "token")])
def test_pool_ssl_export_rebuilds_its_encoder(tmp_path, method, pool):
    torch.manual_seed(3)
    enc = timm.create_model("vit_tiny_patch16_224", pretrained=False, num_classes=0, img_size=32, patch_size=8,
                            depth=2, global_pool=pool).eval()
    path = export_encoder(_Method(enc), str(tmp_path / "encoder.safetensors"),
                          {"method": method, "encoder": "vit_tiny_patch16_224", "img_size": 32, "patch_size": 8,
                           "encoder_kwargs": {"depth": 2}})
    model, data_cfg = build_source_backbone(FeaturesConfig(source="pool_ssl", weights=path))
    assert data_cfg["input_size"] == (3, 32, 32) and data_cfg["crop_pct"] == 1.0
    assert data_cfg["mean"] == pytest.approx((0.485, 0.456, 0.406))  # pretraining's normalisation
    images = _images(2, 32)
    np.testing.assert_allclose(_embed(model, data_cfg, images), _embed(enc, data_cfg, images), rtol=1e-5, atol=1e-5)


def test_pool_ssl_needs_a_pretrain_export(tmp_path):
    path = tmp_path / "plain.safetensors"
    save_file({"w": torch.zeros(1)}, str(path))
    with pytest.raises(ValueError, match="pretrain header"):
        build_source_backbone(FeaturesConfig(source="pool_ssl", weights=str(path)))


def test_config_rejects_sources_without_their_weights(tmp_path):
    with pytest.raises(ConfigError, match="features.weights"):
        FeaturesConfig(source="weights")
    with pytest.raises(ConfigError, match="features.weights"):
        FeaturesConfig(source="pool_ssl")
    path = tmp_path / "w.safetensors"
    save_file({"w": torch.zeros(1)}, str(path))
    with pytest.raises(ConfigError, match="features.weights"):
        FeaturesConfig(source="random", weights=str(path))
    with pytest.raises(ConfigError, match="features.labeled.epochs"):
        LabeledBackboneConfig(epochs=0)
    with pytest.raises(ValueError, match="train the labeled backbone"):
        build_source_backbone(FeaturesConfig(source="labeled", backbone="resnet18"))


def test_random_source_is_flagged():
    assert source_warning(FeaturesConfig(source="random", backbone="resnet18")) == RANDOM_WARNING
    assert "no class information" in RANDOM_WARNING


def test_pool_ssl_export_with_a_descriptor_is_built_as_fine_tuning_builds_it(tmp_path):
    # An MAE export (encoder.json says pool avg) whose state dict has the ViT's final ``norm``:
    # the features stage must load it the way fine-tuning does (timm's filter), not refuse it.
    import timm
    import torch
    from safetensors.torch import save_file

    from activessf.config import build_config
    from activessf.features.config import FeaturesConfig
    from activessf.features.sources import build_source_backbone
    from activessf.models.descriptor import EncoderDescriptor, build_encoder_module

    vit = timm.create_model("vit_tiny_patch16_224", pretrained=False, num_classes=0, img_size=32, patch_size=8, depth=1)
    weights = tmp_path / "encoder.safetensors"
    save_file({k: v.contiguous() for k, v in vit.state_dict().items()}, str(weights))
    desc = EncoderDescriptor(method="mae", builder="timm", name="vit_tiny_patch16_224", img_size=32, patch_size=8,
                             kwargs={"depth": 1}, pool="avg")
    (tmp_path / "encoder.json").write_text(desc.to_json())
    cfg = build_config(FeaturesConfig, None, ["source=pool_ssl", f"weights={weights}"])
    model, data_cfg = build_source_backbone(cfg)
    assert data_cfg["input_size"] == (3, 32, 32) and data_cfg["crop_pct"] == 1.0
    x = torch.randn(2, 3, 32, 32)
    with torch.inference_mode():
        want = build_encoder_module(desc, str(weights)).eval()(x)
        got = model(x)
    assert got.shape == (2, 192) and torch.allclose(got, want)
    # The patch embedding is the export's, not a fresh init.
    torch.testing.assert_close(model.patch_embed.proj.weight, vit.patch_embed.proj.weight)
