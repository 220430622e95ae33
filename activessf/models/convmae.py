"""ConvMAE (Gao et al. 2022, "ConvMAE: Masked Convolution Meets Masked Autoencoders").

Encoder (:class:`ConvViT`): two convolutional stages then a transformer stage, total stride =
``patch`` (16: stages at 1/4, 1/8, 1/16; in general ``patch/4``, ``patch/2``, ``patch``). The mask
is drawn once on the final (1/16) grid and upsampled to the earlier grids by nearest repetition,
so a masked 1/16 patch masks exactly its 4x4 and 2x2 cells before. Conv blocks multiply their
input to the 5x5 depthwise convolution by the keep-mask ("masked convolution"), so no visible
output sees masked pixels; the transformer stage runs on visible tokens only. Multi-scale
fusion: stage-1/2 features are pooled to the final grid by strided convolutions and added to the
transformer output before the final norm. The decoder and loss are MAE's.

Export / fine-tuning: ``encoder.safetensors`` holds a :class:`ConvViT` state dict and
``encoder.json`` its descriptor (``builder: convmae``, registered here with
:func:`~activessf.models.descriptor.register_encoder_builder`), from which fine-tuning rebuilds it
(or call :func:`load_convmae_encoder`). ``ConvViT(x)`` gives mean-pooled features ``[N, dims[2]]``.
``model.encoder`` (a timm name) is not used by this method; ``model.convmae`` holds its shape. The conv block is written here
(timm's ConvNeXt block has no mask input); the transformer blocks are timm ``Block``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
import torch.nn as nn
from timm.layers import ConvMlp, LayerNorm2d
from timm.models.vision_transformer import Block

from activessf.config import check, require
from activessf.models.decoder import MaskingConfig, PixelDecoder, reconstruct_pixels
from activessf.models.descriptor import EncoderDescriptor, register_encoder_builder
from activessf.models.masking import masked_mse, normalize_patches, patchify, random_masking, restore_tokens
from activessf.models.pos_embed import sincos_table
from activessf.models.registry import register_method
from activessf.models.views import ImageViews


@dataclass
class ConvMAEConfig(MaskingConfig):
    """``model.convmae``: the hybrid encoder's shape, plus mask ratio, pixel target and decoder."""

    # Widths and depths of the conv, conv and transformer stages (total stride = patch size, i.e.
    # 1/4, 1/8, 1/16 for patch 16); heads of the transformer stage.
    dims: list[int] = field(default_factory=lambda: [256, 384, 768])
    depths: list[int] = field(default_factory=lambda: [2, 2, 11])
    heads: int = 12
    pool: ClassVar[str] = "avg"

    def __post_init__(self) -> None:
        super().__post_init__()
        check(len(self.dims) == 3 and min(self.dims) >= 1, "dims", "need 3 widths >= 1")
        check(len(self.depths) == 3 and min(self.depths) >= 1, "depths", "need 3 depths >= 1")
        dims = self.dims if len(self.dims) == 3 else [1, 1, 1]
        check(self.heads >= 1 and dims[2] % self.heads == 0, "heads", "must divide dims[2]")

    def check_model(self, m: Any) -> None:
        """The shared ``model`` fields ConvMAE constrains (its strides are patch/4, 2, 2)."""
        patch = m.patch_size or 16
        require(patch % 4 == 0, "model.patch_size", "ConvMAE needs a multiple of 4 (strides patch/4, 2, 2)")
        require(m.img_size % patch == 0, "model.img_size", f"ConvMAE needs a multiple of the patch size {patch}")

    def encoder_descriptor(self, m: Any) -> EncoderDescriptor:
        """Not a timm model: rebuilt by the ``convmae`` builder from these arguments."""
        return EncoderDescriptor(method="convmae", builder="convmae", name="convmae", img_size=m.img_size,
                                 patch_size=m.patch_size or 16, pool=self.pool,
                                 kwargs={"dims": list(self.dims), "depths": list(self.depths), "heads": self.heads})


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
        table = sincos_table(self.grid, dims[2], 0)
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


@register_encoder_builder("convmae")
def convmae_encoder(img_size: int, patch_size: int | None, dims, depths, heads: int) -> ConvViT:
    """The ConvMAE encoder of a descriptor (``builder: convmae``), untrained."""
    return ConvViT(img_size, patch_size or 16, dims, depths, heads)


def build_convmae_encoder(m) -> ConvViT:
    """The ConvMAE encoder of a pretraining ``ModelConfig`` (its ``model.convmae`` section)."""
    o: ConvMAEConfig = m.sections["convmae"]
    return convmae_encoder(m.img_size, m.patch_size, o.dims, o.depths, o.heads)


def load_convmae_encoder(path: str) -> ConvViT:
    """The encoder an export at ``path`` holds, rebuilt from its descriptor and loaded (strict)."""
    from activessf.models.descriptor import build_encoder_module, read_descriptor

    desc = read_descriptor(path)
    if desc is None or desc.builder != "convmae":
        raise ValueError(f"{path}: not a ConvMAE export (no convmae encoder descriptor)")
    return build_encoder_module(desc, path)


@register_method("convmae", ConvMAEConfig)
def build_convmae(cfg) -> ConvMAE:
    """Build ConvMAE from a ``PretrainConfig``."""
    m, a = cfg.model, cfg.aug
    o: ConvMAEConfig = m.params
    encoder = build_convmae_encoder(m)
    d = o.decoder
    decoder = PixelDecoder(encoder.embed_dim, encoder.grid, encoder.patch, d.dim, d.depth, d.heads, d.mlp_ratio)
    views = ImageViews(m.img_size, a.crop_scale, a.hflip, a.mean, a.std)
    return ConvMAE(encoder, views, o.mask_ratio, decoder, o.norm_pix_loss)
