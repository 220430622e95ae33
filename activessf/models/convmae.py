"""ConvMAE (Gao et al. 2022, "ConvMAE: Masked Convolution Meets Masked Autoencoders").

Encoder (:class:`ConvViT`): two convolutional stages then a transformer stage, total stride =
``patch`` (16: stages at 1/4, 1/8, 1/16; in general ``patch/4``, ``patch/2``, ``patch``). The mask
is drawn once on the final (1/16) grid and upsampled to the earlier grids by nearest repetition,
so a masked 1/16 patch masks exactly its 4x4 and 2x2 cells before. Conv blocks multiply their
input to the 5x5 depthwise convolution by the keep-mask ("masked convolution"), so no visible
output sees masked pixels; the transformer stage runs on visible tokens only. Multi-scale
fusion: stage-1/2 features are pooled to the final grid by strided convolutions and added to the
transformer output before the final norm. The decoder and loss are MAE's.

Export / fine-tuning: ``encoder.safetensors`` holds a :class:`ConvViT` state dict; rebuild it with
:func:`build_convmae_encoder` (same ``model`` section) and ``load_state_dict`` -- or call
:func:`load_convmae_encoder`. ``ConvViT(x)`` gives mean-pooled features ``[N, dims[2]]``.
``model.encoder`` (a timm name) is not used by this method. The conv block is written here
(timm's ConvNeXt block has no mask input); the transformer blocks are timm ``Block``.
"""

from __future__ import annotations

import torch
import torch.nn as nn
from timm.layers import ConvMlp, LayerNorm2d, build_sincos2d_pos_embed
from timm.models.vision_transformer import Block

from activessf.models.decoder import PixelDecoder, reconstruct_pixels
from activessf.models.masking import (
    masked_mse,
    normalize_patches,
    patchify,
    random_masking,
    restore_tokens,
)
from activessf.models.registry import register_method
from activessf.models.views import ImageViews


class CBlock(nn.Module):
    """ConvMAE conv block: norm, 1x1, masked 5x5 depthwise, 1x1; then norm + 1x1-conv MLP."""

    def __init__(self, dim: int, mlp_ratio: float = 4.0) -> None:
        super().__init__()
        self.norm1 = LayerNorm2d(dim)
        self.conv1 = nn.Conv2d(dim, dim, 1)
        self.dwconv = nn.Conv2d(dim, dim, 5, padding=2, groups=dim)
        self.conv2 = nn.Conv2d(dim, dim, 1)
        self.norm2 = LayerNorm2d(dim)
        self.mlp = ConvMlp(dim, int(dim * mlp_ratio), act_layer=nn.GELU)

    def forward(self, x: torch.Tensor, keep: torch.Tensor | None = None) -> torch.Tensor:
        """``x`` ``[N, C, H, W]``; ``keep`` ``[N, 1, H, W]`` (1 = visible) or None."""
        h = self.conv1(self.norm1(x))
        if keep is not None:
            h = h * keep  # masked convolution: masked cells contribute zeros to their neighbours
        x = x + self.conv2(self.dwconv(h))
        return x + self.mlp(self.norm2(x))


def stem(cin: int, cout: int, stride: int) -> nn.Sequential:
    """Non-overlapping patch embedding (kernel = stride, so it never mixes patches) + norm."""
    return nn.Sequential(nn.Conv2d(cin, cout, stride, stride=stride), LayerNorm2d(cout))


def upsample_mask(mask: torch.Tensor, grid: tuple[int, int], factor: int) -> torch.Tensor:
    """Mask ``[N, L]`` on ``grid`` -> ``[N, 1, rows*factor, cols*factor]`` by repetition."""
    m = mask.view(-1, 1, *grid)
    return m.repeat_interleave(factor, dim=2).repeat_interleave(factor, dim=3)


def to_tokens(x: torch.Tensor) -> torch.Tensor:
    """``[N, C, H, W]`` -> ``[N, H*W, C]`` (row-major, the patchify order)."""
    return x.flatten(2).transpose(1, 2)


class ConvViT(nn.Module):
    """ConvMAE's hybrid encoder.

    Args:
        img_size: Input side.
        patch: Total stride (multiple of 4).
        dims: Widths of the three stages.
        depths: Blocks per stage.
        heads: Attention heads of the transformer stage.
        mlp_ratio: MLP expansion everywhere.
    """

    def __init__(self, img_size: int, patch: int, dims, depths, heads: int, mlp_ratio: float = 4.0) -> None:
        super().__init__()
        s1 = patch // 4
        self.patch, self.strides = patch, (s1, 2, 2)
        self.grid = (img_size // patch, img_size // patch)
        self.num_features = self.embed_dim = dims[2]
        self.stem1, self.stem2, self.stem3 = stem(3, dims[0], s1), stem(dims[0], dims[1], 2), stem(dims[1], dims[2], 2)
        self.blocks1 = nn.ModuleList([CBlock(dims[0], mlp_ratio) for _ in range(depths[0])])
        self.blocks2 = nn.ModuleList([CBlock(dims[1], mlp_ratio) for _ in range(depths[1])])
        self.proj3 = nn.Linear(dims[2], dims[2])
        table = build_sincos2d_pos_embed(list(self.grid), dims[2]).unsqueeze(0)
        self.register_buffer("pos_embed", table, persistent=False)  # fixed sin-cos (as ConvMAE)
        self.blocks3 = nn.Sequential(*[Block(dims[2], heads, mlp_ratio, qkv_bias=True) for _ in range(depths[2])])
        # Multi-scale fusion: pool earlier stages onto the final grid (kernel = stride).
        self.fuse1 = nn.Conv2d(dims[0], dims[2], 4, stride=4)
        self.fuse2 = nn.Conv2d(dims[1], dims[2], 2, stride=2)
        self.norm = nn.LayerNorm(dims[2], eps=1e-6)

    def forward_features(self, x: torch.Tensor, mask: torch.Tensor | None = None, noise: torch.Tensor | None = None,
                         ratio: float = 0.0) -> torch.Tensor:
        """Encode; with ``mask`` only visible tokens come out.

        Args:
            x: ``[N, 3, S, S]``.
            mask: ``[N, L]`` on the final grid (1 = removed) or None for all tokens.
            noise: ``[N, L]`` scores that produced ``mask`` (orders the kept tokens).
            ratio: Mask ratio that produced ``mask``.

        Returns:
            ``[N, L_keep, D]`` (``L_keep = L`` without a mask).
        """
        keep1 = keep2 = None
        if mask is not None:
            keep1 = 1.0 - upsample_mask(mask, self.grid, 4).to(x.dtype)
            keep2 = 1.0 - upsample_mask(mask, self.grid, 2).to(x.dtype)
        h1 = self.stem1(x)
        for blk in self.blocks1:
            h1 = blk(h1, keep1)
        h2 = self.stem2(h1)
        for blk in self.blocks2:
            h2 = blk(h2, keep2)
        h3 = self.proj3(to_tokens(self.stem3(h2))) + self.pos_embed.to(x.dtype)
        skip = to_tokens(self.fuse1(h1)) + to_tokens(self.fuse2(h2))
        if mask is not None:
            h3, _, _ = random_masking(h3, ratio, noise)
            skip, _, _ = random_masking(skip, ratio, noise)
        return self.norm(self.blocks3(h3) + skip)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Mean-pooled features ``[N, D]`` of an unmasked image (fine-tuning / probing)."""
        return self.forward_features(x).mean(dim=1)


class ConvMAE(nn.Module):
    """ConvViT encoder + MAE decoder + masked pixel loss on the final grid."""

    def __init__(self, encoder: ConvViT, views: ImageViews, mask_ratio: float, decoder: PixelDecoder,
                 norm_pix_loss: bool = True) -> None:
        super().__init__()
        self.encoder, self.views, self.decoder = encoder, views, decoder
        self.mask_ratio, self.norm_pix_loss = mask_ratio, norm_pix_loss
        self.patch, self.grid = encoder.patch, encoder.grid

    def no_weight_decay(self) -> set[str]:
        return {"decoder.mask_token"}

    def draw_mask(self, n: int, ratio: float, device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Noise ``[N, L]``, mask ``[N, L]`` (1 = removed) and ids_restore ``[N, L]`` on the final grid."""
        length = self.grid[0] * self.grid[1]
        noise = torch.rand(n, length, device=device)
        _, mask, ids_restore = random_masking(torch.zeros(n, length, 1, device=device), ratio, noise)
        return noise, mask, ids_restore

    def forward(self, x: torch.Tensor, mask_ratio: float | None = None) -> dict[str, torch.Tensor]:
        """Loss on removed patches.

        Args:
            x: ``[N, 3, S, S]`` normalised images.
            mask_ratio: Override of the configured ratio.

        Returns:
            ``loss``, ``pred`` ``[N, L, patch*patch*3]``, ``mask`` ``[N, L]``.
        """
        ratio = self.mask_ratio if mask_ratio is None else mask_ratio
        noise, mask, ids_restore = self.draw_mask(x.shape[0], ratio, x.device)
        latent = self.encoder.forward_features(x, mask, noise, ratio)
        full = restore_tokens(self.decoder.embed(latent), self.decoder.mask_token, ids_restore)
        pred = self.decoder.decode(full)
        target = patchify(x, self.patch)
        target = normalize_patches(target) if self.norm_pix_loss else target
        return {"loss": masked_mse(pred, target, mask), "pred": pred, "mask": mask}

    def reconstruct(self, x: torch.Tensor, pred: torch.Tensor) -> torch.Tensor:
        """Predicted patches as images ``[N, 3, S, S]``."""
        return reconstruct_pixels(x, pred, self.patch, self.grid, self.norm_pix_loss)


def build_convmae_encoder(m) -> ConvViT:
    """The ConvMAE encoder from a ``ModelConfig`` (what fine-tuning rebuilds before loading)."""
    return ConvViT(m.img_size, m.patch_size or 16, m.convmae_dims, m.convmae_depths, m.convmae_heads)


def load_convmae_encoder(path: str, m) -> ConvViT:
    """Rebuild the encoder for ``ModelConfig`` ``m`` and load exported weights (strict)."""
    from safetensors.torch import load_file

    encoder = build_convmae_encoder(m)
    encoder.load_state_dict(load_file(path))
    return encoder


@register_method("convmae")
def build_convmae(cfg) -> ConvMAE:
    """Build ConvMAE from a ``PretrainConfig``."""
    m, a = cfg.model, cfg.aug
    encoder = build_convmae_encoder(m)
    decoder = PixelDecoder(encoder.embed_dim, encoder.grid, encoder.patch, m.decoder_dim, m.decoder_depth,
                           m.decoder_heads, m.decoder_mlp_ratio)
    views = ImageViews(m.img_size, a.crop_scale, a.hflip, a.mean, a.std)
    return ConvMAE(encoder, views, m.mask_ratio, decoder, m.norm_pix_loss)
