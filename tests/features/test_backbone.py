"""Backbone building, local weights, timm-exact preprocessing and the Ray-ready extractor."""

import pickle

import numpy as np
import pytest
import timm
import torch
from PIL import Image
from safetensors.torch import save_file

from activessf.config import ConfigError
from activessf.features import (
    FeatureExtractor,
    FeaturesConfig,
    build_backbone,
    extract_features,
    preprocess_batch,
    resolve_num_gpus,
    resolve_preprocess,
)


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    # Any attempt to fetch weights would fail loudly instead of silently downloading.
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    torch.manual_seed(0)


@pytest.fixture(scope="module")
def real_images(shared_data):
    files = [sorted((shared_data / "pbc11" / "labeled" / c).glob("*.jpg"))[0] for c in ("BA", "EO", "LY")]
    return [np.asarray(Image.open(f).convert("RGB")) for f in files]


@pytest.fixture(scope="module")
def models():
    # Built once: model construction dominates these tests' time on a small CPU.
    return {name: build_backbone(name) for name in ("resnet18", "vit_tiny_patch16_224")}


def small_batch(n=2, side=64):
    return torch.randn(n, 3, side, side, generator=torch.Generator().manual_seed(n * side))


@pytest.mark.parametrize("name, dim, side", [("resnet18", 512, 64), ("vit_tiny_patch16_224", 192, 224)])
def test_builds_without_download_and_gives_pooled_features(models, name, dim, side):
    model = models[name]
    assert not model.training and model.num_features == dim
    x = small_batch(2, side)
    feats = extract_features(model, x, "cpu", use_bf16=True, channels_last=True)
    assert feats.shape == (2, dim) and feats.dtype == np.float32 and np.isfinite(feats).all()
    assert not np.allclose(feats[0], feats[1])
    # bf16 autocast is CUDA-only and channels_last is only a layout: CPU results agree.
    plain = extract_features(model, x, "cpu", use_bf16=False, channels_last=False)
    np.testing.assert_allclose(feats, plain, rtol=1e-4, atol=1e-5)


def test_safetensors_round_trip(tmp_path, models):
    src = models["resnet18"]
    path = tmp_path / "w.safetensors"
    save_file({k: v.contiguous() for k, v in src.state_dict().items()}, str(path))
    loaded = build_backbone("resnet18", path)
    other = build_backbone("resnet18", seed=1)
    x = small_batch()
    want = extract_features(src, x, "cpu", False, False)
    np.testing.assert_allclose(extract_features(loaded, x, "cpu", False, False), want, rtol=1e-5, atol=1e-6)
    assert not np.allclose(extract_features(other, x, "cpu", False, False), want)


def test_training_checkpoint_with_head_and_module_prefix(tmp_path):
    full = timm.create_model("resnet18", pretrained=False, num_classes=11).eval()
    state = {"module." + k: v for k, v in full.state_dict().items()}
    path = tmp_path / "ckpt.pt"
    torch.save({"epoch": 3, "model": state}, path)
    loaded = build_backbone("resnet18", path)
    x = small_batch()
    with torch.inference_mode():
        want = full.forward_head(full.forward_features(x), pre_logits=True).numpy()
    np.testing.assert_allclose(extract_features(loaded, x, "cpu", False, False), want, rtol=1e-5, atol=1e-6)


def test_plain_state_dict_for_vit(tmp_path, models):
    src = models["vit_tiny_patch16_224"]
    path = tmp_path / "vit.pth"
    torch.save({"state_dict": src.state_dict()}, path)
    loaded = build_backbone("vit_tiny_patch16_224", path)
    for k, v in src.state_dict().items():
        assert torch.equal(loaded.state_dict()[k], v), k


def test_weights_that_do_not_fit_raise_naming_keys(tmp_path, models):
    r18 = tmp_path / "r18.safetensors"
    save_file(models["resnet18"].state_dict(), str(r18))
    with pytest.raises(ValueError, match=r"do not fit.*missing keys: .*layer"):
        build_backbone("resnet34", r18)
    vit = tmp_path / "vit.pt"
    torch.save(models["vit_tiny_patch16_224"].state_dict(), vit)
    shapes = r"mismatched keys: cls_token \(file \(1, 1, 192\) vs model \(1, 1, 384\)\)"
    with pytest.raises(ValueError, match=shapes):
        build_backbone("vit_small_patch16_224", vit)
    # Another input size is no mismatch: positions are resampled to the grid, as timm does.
    assert build_backbone("vit_tiny_patch16_384", vit).pos_embed.shape == (1, 577, 192)
    extra = tmp_path / "extra.pt"
    torch.save({**models["resnet18"].state_dict(), "adapter.weight": torch.zeros(2)}, extra)
    with pytest.raises(ValueError, match="unexpected keys: adapter.weight"):
        build_backbone("resnet18", extra)


@pytest.mark.parametrize("name", ["resnet18", "vit_tiny_patch16_224"])
def test_preprocess_matches_timm_transform_on_real_images(name, real_images, models):
    cfg = resolve_preprocess(models[name])
    transform = timm.data.create_transform(**cfg)
    std = torch.tensor(cfg["std"]).view(3, 1, 1) * 255
    for img in real_images + [real_images[0][:224, :224], real_images[1][:120, :300]]:
        want = transform(Image.fromarray(img))
        got = preprocess_batch(img[None], cfg)[0]
        assert got.shape == want.shape == (3, 224, 224)
        # In grey levels: PIL rounds to uint8 after resizing, we keep floats.
        diff = ((got - want).abs() * std)
        assert diff.max() <= 1.5 and diff.mean() <= 0.5


def test_preprocess_batch_is_per_image(real_images, models):
    cfg = resolve_preprocess(models["resnet18"])
    imgs = np.stack([im[:360, :360] for im in real_images])
    batch = preprocess_batch(imgs, cfg)
    one = preprocess_batch(imgs[1:2], cfg)
    torch.testing.assert_close(batch[1:2], one)
    with pytest.raises(ValueError, match=r"\[N, H, W, 3\]"):
        preprocess_batch(imgs[0], cfg)


def test_feature_extractor_batches_and_passes_columns_through(real_images):
    imgs = np.stack([im[:360, :360] for im in real_images[:2]] * 2)  # 4 crops, rows 0/2 and 1/3 equal
    ids = np.array([f"img{i}" for i in range(4)])
    fx = FeatureExtractor(FeaturesConfig(source="random", backbone="resnet18", batch_size=3, device="cpu"))
    out = fx({"image": imgs, "image_id": ids})
    assert set(out) == {"image_id", "feature"} and out["image_id"] is ids
    assert out["feature"].shape == (4, 512) and out["feature"].dtype == np.float32
    # Batches of 3 + 1 give what one forward pass over all 4 gives.
    whole = extract_features(fx.model, preprocess_batch(imgs, fx.data_cfg), "cpu", False, True)
    np.testing.assert_allclose(out["feature"], whole, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(out["feature"][:2], out["feature"][2:], rtol=1e-4, atol=1e-5)
    assert not np.allclose(out["feature"][0], out["feature"][1])
    listed = fx({"image": list(imgs[:1])})["feature"]
    np.testing.assert_allclose(listed, out["feature"][:1], rtol=1e-4, atol=1e-5)
    assert fx({"image": np.zeros((0, 360, 360, 3), np.uint8)})["feature"].shape == (0, 512)
    assert pickle.loads(pickle.dumps(FeatureExtractor)) is FeatureExtractor


def test_config_validation_and_gpu_resolution(tmp_path):
    with pytest.raises(ConfigError, match="features.backbone"):
        FeaturesConfig(backbone="not_a_model")
    with pytest.raises(ConfigError, match="features.weights"):
        FeaturesConfig(weights=str(tmp_path / "missing.safetensors"))
    with pytest.raises(ConfigError, match="features.batch_size"):
        FeaturesConfig(batch_size=0)
    assert resolve_num_gpus(FeaturesConfig(), cluster_gpus=0) == 0.0
    assert resolve_num_gpus(FeaturesConfig(), cluster_gpus=4) == 1.0
    assert resolve_num_gpus(FeaturesConfig(num_gpus_per_actor=0.25), cluster_gpus=4) == 0.25


def test_random_init_is_seeded_so_stages_agree():
    x = small_batch()
    a = extract_features(build_backbone("resnet18", seed=3), x, "cpu", False, False)
    b = extract_features(build_backbone("resnet18", seed=3), x, "cpu", False, False)
    c = extract_features(build_backbone("resnet18", seed=4), x, "cpu", False, False)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
