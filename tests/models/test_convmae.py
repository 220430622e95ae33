"""ConvMAE: mask ratio, masks aligned across stages, masked convolution, MAE loss, encoder export."""

import json

import pytest
import torch

from activessf.models.convmae import (
    build_convmae_encoder,
    load_convmae_encoder,
    upsample_mask,
)
from activessf.models.masking import (
    masked_mse,
    normalize_patches,
    num_kept,
    patchify,
    unpatchify,
)
from activessf.models.registry import build_method
from tests.models.tiny import tiny_config

# patch 8 at 32 px: stages at 16x16, 8x8, then a 4x4 token grid.
SMALL = ["model.method=convmae", "model.convmae.dims=[8, 16, 32]", "model.convmae.depths=[1, 1, 2]", "model.convmae.heads=2"]


@pytest.fixture(scope="module")
def method():
    torch.manual_seed(0)
    return build_method("convmae", tiny_config(*SMALL)).eval()


def test_mask_keeps_ratio(method):
    _, mask, _ = method.draw_mask(5, 0.75, "cpu")
    assert mask.shape == (5, 16)
    assert (mask.sum(dim=1) == 16 - num_kept(16, 0.75)).all()


def test_masks_align_across_stages():
    mask = torch.zeros(1, 4)
    mask[0, 1] = 1  # final-grid cell (row 0, col 1) of a 2x2 grid
    up = upsample_mask(mask, (2, 2), 4)[0, 0]
    expected = torch.zeros(8, 8)
    expected[0:4, 4:8] = 1
    assert torch.equal(up, expected)
    # Same cells as the pixel-level mask of the final patch grid, at every stage.
    pixels = unpatchify(mask.unsqueeze(-1).expand(-1, -1, 8 * 8 * 3), 8, (2, 2))[0, 0]
    assert torch.equal(upsample_mask(mask, (2, 2), 8)[0, 0], pixels)


def test_visible_tokens_never_see_masked_pixels(method):
    torch.manual_seed(1)
    x = torch.randn(2, 3, 32, 32)
    noise, mask, _ = method.draw_mask(2, 0.5, "cpu")
    pix = unpatchify(mask.unsqueeze(-1).expand(-1, -1, 8 * 8 * 3), 8, method.grid)
    x2 = x + 5.0 * torch.randn_like(x) * pix  # change masked patches only
    with torch.no_grad():
        a = method.encoder.forward_features(x, mask, noise, 0.5)
        b = method.encoder.forward_features(x2, mask, noise, 0.5)
        full_a, full_b = method.encoder.forward_features(x), method.encoder.forward_features(x2)
    assert a.shape == (2, 8, 32)
    torch.testing.assert_close(a, b)  # masked convolution + visible-only attention: no leak
    assert not torch.allclose(full_a, full_b)  # control: unmasked, the change does propagate


def test_loss_is_mse_on_masked_patches(method):
    torch.manual_seed(2)
    x = torch.randn(2, 3, 32, 32)
    out = method(x)
    target = normalize_patches(patchify(x, 8))
    per_patch = ((out["pred"] - target) ** 2).mean(-1)
    manual = (per_patch * out["mask"]).sum() / out["mask"].sum()
    assert out["loss"].item() == pytest.approx(manual.item(), rel=1e-5)
    assert out["loss"].item() == pytest.approx(masked_mse(out["pred"], target, out["mask"]).item())
    assert method.reconstruct(x, out["pred"]).shape == x.shape


def test_all_parameters_get_gradients():
    torch.manual_seed(3)
    method = build_method("convmae", tiny_config(*SMALL))
    method(torch.randn(2, 3, 32, 32))["loss"].backward()
    assert [n for n, p in method.named_parameters() if p.requires_grad and p.grad is None] == []


def test_encoder_export_roundtrip(method, tmp_path):
    from activessf.pretrain.export import write_outputs

    cfg = tiny_config(*SMALL, "train.num_reconstructions=0")
    paths = write_outputs(method, [{"epoch": 1, "loss": 1.0, "lr": 0.1}], cfg, str(tmp_path), torch.zeros(0).numpy())
    desc = json.loads((tmp_path / "encoder.json").read_text())
    assert (desc["builder"], desc["img_size"], desc["patch_size"], desc["pool"]) == ("convmae", 32, 8, "avg")
    assert desc["kwargs"] == {"dims": [8, 16, 32], "depths": [1, 1, 2], "heads": 2}
    loaded = load_convmae_encoder(paths["encoder"]).eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), method.encoder(x))
    assert loaded(x).shape == (2, 32) and isinstance(build_convmae_encoder(cfg.model), type(loaded))
