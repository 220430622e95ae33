"""Position embeddings every method shares: MAE's fixed 2-D sin-cos table, and adding a timm ViT's
positions to patch tokens (what ``forward_features`` does before its blocks) through public
attributes only, so a method can mask or mix tokens in between.
"""

from __future__ import annotations

import torch
import torch.nn as nn
from timm.layers import build_sincos2d_pos_embed


def sincos_table(grid: tuple[int, int], dim: int, prefix: int) -> torch.Tensor:
    """MAE's fixed 2-D sin-cos table with zero rows for prefix tokens: ``[1, prefix + H*W, dim]``."""
    table = build_sincos2d_pos_embed(list(grid), dim)
    return torch.cat([torch.zeros(prefix, dim), table], dim=0).unsqueeze(0)


def fix_sincos_pos_embed(encoder: nn.Module) -> None:
    """Give a timm ViT encoder fixed (frozen) 2-D sin-cos position embeddings, as MAE does."""
    prefix = 0 if encoder.no_embed_class else encoder.num_prefix_tokens
    with torch.no_grad():
        encoder.pos_embed.copy_(sincos_table(tuple(encoder.patch_embed.grid_size), encoder.embed_dim, prefix))
    encoder.pos_embed.requires_grad_(False)


def add_pos_embed(encoder: nn.Module, tokens: torch.Tensor) -> torch.Tensor:
    """Prepend a timm ViT's prefix tokens (cls, registers) and add its position embedding.

    The same as timm's ``VisionTransformer._pos_embed`` for a fixed-size encoder (what
    ``build_encoder`` allows), written on public attributes; a test checks that
    ``norm(blocks(norm_pre(add_pos_embed(...))))`` equals ``forward_features``.

    Args:
        encoder: timm ``VisionTransformer`` with an absolute ``pos_embed``.
        tokens: Patch tokens ``[N, L, D]`` from ``encoder.patch_embed``.

    Returns:
        ``[N, P + L, D]`` with P = ``encoder.num_prefix_tokens``.
    """
    n = tokens.shape[0]
    prefix = [t.expand(n, -1, -1) for t in (encoder.cls_token, encoder.reg_token) if t is not None]
    if encoder.no_embed_class:  # positions cover patches only (DeiT III, big_vision)
        out = torch.cat([*prefix, tokens + encoder.pos_embed], dim=1)
    else:  # positions cover prefix and patches (original ViT, MAE)
        out = torch.cat([*prefix, tokens], dim=1) + encoder.pos_embed
    return encoder.pos_drop(out)
