"""The MAE-style pixel decoder shared by ConvMAE and MixMIM, and the config every masked-image
method shares (MAE keeps its own decoder modules, whose names are the official MAE checkpoint's
``decoder_*`` keys, but reads the same config).

Split into ``embed`` (encoder width -> decoder width) and ``decode`` (full token sequence ->
pixels) because the methods differ only in how the full sequence is formed in between: ConvMAE
puts kept tokens back among mask tokens (:func:`restore_tokens`); MixMIM replaces the partner
image's tokens by mask tokens.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn as nn
from timm.layers import trunc_normal_
from timm.models.vision_transformer import Block

from activessf.config import check
from activessf.models.masking import patchify, unpatchify
from activessf.models.pos_embed import sincos_table


@dataclass
class DecoderConfig:
    """Shape of the light pixel decoder (``model.<method>.decoder``)."""

    dim: int = 512
    depth: int = 8
    heads: int = 16
    mlp_ratio: float = 4.0

    def __post_init__(self) -> None:
        check(self.dim >= 1, "dim", "must be >= 1")
        check(self.depth >= 1, "depth", "must be >= 1")
        check(self.heads >= 1 and self.dim % self.heads == 0, "heads", "must be >= 1 and divide decoder.dim")
        check(self.mlp_ratio > 0, "mlp_ratio", "must be > 0")


@dataclass
class MaskedImageConfig:
    """What every masked-image method shares: the pixel target and the decoder."""

    # Regress per-patch normalised pixels (MAE default).
    norm_pix_loss: bool = True
    decoder: DecoderConfig = field(default_factory=DecoderConfig)

    def __post_init__(self) -> None:
        if self.sincos_decoder():
            check(self.decoder.dim % 4 == 0, "decoder.dim", "must be a multiple of 4 for sin-cos positions")

    def sincos_decoder(self) -> bool:
        """Whether the decoder's positions are the fixed sin-cos table (:class:`PixelDecoder`'s are)."""
        return True


@dataclass
class MaskingConfig(MaskedImageConfig):
    """A masked-image method that removes a random fraction of the patches (MAE, ConvMAE)."""

    mask_ratio: float = 0.75

    def __post_init__(self) -> None:
        super().__post_init__()
        check(0.0 <= self.mask_ratio < 1.0, "mask_ratio", "must be in [0, 1)")


class PixelDecoder(nn.Module):
    """Linear embed, mask token, fixed sin-cos positions, timm ``Block`` stack, pixel head.

    Args:
        in_dim: Encoder width.
        grid: ``(rows, cols)`` of the patch grid.
        patch: Patch side in pixels (the head predicts ``patch * patch * 3`` values).
        dim, depth, heads, mlp_ratio: Decoder shape.
        num_prefix: Leading non-patch tokens (e.g. a cls token), given zero positions.
    """

    def __init__(self, in_dim: int, grid: tuple[int, int], patch: int, dim: int, depth: int, heads: int,
                 mlp_ratio: float = 4.0, num_prefix: int = 0) -> None:
        super().__init__()
        self.num_prefix = num_prefix
        self.embed = nn.Linear(in_dim, dim)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, dim))
        table = sincos_table(grid, dim, num_prefix)
        self.register_buffer("pos_embed", table, persistent=False)  # fixed, so not a parameter
        self.blocks = nn.Sequential(*[Block(dim, heads, mlp_ratio, qkv_bias=True) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.pred = nn.Linear(dim, patch * patch * 3)
        trunc_normal_(self.mask_token, std=0.02)
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)

    def decode(self, tokens: torch.Tensor) -> torch.Tensor:
        """Full decoder-width sequence ``[N, P + L, dim]`` -> pixels ``[N, L, patch*patch*3]``."""
        h = tokens + self.pos_embed.to(tokens.dtype)
        h = self.norm(self.blocks(h))
        return self.pred(h[:, self.num_prefix :])


@torch.no_grad()
def reconstruct_pixels(x: torch.Tensor, pred: torch.Tensor, patch: int, grid: tuple[int, int], norm_pix: bool) -> torch.Tensor:
    """Predicted patches ``[N, L, patch*patch*3]`` back to images ``[N, 3, S, S]``.

    With ``norm_pix`` the per-patch normalisation is undone with ``x``'s own patch statistics.
    """
    if norm_pix:
        patches = patchify(x, patch)
        mean = patches.mean(dim=-1, keepdim=True)
        std = (patches.var(dim=-1, keepdim=True) + 1e-6) ** 0.5
        pred = pred * std + mean
    return unpatchify(pred, patch, grid)
