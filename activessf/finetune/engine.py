"""Fine-tuning loop over any iterable of batches (no Ray): one epoch of training, evaluation."""

from __future__ import annotations

import time
from typing import Iterable

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from timm.data import Mixup
from timm.loss import SoftTargetCrossEntropy

from activessf.engine.training import TrainingState
from activessf.finetune.config import FinetuneConfig


def build_mixup(cfg: FinetuneConfig, num_classes: int) -> Mixup | None:
    """timm Mixup/CutMix (label smoothing folded into its soft targets), or None when off."""
    a = cfg.aug
    if a.mixup <= 0 and a.cutmix <= 0:
        return None
    return Mixup(mixup_alpha=a.mixup, cutmix_alpha=a.cutmix, prob=a.mix_prob,
                 label_smoothing=a.label_smoothing, num_classes=num_classes)


def build_loss(cfg: FinetuneConfig, mixup: Mixup | None, weights: torch.Tensor | None = None) -> nn.Module:
    """Soft-target CE under mixup, else CE with label smoothing and optional class weights ``[K]``."""
    if mixup is not None:
        return SoftTargetCrossEntropy()
    return nn.CrossEntropyLoss(weight=weights, label_smoothing=cfg.aug.label_smoothing)


def train_epoch(
    model: nn.Module,
    batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
    training: TrainingState,
    loss_fn: nn.Module,
    device: torch.device,
    mixup: Mixup | None = None,
    clip_grad: float | None = None,
) -> dict[str, float]:
    """One pass over ``batches``, one optimiser and scheduler step per batch.

    Args:
        model: Classifier (possibly DDP-wrapped), logits ``[B, K]``.
        batches: ``(x [B, 3, S, S] float, y [B] long)`` pairs.
        training: Optimiser, schedule and precision of this model.
        loss_fn: Loss of (logits, targets); soft targets ``[B, K]`` when ``mixup`` is given.
        device: Training device.
        mixup: Optional timm ``Mixup`` (needs an even batch; odd batches are trimmed by one).
        clip_grad: Optional max gradient norm.

    Returns:
        ``loss`` (image-weighted mean), ``images``, ``seconds``, ``lr`` (after the last step).
    """
    model.train()
    training.optimizer.zero_grad(set_to_none=True)
    total, seen, t0 = 0.0, 0, time.perf_counter()
    for x, y in batches:
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        if mixup is not None:
            n = len(x) - len(x) % 2
            x, y = mixup(x[:n], y[:n])
        with training.autocast(device):
            loss = loss_fn(model(x), y)
        training.backward(loss)
        training.step(model, clip_grad)
        total += float(loss.detach()) * len(x)
        seen += len(x)
    return {"loss": total / max(1, seen), "images": seen, "seconds": time.perf_counter() - t0,
            "lr": training.current_lr}


@torch.no_grad()
def evaluate(model: nn.Module, batches: Iterable[torch.Tensor], device: torch.device,
             amp_dtype: torch.dtype | None = None) -> np.ndarray:
    """Softmax probabilities ``[N, K]`` (float64) of un-augmented batches ``[B, 3, S, S]``, in order."""
    model.eval()
    out = []
    for x in batches:
        with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
            logits = model(x.to(device, non_blocking=True))
        out.append(F.softmax(logits.float(), dim=1).cpu().numpy().astype(np.float64))
    if not out:
        return np.zeros((0, 0))
    return np.concatenate(out)
