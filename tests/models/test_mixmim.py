"""MixMIM: mix ratio, token mixing, no cross-image leak, dual reconstruction at the right places."""

import pytest
import torch

from activessf.models.masking import normalize_patches, num_kept, patchify, unpatchify
from activessf.models.mixmim import mix_tokens
from activessf.models.registry import build_method
from tests.models.tiny import tiny_config


@pytest.fixture(scope="module")
def method():
    torch.manual_seed(0)
    return build_method("mixmim", tiny_config("model.method=mixmim")).eval()


def test_mix_mask_keeps_ratio(method):
    mix = method.draw_mix("cpu")
    assert mix.shape == (16,) and mix.sum().item() == 16 - num_kept(16, 0.5)


def test_mix_tokens_takes_partner_where_mixed():
    tokens = torch.arange(3 * 4 * 2, dtype=torch.float32).view(3, 4, 2)
    mix = torch.tensor([0.0, 1.0, 1.0, 0.0])
    out = mix_tokens(tokens, mix)
    for i in range(3):
        for j in range(4):
            assert torch.equal(out[i, j], tokens[2 - i if mix[j] else i, j])


def _pix(mix: torch.Tensor, n: int) -> torch.Tensor:
    return unpatchify(mix.view(1, -1, 1).expand(n, -1, 8 * 8 * 3), 8, (4, 4))


def test_each_image_is_rebuilt_from_itself_only(method):
    """pred[i] depends on image i alone; its hidden patches never on their own pixels."""
    torch.manual_seed(1)
    x = torch.randn(4, 3, 32, 32)
    mix = method.draw_mix("cpu")
    with torch.no_grad():
        base = method(x, mix)["pred"]
        other = x.clone()
        other[[1, 2, 3]] += torch.randn(3, 3, 32, 32)  # change every image but image 0
        torch.testing.assert_close(method(other, mix)["pred"][0], base[0])
        own = x.clone()
        own[0] += 3.0 * torch.randn(3, 32, 32) * _pix(mix, 1)[0]  # image 0's mixed-out patches
        pred = method(own, mix)["pred"]
    hidden = mix.bool()
    # Mixed-out patches of image 0 are predicted from its other patches (branch 1 of sample 0) ...
    torch.testing.assert_close(pred[0, hidden], base[0, hidden])
    # ... while its other patches come from sample N-1 (branch 2), which saw the changed ones.
    assert not torch.allclose(pred[0, ~hidden], base[0, ~hidden])
    torch.testing.assert_close(pred[1:], base[1:])


def test_loss_is_mse_over_both_images_every_patch(method):
    torch.manual_seed(2)
    x = torch.randn(4, 3, 32, 32)
    out = method(x)
    target = normalize_patches(patchify(x, 8))
    assert out["loss"].item() == pytest.approx(((out["pred"] - target) ** 2).mean().item(), rel=1e-5)
    assert out["mask"].shape == (4, 16) and method.reconstruct(x, out["pred"]).shape == x.shape


def test_trainable_parameters_get_gradients():
    torch.manual_seed(3)
    method = build_method("mixmim", tiny_config("model.method=mixmim"))
    method(torch.randn(4, 3, 32, 32))["loss"].backward()
    assert [n for n, p in method.named_parameters() if p.requires_grad and p.grad is None] == []
    assert not method.encoder.cls_token.requires_grad
