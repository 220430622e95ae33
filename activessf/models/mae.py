"""Masked autoencoder (He et al. 2022) on a timm ViT encoder.

The encoder is timm's own ViT: MAE reuses its ``patch_embed``, position embedding and prefix
tokens (:func:`~activessf.models.pos_embed.add_pos_embed`), ``norm_pre``, ``blocks`` and ``norm``;
only the light decoder is new, made of timm ``Block`` layers. Its modules keep the official MAE
checkpoint's names (``decoder_embed``, ``decoder_blocks``, ...), so such a checkpoint's decoder
loads too; its shape is the shared :class:`~activessf.models.decoder.DecoderConfig`. Exporting the encoder's state dict therefore gives a
checkpoint that ``timm.create_model(name, pretrained=True, ...)`` loads as is.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn as nn
from timm.layers import trunc_normal_
from timm.models.vision_transformer import Block, VisionTransformer

from activessf.models.decoder import MaskingConfig, reconstruct_pixels
from activessf.models.encoder import build_encoder, patch_size_of
from activessf.models.masking import masked_mse, normalize_patches, patchify, random_masking, restore_tokens
from activessf.models.pos_embed import add_pos_embed, sincos_table
from activessf.models.registry import register_method
from activessf.models.views import ImageViews


@dataclass
class MAEConfig(MaskingConfig):
    """``model.mae``: mask ratio, pixel target, decoder shape, position embeddings."""

    # Fixed 2-D sin-cos position embeddings for encoder and decoder, frozen (as MAE does).
    sincos_pos_embed: bool = True
    # The class token is never trained: features are the mean of the patch tokens.
    pool: ClassVar[str] = "avg"

    def sincos_decoder(self) -> bool:
        return self.sincos_pos_embed


class MAE(nn.Module):
    """Encoder + decoder + masked pixel loss.

    Args:
        encoder: timm ``VisionTransformer`` (``num_classes=0``).
        views: Turns uint8 batches into normalised float inputs.
        mask_ratio: Fraction of patches removed.
        decoder_dim, decoder_depth, decoder_heads, decoder_mlp_ratio: Decoder shape.
        norm_pix_loss: Regress per-patch normalised pixels (MAE default).
        sincos_pos_embed: Fixed, frozen sin-cos position embeddings (encoder and decoder).
    """

    def __init__(
        self,
        encoder: VisionTransformer,
        views: ImageViews,
        mask_ratio: float = 0.75,
        decoder_dim: int = 512,
        decoder_depth: int = 8,
        decoder_heads: int = 16,
        decoder_mlp_ratio: float = 4.0,
        norm_pix_loss: bool = True,
        sincos_pos_embed: bool = True,
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.views = views
        self.mask_ratio = mask_ratio
        self.norm_pix_loss = norm_pix_loss
        self.patch = patch_size_of(encoder)
        self.grid = tuple(encoder.patch_embed.grid_size)
        self.prefix = 0 if encoder.no_embed_class else encoder.num_prefix_tokens
        # Decoder keeps every prefix token (cls, registers) so positions line up with the encoder.
        self.num_prefix = encoder.num_prefix_tokens
        num_patches = self.grid[0] * self.grid[1]
        self.decoder_embed = nn.Linear(encoder.embed_dim, decoder_dim)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, decoder_dim))
        self.decoder_pos_embed = nn.Parameter(torch.zeros(1, self.num_prefix + num_patches, decoder_dim))
        self.decoder_blocks = nn.Sequential(
            *[Block(decoder_dim, decoder_heads, decoder_mlp_ratio, qkv_bias=True) for _ in range(decoder_depth)]
        )
        self.decoder_norm = nn.LayerNorm(decoder_dim, eps=1e-6)
        self.decoder_pred = nn.Linear(decoder_dim, self.patch * self.patch * 3)
        self._init_weights(sincos_pos_embed, decoder_dim)

    def _init_weights(self, sincos: bool, decoder_dim: int) -> None:
        trunc_normal_(self.mask_token, std=0.02)
        for module in [self.decoder_embed, self.decoder_pred, *self.decoder_blocks.modules()]:
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
        if sincos:
            with torch.no_grad():
                self.encoder.pos_embed.copy_(sincos_table(self.grid, self.encoder.embed_dim, self.prefix))
                self.decoder_pos_embed.copy_(sincos_table(self.grid, decoder_dim, self.num_prefix))
            self.encoder.pos_embed.requires_grad_(False)
            self.decoder_pos_embed.requires_grad_(False)
        else:
            trunc_normal_(self.decoder_pos_embed, std=0.02)

    def no_weight_decay(self) -> set[str]:
        """Names exempt from weight decay (1-D params are exempt anyway)."""
        names = {f"encoder.{n}" for n in self.encoder.no_weight_decay()}
        return names | {"mask_token", "decoder_pos_embed"}

    def forward_encoder(self, x: torch.Tensor, mask_ratio: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Embed, mask and encode.

        Args:
            x: ``[N, 3, S, S]`` normalised images.
            mask_ratio: Fraction of patches removed.

        Returns:
            ``latent`` ``[N, P + L_keep, D]`` (P prefix tokens), ``mask`` ``[N, L]``, ``ids_restore`` ``[N, L]``.
        """
        enc = self.encoder
        # Positions added and cls/register tokens prepended; only patches are masked.
        tokens = add_pos_embed(enc, enc.patch_embed(x))
        prefix, patches = tokens[:, : self.num_prefix], tokens[:, self.num_prefix :]
        kept, mask, ids_restore = random_masking(patches, mask_ratio)
        h = enc.norm_pre(torch.cat([prefix, kept], dim=1))
        h = enc.norm(enc.blocks(h))
        return h, mask, ids_restore

    def forward_decoder(self, latent: torch.Tensor, ids_restore: torch.Tensor) -> torch.Tensor:
        """Predict pixels of every patch: ``[N, P + L_keep, D]`` -> ``[N, L, patch*patch*3]``."""
        h = self.decoder_embed(latent)
        prefix, kept = h[:, : self.num_prefix], h[:, self.num_prefix :]
        full = restore_tokens(kept, self.mask_token, ids_restore)
        h = torch.cat([prefix, full], dim=1) + self.decoder_pos_embed.to(h.dtype)
        h = self.decoder_norm(self.decoder_blocks(h))
        return self.decoder_pred(h[:, self.num_prefix :])

    def target(self, x: torch.Tensor) -> torch.Tensor:
        """Regression target ``[N, L, patch*patch*3]`` (normalised per patch if ``norm_pix_loss``)."""
        patches = patchify(x, self.patch)
        return normalize_patches(patches) if self.norm_pix_loss else patches

    def forward(self, x: torch.Tensor, mask_ratio: float | None = None) -> dict[str, torch.Tensor]:
        """Loss on removed patches.

        Args:
            x: ``[N, 3, S, S]`` normalised images (from ``views``).
            mask_ratio: Override of the configured ratio.

        Returns:
            ``loss`` (scalar), ``pred`` ``[N, L, patch*patch*3]``, ``mask`` ``[N, L]``.
        """
        ratio = self.mask_ratio if mask_ratio is None else mask_ratio
        latent, mask, ids_restore = self.forward_encoder(x, ratio)
        pred = self.forward_decoder(latent, ids_restore)
        loss = masked_mse(pred, self.target(x), mask)
        return {"loss": loss, "pred": pred, "mask": mask}

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor, pred: torch.Tensor) -> torch.Tensor:
        """Predicted patches back in image space ``[N, 3, S, S]`` (undoing per-patch norm with ``x``'s stats)."""
        return reconstruct_pixels(x, pred, self.patch, self.grid, self.norm_pix_loss)


@register_method("mae", MAEConfig)
def build_mae(cfg) -> MAE:
    """Build MAE from a ``PretrainConfig`` (its ``model`` section with ``model.mae``, and ``aug``)."""
    m, a = cfg.model, cfg.aug
    o: MAEConfig = m.params
    encoder = build_encoder(m.encoder, m.img_size, m.patch_size, m.encoder_kwargs)
    views = ImageViews(m.img_size, a.crop_scale, a.hflip, a.mean, a.std)
    d = o.decoder
    return MAE(encoder, views, mask_ratio=o.mask_ratio, decoder_dim=d.dim, decoder_depth=d.depth, decoder_heads=d.heads,
               decoder_mlp_ratio=d.mlp_ratio, norm_pix_loss=o.norm_pix_loss, sincos_pos_embed=o.sincos_pos_embed)
