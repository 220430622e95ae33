"""Pure tensor helpers shared by the masked-image methods (MAE now; ConvMAE, MixMIM later).

Patch layout follows the official MAE code: a patch is flattened in ``(row, col, channel)``
order, patches are numbered row-major over the grid. ``mask`` uses 1 = removed, 0 = kept.
"""

from __future__ import annotations

import torch


def patchify(images: torch.Tensor, patch: int) -> torch.Tensor:
    """Cut images into flattened non-overlapping patches.

    Args:
        images: ``[N, C, H, W]`` with ``H`` and ``W`` multiples of ``patch``.
        patch: Patch side in pixels.

    Returns:
        ``[N, L, patch * patch * C]`` with ``L = (H / patch) * (W / patch)``.
    """
    n, c, h, w = images.shape
    if h % patch or w % patch:
        raise ValueError(f"image size {h}x{w} is not a multiple of patch size {patch}")
    gh, gw = h // patch, w // patch
    x = images.reshape(n, c, gh, patch, gw, patch)
    x = torch.einsum("nchpwq->nhwpqc", x)
    return x.reshape(n, gh * gw, patch * patch * c)


def unpatchify(patches: torch.Tensor, patch: int, grid: tuple[int, int] | None = None, channels: int = 3) -> torch.Tensor:
    """Inverse of :func:`patchify`.

    Args:
        patches: ``[N, L, patch * patch * channels]``.
        patch: Patch side in pixels.
        grid: ``(rows, cols)`` of the patch grid; ``None`` means square.
        channels: Image channels.

    Returns:
        ``[N, channels, rows * patch, cols * patch]``.
    """
    n, length, dim = patches.shape
    if dim != patch * patch * channels:
        raise ValueError(f"patch dim {dim} != {patch}*{patch}*{channels}")
    if grid is None:
        side = int(round(length**0.5))
        if side * side != length:
            raise ValueError(f"{length} patches do not form a square grid; pass grid=")
        grid = (side, side)
    gh, gw = grid
    x = patches.reshape(n, gh, gw, patch, patch, channels)
    x = torch.einsum("nhwpqc->nchpwq", x)
    return x.reshape(n, channels, gh * patch, gw * patch)


def num_kept(length: int, mask_ratio: float) -> int:
    """Tokens kept visible for ``mask_ratio`` (MAE rounds down), at least one."""
    return max(1, int(length * (1.0 - mask_ratio)))


def random_masking(
    tokens: torch.Tensor,
    mask_ratio: float,
    noise: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-sample random masking by argsort of uniform noise (MAE).

    Args:
        tokens: ``[N, L, D]`` patch tokens (no prefix tokens).
        mask_ratio: Fraction of tokens to remove, in ``[0, 1)``.
        noise: Optional ``[N, L]`` scores; the lowest ones are kept. Drawn uniformly when None
            (tests pass it to get a known mask).

    Returns:
        ``kept`` ``[N, L_keep, D]`` in ascending-noise order, ``mask`` ``[N, L]`` (1 = removed,
        in original order) and ``ids_restore`` ``[N, L]`` such that
        ``gather(cat(kept, fill), ids_restore)`` puts every token back in place.
    """
    n, length, dim = tokens.shape
    keep = num_kept(length, mask_ratio)
    if noise is None:
        noise = torch.rand(n, length, device=tokens.device)
    ids_shuffle = torch.argsort(noise, dim=1)
    ids_restore = torch.argsort(ids_shuffle, dim=1)
    ids_keep = ids_shuffle[:, :keep]
    kept = torch.gather(tokens, 1, ids_keep.unsqueeze(-1).expand(-1, -1, dim))
    mask = torch.ones(n, length, device=tokens.device, dtype=tokens.dtype)
    mask[:, :keep] = 0
    mask = torch.gather(mask, 1, ids_restore)
    return kept, mask, ids_restore


def restore_tokens(kept: torch.Tensor, fill: torch.Tensor, ids_restore: torch.Tensor) -> torch.Tensor:
    """Put kept tokens back in place, filling removed positions with ``fill``.

    Args:
        kept: ``[N, L_keep, D]`` from :func:`random_masking` (possibly transformed).
        fill: ``[1, 1, D]`` token for removed positions (MAE's mask token).
        ids_restore: ``[N, L]`` from :func:`random_masking`.

    Returns:
        ``[N, L, D]`` in the original patch order.
    """
    n, keep, dim = kept.shape
    length = ids_restore.shape[1]
    fills = fill.to(kept.dtype).expand(n, length - keep, dim)
    full = torch.cat([kept, fills], dim=1)
    return torch.gather(full, 1, ids_restore.unsqueeze(-1).expand(-1, -1, dim))


def normalize_patches(patches: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Per-patch pixel normalisation, MAE's ``norm_pix_loss`` target.

    Args:
        patches: ``[N, L, P]``.
        eps: Added to the variance.

    Returns:
        ``[N, L, P]`` with zero mean and unit (unbiased) variance per patch.
    """
    mean = patches.mean(dim=-1, keepdim=True)
    var = patches.var(dim=-1, keepdim=True)
    return (patches - mean) / (var + eps) ** 0.5


def masked_mse(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean squared error over removed patches only.

    Args:
        pred: ``[N, L, P]`` predicted pixels.
        target: ``[N, L, P]`` target pixels.
        mask: ``[N, L]``, 1 = removed (the loss counts these).

    Returns:
        Scalar loss: per-patch MSE averaged over removed patches.
    """
    per_patch = ((pred.float() - target.float()) ** 2).mean(dim=-1)
    mask = mask.float()
    return (per_patch * mask).sum() / mask.sum().clamp_min(1.0)
