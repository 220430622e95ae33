"""Fine-tuning loop over any iterable of batches (no Ray): one epoch of training, evaluation."""

from __future__ import annotations

import contextlib
import time
from typing import Any, Iterable

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from timm.data import Mixup
from timm.loss import SoftTargetCrossEntropy

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


def _autocast(device: torch.device, amp_dtype: torch.dtype | None):
    return torch.autocast(device.type, dtype=amp_dtype) if amp_dtype is not None else contextlib.nullcontext()


def train_epoch(
    model: nn.Module,
    batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
    parts: dict[str, Any],
    loss_fn: nn.Module,
    device: torch.device,
    mixup: Mixup | None = None,
    clip_grad: float | None = None,
) -> dict[str, float]:
    """One pass over ``batches``, one optimiser and scheduler step per batch.

    Args:
        model: Classifier (possibly DDP-wrapped), logits ``[B, K]``.
        batches: ``(x [B, 3, S, S] float, y [B] long)`` pairs.
        parts: ``optimizer``, ``scheduler``, ``scaler`` (or None), ``amp_dtype`` (or None).
        loss_fn: Loss of (logits, targets); soft targets ``[B, K]`` when ``mixup`` is given.
        device: Training device.
        mixup: Optional timm ``Mixup`` (needs an even batch; odd batches are trimmed by one).
        clip_grad: Optional max gradient norm.

    Returns:
        ``loss`` (image-weighted mean), ``images``, ``seconds``, ``lr`` (after the last step).
    """
    model.train()
    opt, sched, scaler = parts["optimizer"], parts["scheduler"], parts.get("scaler")
    total, seen, t0 = 0.0, 0, time.perf_counter()
    for x, y in batches:
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        if mixup is not None:
            n = len(x) - len(x) % 2
            x, y = mixup(x[:n], y[:n])
        with _autocast(device, parts.get("amp_dtype")):
            loss = loss_fn(model(x), y)
        opt.zero_grad(set_to_none=True)
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.unscale_(opt)
        else:
            loss.backward()
        if clip_grad is not None:
            nn.utils.clip_grad_norm_(model.parameters(), clip_grad)
        scaler.step(opt) if scaler is not None else opt.step()
        if scaler is not None:
            scaler.update()
        sched.step()
        total += float(loss.detach()) * len(x)
        seen += len(x)
    return {"loss": total / max(1, seen), "images": seen, "seconds": time.perf_counter() - t0,
            "lr": max(g["lr"] for g in opt.param_groups)}


@torch.no_grad()
def evaluate(model: nn.Module, batches: Iterable[torch.Tensor], device: torch.device,
             amp_dtype: torch.dtype | None = None) -> np.ndarray:
    """Softmax probabilities ``[N, K]`` (float64) of un-augmented batches ``[B, 3, S, S]``, in order."""
    model.eval()
    out = []
    for x in batches:
        with _autocast(device, amp_dtype):
            logits = model(x.to(device, non_blocking=True))
        out.append(F.softmax(logits.float(), dim=1).cpu().numpy().astype(np.float64))
    if not out:
        return np.zeros((0, 0))
    return np.concatenate(out)
