"""Per-step learning-rate schedule and precision shared by every training run (no Ray)."""

from __future__ import annotations

import math

import torch
from torch.optim.lr_scheduler import LambdaLR


def warmup_cosine(step: int, warmup_steps: int, total_steps: int, min_ratio: float) -> float:
    """LR multiplier at optimiser ``step``: linear warm-up from 0, then cosine to ``min_ratio``.

    Args:
        step: Optimiser steps taken so far (0 = before the first).
        warmup_steps: Steps of linear warm-up.
        total_steps: Steps in the whole run.
        min_ratio: ``min_lr / lr``.

    Returns:
        The multiplier for the base learning rate.
    """
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    span = max(1, total_steps - warmup_steps)
    progress = min(1.0, (step - warmup_steps) / span)
    return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def build_scheduler(
    optimizer: torch.optim.Optimizer,
    steps_per_epoch: int,
    epochs: int,
    warmup_epochs: float,
    lr: float,
    min_lr: float = 0.0,
) -> LambdaLR:
    """Per-step warm-up + cosine schedule; call ``step()`` once per optimiser step.

    Args:
        optimizer: Its groups' ``lr`` is the peak learning rate.
        steps_per_epoch: Optimiser steps per epoch (batches / accumulation, rounded up).
        epochs: Epochs in the whole run.
        warmup_epochs: Warm-up length in epochs (fractions allowed).
        lr: Peak learning rate (to express ``min_lr`` as a ratio).
        min_lr: Final learning rate.
    """
    total = max(1, steps_per_epoch * epochs)
    warmup = min(total, int(round(warmup_epochs * steps_per_epoch)))
    ratio = min_lr / lr if lr > 0 else 0.0
    return LambdaLR(optimizer, lambda step: warmup_cosine(step, warmup, total, ratio))


def steps_per_epoch(num_batches: int, accum_steps: int) -> int:
    """Optimiser steps in an epoch of ``num_batches`` micro-batches (a partial group still steps)."""
    return max(1, math.ceil(num_batches / accum_steps))


def resolve_precision(precision: str, device: torch.device) -> torch.dtype | None:
    """Autocast dtype: ``auto`` = bf16 on CUDA, fp32 elsewhere; reduced precision only on CUDA.

    CPU autocast is slower than fp32 for these models on most CPUs, hence CUDA only.
    """
    if device.type != "cuda" or precision in ("fp32",):
        return None
    if precision in ("auto", "bf16"):
        return torch.bfloat16
    if precision == "fp16":
        return torch.float16
    raise ValueError(f"unknown precision {precision!r}")


def make_scaler(amp_dtype: torch.dtype | None, device: torch.device) -> torch.amp.GradScaler | None:
    """A gradient scaler for fp16 only (bf16 has fp32's range and needs none)."""
    if amp_dtype is torch.float16:
        return torch.amp.GradScaler(device.type)
    return None
