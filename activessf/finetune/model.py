"""Classifier construction and its optimiser/schedule (no Ray)."""

from __future__ import annotations

from typing import Any

import timm
import torch
import torch.nn as nn

from activessf.engine.training import TrainingState, build_training_state
from activessf.finetune.config import FinetuneConfig, FtModelConfig
from activessf.models.descriptor import EncoderDescriptor, build_encoder_module, read_descriptor


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
    size differs, exactly as for timm's own checkpoints. An encoder whose export descriptor
    (``encoder.json``) names another builder than timm is rebuilt from it, loaded strictly, and
    gets a linear head. Nothing is downloaded.

    Args:
        m: Model section of the config.
        num_classes: Output classes K.
        seed: Seed of the random parts (the new head, or everything when ``init`` is none).

    Returns:
        The model, logits ``[B, K]`` for images ``[B, 3, S, S]``.
    """
    m = local_init(m)
    kw = {"num_classes": num_classes, "drop_path_rate": m.drop_path_rate, **m.encoder_kwargs}
    size_kw = {"img_size": m.img_size} | ({"patch_size": m.patch_size} if m.patch_size is not None else {})
    desc = init_descriptor(m)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if desc is not None and not desc.is_timm():
            return EncoderClassifier(build_encoder_module(desc, m.init), num_classes)
        if m.init == "none":
            return _create(m.name, kw, size_kw, pretrained=False)
        return _create(m.name, kw, size_kw, pretrained=True, pretrained_cfg_overlay=dict(file=m.init))


def check_init(m: FtModelConfig, num_classes: int) -> None:
    """Check in the driver that ``m.init`` fits ``m.name``, before any Ray Train run starts.

    timm loads a pretrained file non-strictly once it drops the classifier, so a file of another
    architecture would load in part with only a logged warning. Every weight of the model but its
    head must be in the file, and the file must hold nothing else (the head aside).

    Raises:
        WeightsError: ``m.init`` does not fit ``m.name`` (the message names the file and keys).
    """
    from activessf.errors import WeightsError

    if m.init == "none":
        return
    m = local_init(m)
    desc = init_descriptor(m)
    if desc is not None and not desc.is_timm():
        try:  # rebuilt from its descriptor and loaded strictly: a misfit fails here
            build_encoder_module(desc, m.init)
        except (RuntimeError, ValueError, OSError) as exc:
            raise WeightsError(f"weights {m.init} do not fit their descriptor ({desc.builder}): {exc}"[:400]) from exc
        return
    try:
        file_keys = set(timm.models.load_state_dict(m.init, weights_only=True))
    except Exception as exc:  # unreadable or not a state dict
        raise WeightsError(f"weights {m.init}: not a readable state dict ({type(exc).__name__}: {exc})"[:400]) from exc
    model = build_classifier(FtModelConfig(**{**m.__dict__, "init": "none"}), num_classes)
    head = {f"{n}.{p}" for n in _head_names(model) for p in ("weight", "bias")}
    model_keys = set(model.state_dict()) - head
    missing, unexpected = sorted(model_keys - file_keys), sorted(file_keys - model_keys - head)
    if missing or unexpected:
        raise WeightsError(f"weights {m.init} do not fit {m.name}: {len(missing)} missing keys "
                           f"({', '.join(missing[:3])}), {len(unexpected)} unexpected ({', '.join(unexpected[:3])})")


def local_init(m: FtModelConfig) -> FtModelConfig:
    """``m`` with an object-storage ``init`` replaced by a local copy (timm and safetensors open
    only local files; each node fetches its own copy once, ``activessf.io.fs.local_copy``)."""
    from activessf.io.fs import is_remote, local_copy

    return FtModelConfig(**{**m.__dict__, "init": local_copy(m.init)}) if is_remote(m.init) else m


def _head_names(model: nn.Module) -> list[str]:
    """Module names of the classifier head (what a pretrained file need not have)."""
    names = getattr(model, "pretrained_cfg", {}).get("classifier", "head")
    return [names] if isinstance(names, str) else list(names)


def init_descriptor(m: FtModelConfig) -> EncoderDescriptor | None:
    """The export descriptor of ``m.init`` (an ``activessf pretrain`` encoder), else None."""
    return None if m.init == "none" else read_descriptor(m.init)


class EncoderClassifier(nn.Module):
    """Pooled encoder features ``[B, D]`` -> linear head ``[B, K]`` (for non-timm encoders).

    ``num_classes`` 0 gives the features themselves, as timm's ``num_classes=0`` does.
    """

    def __init__(self, encoder: nn.Module, num_classes: int):
        super().__init__()
        self.encoder = encoder
        self.head: nn.Module = nn.Identity()
        if num_classes > 0:
            self.head = nn.Linear(encoder.num_features, num_classes)
            nn.init.trunc_normal_(self.head.weight, std=2e-5)
            nn.init.zeros_(self.head.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(x))


def finetune_training(model: nn.Module, cfg: FinetuneConfig, steps_per_epoch: int, device: torch.device) -> TrainingState:
    """AdamW with layer-wise lr decay (timm), warm-up + cosine per step, precision.

    Args:
        model: The bare classifier, already on ``device``.
        cfg: Stage config.
        steps_per_epoch: Optimiser steps per epoch on this worker.
        device: Training device.
    """
    return build_training_state(model, cfg.optim, cfg.resolved_lr(), steps_per_epoch, cfg.train.precision, device,
                                layer_decay=cfg.optim.layer_decay)
