"""One training plumbing for pretraining and fine-tuning (no Ray).

Both engines (``engine.pretrain_engine`` and ``finetune.engine``) and both Ray Train loops hold a
:class:`TrainingState` (optimiser, per-step schedule, precision) and step it with
:meth:`TrainingState.backward` / :meth:`TrainingState.step`, as MAE shares its
``NativeScalerWithGradNormCount`` between its pretraining and fine-tuning engines.
"""

from __future__ import annotations

import contextlib
import dataclasses
from typing import Any, Protocol, Sequence

import torch
import torch.nn as nn
from timm.optim import create_optimizer_v2
from torch.optim.lr_scheduler import LambdaLR

from activessf.engine.optim import build_scheduler, make_scaler, resolve_precision
from activessf.engine.state import restore_training_state, training_state


class AdamWSettings(Protocol):
    """The AdamW + warm-up/cosine fields every training config has (``optim.*``)."""

    weight_decay: float
    betas: Sequence[float]
    warmup_epochs: float
    epochs: int
    min_lr: float


def optimizer_step(model: nn.Module, optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler | None,
                   clip_grad: float | None) -> None:
    """Unscale (fp16), clip, step, update the scaler and clear the gradients.

    Args:
        model: Whose parameters are clipped (wrapped or not).
        optimizer: Holds the gradients of the last backward pass(es).
        scaler: ``GradScaler`` for fp16, else None.
        clip_grad: Max global gradient norm, or None for no clipping.
    """
    if scaler is not None:
        scaler.unscale_(optimizer)
    if clip_grad is not None:
        nn.utils.clip_grad_norm_(model.parameters(), clip_grad)
    if scaler is not None:
        scaler.step(optimizer)
        scaler.update()
    else:
        optimizer.step()
    optimizer.zero_grad(set_to_none=True)


@dataclasses.dataclass
class TrainingState:
    """What a training run steps and checkpoints besides the model.

    Attributes:
        optimizer: AdamW over the model's parameter groups.
        scheduler: Per-step warm-up + cosine multiplier (``engine.optim.build_scheduler``).
        scaler: ``GradScaler`` for fp16, else None.
        amp_dtype: Autocast dtype, or None for fp32.
        lr: Peak learning rate.
        steps_per_epoch: Optimiser steps per epoch on this worker.
        epochs: Epochs of the whole run.
    """

    optimizer: torch.optim.Optimizer
    scheduler: LambdaLR
    scaler: torch.amp.GradScaler | None
    amp_dtype: torch.dtype | None
    lr: float
    steps_per_epoch: int
    epochs: int

    @property
    def total_steps(self) -> int:
        """Optimiser steps of the whole run."""
        return self.steps_per_epoch * self.epochs

    @property
    def current_lr(self) -> float:
        """The largest group learning rate now (layer decay gives lower ones to early blocks)."""
        return max(g["lr"] for g in self.optimizer.param_groups)

    def autocast(self, device: torch.device):
        """Autocast context for the forward pass (a no-op in fp32)."""
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device.type, dtype=self.amp_dtype)

    def backward(self, loss: torch.Tensor) -> None:
        """Backward pass of ``loss`` (scaled under fp16)."""
        (self.scaler.scale(loss) if self.scaler is not None else loss).backward()

    def step(self, model: nn.Module, clip_grad: float | None = None) -> None:
        """One optimiser step (see :func:`optimizer_step`) and one scheduler step."""
        optimizer_step(model, self.optimizer, self.scaler, clip_grad)
        self.scheduler.step()

    def snapshot(self, model: nn.Module, epoch: int, config: dict, history: list[dict]) -> dict[str, Any]:
        """A ``weights_only``-loadable checkpoint after ``epoch`` completed epochs."""
        return training_state(model, self.optimizer, self.scheduler, self.scaler, epoch, config, history)

    def restore(self, state: dict[str, Any], model: nn.Module, restore_rng: bool = False) -> int:
        """Load :meth:`snapshot` output in place; returns the completed epochs."""
        return restore_training_state(state, model, self.optimizer, self.scheduler, self.scaler, restore_rng)


def build_training_state(
    model: nn.Module,
    optim: AdamWSettings,
    lr: float,
    steps_per_epoch: int,
    precision: str,
    device: torch.device,
    layer_decay: float | None = None,
) -> TrainingState:
    """AdamW (timm: no decay on norms, biases and ``no_weight_decay()`` names), schedule, precision.

    Args:
        model: The bare model, already on ``device`` (before any DDP wrapping: same parameters).
        optim: The config's ``optim`` section.
        lr: Peak learning rate (the config's ``resolved_lr()``).
        steps_per_epoch: Optimiser steps per epoch on this worker.
        precision: ``auto`` / ``fp32`` / ``bf16`` / ``fp16`` (reduced precision on CUDA only).
        device: Training device.
        layer_decay: Layer-wise lr decay (fine-tuning a ViT), or None.

    Returns:
        The :class:`TrainingState`.
    """
    optimizer = create_optimizer_v2(model, opt="adamw", lr=lr, weight_decay=optim.weight_decay,
                                    betas=tuple(optim.betas), layer_decay=layer_decay)
    for group in optimizer.param_groups:
        # timm's own schedulers apply lr_scale; LambdaLR scales the group's lr, so bake it in.
        group["lr"] = lr * group.get("lr_scale", 1.0)
    scheduler = build_scheduler(optimizer, steps_per_epoch, optim.epochs, optim.warmup_epochs, lr, optim.min_lr)
    amp_dtype = resolve_precision(precision, device)
    return TrainingState(optimizer, scheduler, make_scaler(amp_dtype, device), amp_dtype, lr, steps_per_epoch,
                         optim.epochs)
