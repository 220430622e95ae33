"""Shared position embeddings: the public-attribute token embedding equals timm's own path."""

from pathlib import Path

import pytest
import timm
import torch

from activessf.models.encoder import build_encoder
from activessf.models.pos_embed import add_pos_embed, fix_sincos_pos_embed, sincos_table


@pytest.mark.parametrize(
    "name, kwargs",
    [
        ("vit_tiny_patch16_224", {}),  # cls token, positions over cls + patches
        ("vit_small_patch16_224", {"reg_tokens": 2, "no_embed_class": True}),  # registers, positions over patches
        ("vit_tiny_patch16_224", {"class_token": False, "global_pool": "avg"}),  # no prefix at all
    ],
)
def test_add_pos_embed_matches_forward_features(name, kwargs):
    """``norm(blocks(norm_pre(add_pos_embed(patch_embed(x)))))`` is timm's ``forward_features``,
    which pins what MAE and MixMIM assume about timm ViTs (timm is pinned in pyproject.toml)."""
    torch.manual_seed(0)
    enc = build_encoder(name, 32, 8, {"depth": 2, **kwargs}).eval()
    with torch.no_grad():
        torch.nn.init.normal_(enc.pos_embed, std=0.5)  # non-zero, so a misplaced addition shows
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        tokens = add_pos_embed(enc, enc.patch_embed(x))
        ours = enc.norm(enc.blocks(enc.norm_pre(tokens)))
        torch.testing.assert_close(ours, enc.forward_features(x))
    assert tokens.shape == (2, enc.num_prefix_tokens + 16, enc.embed_dim)


def test_fixed_sincos_is_frozen_and_zero_on_prefix():
    enc = build_encoder("vit_tiny_patch16_224", 32, 8, {"depth": 1})
    fix_sincos_pos_embed(enc)
    assert not enc.pos_embed.requires_grad
    table = sincos_table((4, 4), enc.embed_dim, 1)
    torch.testing.assert_close(enc.pos_embed.detach(), table)
    assert table.shape == (1, 17, enc.embed_dim) and table[0, 0].abs().sum() == 0 and table[0, 1:].abs().sum() > 0


def test_timm_is_the_pinned_version():
    """``add_pos_embed`` mirrors timm's ViT embedding; the tests above ran on the pinned timm."""
    pyproject = (Path(__file__).parents[2] / "pyproject.toml").read_text()
    assert f'"timm=={timm.__version__}"' in pyproject
