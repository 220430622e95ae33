"""Classifier construction and its optimiser/schedule (no Ray)."""

from __future__ import annotations

from typing import Any

import timm
import torch
import torch.nn as nn
from timm.optim import create_optimizer_v2

from activessf.engine.optim import build_scheduler, make_scaler, resolve_precision
from activessf.finetune.config import FinetuneConfig, FtModelConfig


def _create(name: str, kw: dict[str, Any], size_kw: dict[str, Any], **load: Any) -> nn.Module:
    """``timm.create_model`` with ``size_kw`` (img_size/patch_size) where the model takes them.

    ViTs need the image size to shape their position embeddings; CNNs take any input size and
    reject these arguments with a TypeError, so they are built without.
    """
    try:
        return timm.create_model(name, **kw, **size_kw, **load)
    except TypeError as exc:
        if not any(k in str(exc) for k in size_kw):
            raise
        return timm.create_model(name, **kw, **load)


def build_classifier(m: FtModelConfig, num_classes: int, seed: int = 0) -> nn.Module:
    """A timm classifier with ``num_classes`` outputs, initialised from ``m.init`` or at random.

    Pretrained weights load through timm itself (``pretrained_cfg_overlay=dict(file=...)``):
    timm drops the classifier it cannot use and resamples ViT position embeddings if the image
    size differs, exactly as for timm's own checkpoints. Nothing is downloaded.

    Args:
        m: Model section of the config.
        num_classes: Output classes K.
        seed: Seed of the random parts (the new head, or everything when ``init`` is none).

    Returns:
        The model, logits ``[B, K]`` for images ``[B, 3, S, S]``.
    """
    kw = {"num_classes": num_classes, "drop_path_rate": m.drop_path_rate, **m.encoder_kwargs}
    size_kw = {"img_size": m.img_size} | ({"patch_size": m.patch_size} if m.patch_size is not None else {})
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if m.init == "none":
            return _create(m.name, kw, size_kw, pretrained=False)
        return _create(m.name, kw, size_kw, pretrained=True, pretrained_cfg_overlay=dict(file=m.init))


def build_ft_training(model: nn.Module, cfg: FinetuneConfig, steps_per_epoch: int, device: torch.device) -> dict[str, Any]:
    """AdamW (layer-wise lr decay via timm), warm-up + cosine per step, precision.

    Args:
        model: The bare classifier, already on ``device``.
        cfg: Stage config.
        steps_per_epoch: Optimiser steps per epoch on this worker.
        device: Training device.

    Returns:
        ``optimizer``, ``scheduler``, ``scaler``, ``amp_dtype``, ``lr``, ``steps_per_epoch``.
    """
    o = cfg.optim
    lr = cfg.resolved_lr()
    optimizer = create_optimizer_v2(model, opt="adamw", lr=lr, weight_decay=o.weight_decay,
                                    betas=tuple(o.betas), layer_decay=o.layer_decay)
    for group in optimizer.param_groups:
        # timm's own schedulers apply lr_scale; LambdaLR scales the group's lr, so bake it in.
        group["lr"] = lr * group.get("lr_scale", 1.0)
    scheduler = build_scheduler(optimizer, steps_per_epoch, o.epochs, o.warmup_epochs, lr, o.min_lr)
    amp_dtype = resolve_precision(cfg.train.precision, device)
    return {"optimizer": optimizer, "scheduler": scheduler, "scaler": make_scaler(amp_dtype, device),
            "amp_dtype": amp_dtype, "lr": lr, "steps_per_epoch": steps_per_epoch}
