"""MixMIM / MixMAE (Liu et al., CVPR 2023, "MixMAE: Mixed and Masked Autoencoder") on a timm ViT.

Note: the ActiveSSF paper names MixMIM but cites Chen et al.'s "Mixed Autoencoder for
Self-supervised Visual Representation Learning" (CVPR 2023), which also mixes patches of two
images (with a homologous-recognition objective). We implement MixMIM as named.

Recipe (as the official code): image ``i`` of a batch is paired with image ``N-1-i``
(``x.flip(0)``); one random patch mask ``M`` (1 = taken from the partner, a ``model.mixmim.mix_ratio``
fraction) is drawn per batch; the mixed patch tokens ``t * (1-M) + t.flip(0) * M`` are encoded
with attention restricted to tokens of the same source image (the paper's masked
self-attention; prefix tokens attend everywhere but no patch token attends to them, so nothing
crosses images). The decoder runs twice ("unmixing"): branch 1 keeps the ``M = 0`` tokens and
mask tokens elsewhere, branch 2 the ``M = 1`` tokens. Dual reconstruction: image ``i``'s hidden
patches (``M = 1``) come from branch 1 of mixed sample ``i``, its other patches (hidden in mixed
sample ``N-1-i``) from branch 2 of that sample; the MSE covers every patch of every image.

Simplification vs the paper, stated plainly: a plain ViT instead of the hierarchical Swin
encoder (the paper reports ViT results too); no cls token in the decoder; the encoder's cls
token is not trained (frozen at init; fine-tune with average pooling or train it then).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn as nn
from timm.models.vision_transformer import VisionTransformer

from activessf.config import check
from activessf.models.decoder import MaskedImageConfig, PixelDecoder, reconstruct_pixels
from activessf.models.encoder import build_encoder, patch_size_of
from activessf.models.masking import masked_mse, normalize_patches, patchify, random_masking
from activessf.models.pos_embed import add_pos_embed, fix_sincos_pos_embed
from activessf.models.registry import register_method
from activessf.models.views import ImageViews


@dataclass
class MixMIMConfig(MaskedImageConfig):
    """``model.mixmim``: mix ratio, encoder positions, pixel target and decoder."""

    # Fraction of patch positions taken from the partner image.
    mix_ratio: float = 0.5
    # Fixed 2-D sin-cos encoder position embeddings, frozen (the decoder's always are).
    sincos_pos_embed: bool = True
    # The class token is never trained: features are the mean of the patch tokens.
    pool: ClassVar[str] = "avg"

    def __post_init__(self) -> None:
        super().__post_init__()
        check(0.0 < self.mix_ratio < 1.0, "mix_ratio", "must be in (0, 1)")


def same_image_bias(mix: torch.Tensor, prefix: int, dtype: torch.dtype) -> torch.Tensor:
    """Additive attention mask ``[1, 1, P+L, P+L]``: patch tokens see only same-source patches.

    Args:
        mix: ``[L]`` 1 where the token came from the partner image.
        prefix: Leading prefix tokens (they may attend to everything).
        dtype: Dtype of the attention scores.
    """
    group = torch.cat([torch.full((prefix,), -1.0, device=mix.device), mix.float()])
    allowed = group[:, None] == group[None, :]
    allowed[:prefix, :] = True  # prefix rows read everything; no patch row reads a prefix
    bias = torch.zeros(allowed.shape, dtype=dtype, device=mix.device)
    return bias.masked_fill(~allowed, float("-inf"))[None, None]


def mix_tokens(tokens: torch.Tensor, mix: torch.Tensor) -> torch.Tensor:
    """``[N, L, D]`` -> sample ``i`` = own tokens where ``mix == 0``, sample ``N-1-i``'s elsewhere."""
    m = mix.to(tokens.dtype)[None, :, None]
    return tokens * (1 - m) + tokens.flip(0) * m


class MixMIM(nn.Module):
    """ViT encoder on mixed inputs + two-branch MAE decoder + dual reconstruction loss.

    Args:
        encoder: timm ``VisionTransformer`` (``num_classes=0``).
        views: Turns uint8 batches into normalised float inputs.
        decoder: :class:`PixelDecoder` (no prefix).
        mix_ratio: Fraction of positions taken from the partner image.
        norm_pix_loss: Regress per-patch normalised pixels.
    """

    def __init__(self, encoder: VisionTransformer, views: ImageViews, decoder: PixelDecoder, mix_ratio: float = 0.5,
                 norm_pix_loss: bool = True) -> None:
        super().__init__()
        self.encoder, self.views, self.decoder = encoder, views, decoder
        self.mix_ratio, self.norm_pix_loss = mix_ratio, norm_pix_loss
        self.patch = patch_size_of(encoder)
        self.grid = tuple(encoder.patch_embed.grid_size)
        self.num_prefix = encoder.num_prefix_tokens

    def no_weight_decay(self) -> set[str]:
        return {f"encoder.{n}" for n in self.encoder.no_weight_decay()} | {"decoder.mask_token"}

    def draw_mix(self, device) -> torch.Tensor:
        """One ``[L]`` mix mask per batch (1 = partner), ``mix_ratio`` of the positions."""
        length = self.grid[0] * self.grid[1]
        _, mask, _ = random_masking(torch.zeros(1, length, 1, device=device), self.mix_ratio)
        return mask[0]

    def forward_encoder(self, x: torch.Tensor, mix: torch.Tensor) -> torch.Tensor:
        """Mixed ``[N, 3, S, S]`` batch -> patch latents ``[N, L, D]`` (prefix dropped)."""
        enc = self.encoder
        tokens = add_pos_embed(enc, mix_tokens(enc.patch_embed(x), mix))
        h = enc.norm_pre(tokens)
        bias = same_image_bias(mix, self.num_prefix, h.dtype)
        for blk in enc.blocks:
            h = blk(h, attn_mask=bias)
        return enc.norm(h)[:, self.num_prefix :]

    def forward_decoder(self, latent: torch.Tensor, mix: torch.Tensor) -> torch.Tensor:
        """Unmix and decode both branches: ``[N, L, D]`` -> ``[2N, L, patch*patch*3]``."""
        h = self.decoder.embed(latent)
        m = mix.to(h.dtype)[None, :, None]
        fill = self.decoder.mask_token.to(h.dtype)
        branch1 = h * (1 - m) + fill * m  # own image's tokens
        branch2 = h * m + fill * (1 - m)  # partner's tokens
        return self.decoder.decode(torch.cat([branch1, branch2], dim=0))

    def forward(self, x: torch.Tensor, mix: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Dual reconstruction loss.

        Args:
            x: ``[N, 3, S, S]`` normalised images.
            mix: Optional ``[L]`` mix mask (tests); drawn when None.

        Returns:
            ``loss``; ``pred`` ``[N, L, patch*patch*3]`` = each image rebuilt from the tokens it
            was hidden in; ``mask`` ``[N, L]`` = ``mix`` (patches of image ``i`` absent from mixed sample ``i``).
        """
        mix = self.draw_mix(x.device) if mix is None else mix
        rec1, rec2 = self.forward_decoder(self.forward_encoder(x, mix), mix).chunk(2)
        m = mix.to(rec1.dtype)[None, :, None]
        pred = rec1 * m + rec2.flip(0) * (1 - m)
        target = patchify(x, self.patch)
        target = normalize_patches(target) if self.norm_pix_loss else target
        every = torch.ones(pred.shape[:2], device=x.device)
        return {"loss": masked_mse(pred, target, every), "pred": pred, "mask": mix.expand(x.shape[0], -1)}

    def reconstruct(self, x: torch.Tensor, pred: torch.Tensor) -> torch.Tensor:
        """Predicted patches as images ``[N, 3, S, S]``."""
        return reconstruct_pixels(x, pred, self.patch, self.grid, self.norm_pix_loss)


@register_method("mixmim", MixMIMConfig)
def build_mixmim(cfg) -> MixMIM:
    """Build MixMIM from a ``PretrainConfig`` (encoder exported like MAE's: a timm ViT)."""
    m, a = cfg.model, cfg.aug
    o: MixMIMConfig = m.params
    encoder = build_encoder(m.encoder, m.img_size, m.patch_size, m.encoder_kwargs)
    if o.sincos_pos_embed:
        fix_sincos_pos_embed(encoder)
    for name in ("cls_token", "reg_token"):
        # No patch token reads the prefix (that would mix images) and the loss ignores it, so it
        # gets no gradient; frozen so DDP does not wait for one. It is exported at its init.
        if getattr(encoder, name, None) is not None:
            getattr(encoder, name).requires_grad_(False)
    grid = tuple(encoder.patch_embed.grid_size)
    d = o.decoder
    decoder = PixelDecoder(encoder.embed_dim, grid, patch_size_of(encoder), d.dim, d.depth, d.heads, d.mlp_ratio)
    views = ImageViews(m.img_size, a.crop_scale, a.hflip, a.mean, a.std)
    return MixMIM(encoder, views, decoder, o.mix_ratio, o.norm_pix_loss)
