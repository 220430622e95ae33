"""Self-supervised training loop over any iterable of batches (no Ray).

The same two functions drive the plain single-process baseline, the tests and every Ray Train
worker (which passes a DDP-wrapped model, its dataset shard and an end-of-epoch hook), so the
benchmark compares the distribution layer and nothing else.

A batch is a uint8 image tensor/array ``[N, H, W, 3]`` or a dict holding one under ``"image"``.
Augmentation happens here, per batch on the training device, through ``method.views``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import time
from typing import Any, Callable, Iterable, Iterator

import numpy as np
import torch
import torch.nn as nn

from activessf.engine.optim import steps_per_epoch
from activessf.engine.state import unwrap
from activessf.engine.training import TrainingState, build_training_state

log = logging.getLogger(__name__)


@dataclasses.dataclass
class EpochStats:
    """One epoch on one worker.

    Attributes:
        loss: Mean training loss over micro-batches.
        lr: Learning rate of the last optimiser step.
        images: Images seen.
        seconds: Wall time of the epoch, data waiting included.
        images_per_s: ``images / seconds``.
        steps: Optimiser steps taken.
    """

    loss: float
    lr: float
    images: int
    seconds: float
    images_per_s: float
    steps: int


def batch_images(batch: Any) -> torch.Tensor:
    """The uint8 image tensor of a batch (dict with ``"image"``, tensor or NumPy array)."""
    if isinstance(batch, dict):
        batch = batch["image"]
    if isinstance(batch, np.ndarray):
        batch = torch.from_numpy(batch)
    return batch


def _with_last(items: Iterable[Any]) -> Iterator[tuple[Any, bool]]:
    # Look one ahead so the final micro-batch of an epoch always synchronises gradients.
    it = iter(items)
    try:
        prev = next(it)
    except StopIteration:
        return
    for item in it:
        yield prev, False
        prev = item
    yield prev, True


def _no_sync(model: nn.Module, sync: bool):
    # DDP all-reduces on every backward unless told not to; skip it on accumulation steps.
    if sync or not hasattr(model, "no_sync"):
        return contextlib.nullcontext()
    return model.no_sync()


def train_one_epoch(
    method: nn.Module,
    training: TrainingState,
    batches: Iterable[Any],
    device: torch.device,
    accum_steps: int = 1,
    log_every: int = 0,
    clip_grad: float | None = None,
    step_hook: bool = True,
) -> EpochStats:
    """Train one pass over ``batches``; the scheduler steps once per optimiser step.

    Args:
        method: Method module (bare or DDP-wrapped) with ``views`` on the bare module.
        training: Optimiser, schedule and precision built for this method.
        batches: Iterable of uint8 ``[N, H, W, 3]`` batches or dicts with ``"image"``.
        device: Where the batch, views and model run.
        accum_steps: Micro-batches per optimiser step; the last group of an epoch may be shorter.
        log_every: Log loss every this many micro-batches (0 = never).
        clip_grad: Max gradient norm or None.
        step_hook: Call the method's ``on_step(progress)``, if it defines one, after every
            optimiser step with ``progress = steps done / training.total_steps`` in [0, 1]
            (e.g. MoCo's momentum schedule).

    Returns:
        :class:`EpochStats` for this worker.
    """
    core = unwrap(method)
    method.train()
    training.optimizer.zero_grad(set_to_none=True)
    loss_sum = torch.zeros((), device=device)
    n_batches = images = steps = pending = 0
    lr = training.optimizer.param_groups[0]["lr"]
    on_step = getattr(core, "on_step", None) if step_hook else None
    start = time.perf_counter()
    for batch, last in _with_last(batches):
        x = core.views(batch_images(batch).to(device, non_blocking=True))
        pending += 1
        sync = pending == accum_steps or last
        with _no_sync(method, sync):
            with training.autocast(device):
                loss = method(x)["loss"]
            # A short final group keeps the 1/accum_steps scale (its step is proportionally smaller).
            training.backward(loss / accum_steps)
        if sync:
            lr = training.optimizer.param_groups[0]["lr"]
            training.step(method, clip_grad)
            steps, pending = steps + 1, 0
            if on_step is not None:
                # The scheduler's step count survives resume, so the progress does too.
                on_step(min(1.0, training.scheduler.last_epoch / max(1, training.total_steps)))
        loss_sum += loss.detach().float()
        n_batches += 1
        images += x.shape[0]
        if log_every and n_batches % log_every == 0:
            log.info("step %d  loss %.4f  lr %.3g", n_batches, loss.item(), lr)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - start
    mean_loss = loss_sum.item() / max(1, n_batches)
    if n_batches and not np.isfinite(mean_loss):
        raise FloatingPointError(f"training loss is {mean_loss}; stopping")
    return EpochStats(mean_loss, lr, images, seconds, images / seconds if seconds > 0 else 0.0, steps)


EpochHook = Callable[[dict, list], None]


def pretrain_training(method: nn.Module, cfg: Any, num_batches: int, device: torch.device) -> TrainingState:
    """The :class:`TrainingState` of a ``PretrainConfig`` for ``num_batches`` micro-batches an epoch."""
    steps = steps_per_epoch(num_batches, cfg.optim.accum_steps)
    return build_training_state(method, cfg.optim, cfg.resolved_lr(), steps, cfg.train.precision, device)


def fit(
    method: nn.Module,
    cfg: Any,
    batches_for_epoch: Callable[[int], Iterable[Any]],
    num_batches: int,
    device: torch.device,
    *,
    model: nn.Module | None = None,
    training: TrainingState | None = None,
    start_epoch: int = 0,
    history: list[dict] | None = None,
    on_epoch_end: EpochHook | None = None,
) -> list[dict]:
    """Train from ``start_epoch`` to ``cfg.optim.epochs`` (or ``cfg.train.stop_after_epochs`` more).

    Args:
        method: Bare method module, already on ``device``.
        cfg: ``PretrainConfig``.
        batches_for_epoch: ``epoch (0-based) -> iterable of batches``.
        num_batches: Micro-batches per epoch (sizes the LR schedule).
        device: Training device.
        model: What to call forward on (e.g. DDP around ``method``); defaults to ``method``.
        training: The :class:`TrainingState` when the caller restored it; built here otherwise.
        start_epoch: Completed epochs (a resumed run starts after them).
        history: Records of the completed epochs.
        on_epoch_end: ``hook(record, history)`` after each epoch; it may update ``record``
            in place (e.g. with all-reduced metrics) and save checkpoints.

    Returns:
        Per-epoch records: ``epoch`` (1-based) plus the :class:`EpochStats` fields.
    """
    training = training or pretrain_training(method, cfg, num_batches, device)
    model = model if model is not None else method
    history = list(history or [])
    stop_after = cfg.train.stop_after_epochs
    for epoch in range(start_epoch, cfg.optim.epochs):
        stats = train_one_epoch(model, training, batches_for_epoch(epoch), device, accum_steps=cfg.optim.accum_steps,
                                log_every=cfg.train.log_every, clip_grad=cfg.optim.clip_grad)
        record = {"epoch": epoch + 1, **dataclasses.asdict(stats)}
        history.append(record)
        if on_epoch_end is not None:
            on_epoch_end(record, history)
        log.info("epoch %d/%d  loss %.4f  %.1f img/s", epoch + 1, cfg.optim.epochs, record["loss"], record["images_per_s"])
        if stop_after is not None and epoch + 1 - start_epoch >= stop_after:
            break
    return history
