"""Pretraining budget counted in optimizer steps, equal across the arms of a comparison.

With a fixed epoch count, an arm that pretrains on the 1,600 selected crops takes 60% fewer
optimizer steps than the arm on all 4,000 pool crops, and a comparison of the two then measures
compute, not selection. Under ``equal_steps`` every pretraining gets the steps that
``pretrain.optim.epochs`` make over the whole pool (or ``pipeline.pretrain_steps``), and an arm
on fewer crops runs proportionally more epochs; its warm-up keeps the same share of the run.
The activessf run pipeline and the sweep's trials use the same rule.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any


def steps_per_epoch(cfg: Any, n_crops: int) -> int:
    """Optimizer steps of one epoch over ``n_crops`` (as the pretraining engine counts them).

    Args:
        cfg: ``PretrainConfig`` (``optim.batch_size``, ``optim.accum_steps``, ``train.num_workers``).
        n_crops: Crops the pretraining sees per epoch.

    Returns:
        ``ceil(ceil(n / (batch * workers)) / accum)``, at least 1.
    """
    batches = math.ceil(max(0, n_crops) / (cfg.optim.batch_size * cfg.train.num_workers))
    return max(1, math.ceil(batches / cfg.optim.accum_steps))


def step_budget(cfg: Any, n_pool: int, steps: int | None = None) -> int:
    """The shared budget: ``steps`` when given, else ``optim.epochs`` epochs over the whole pool."""
    return steps if steps is not None else cfg.optim.epochs * steps_per_epoch(cfg, n_pool)


def with_step_budget(cfg: Any, n_crops: int, budget: int) -> Any:
    """``cfg`` with the epochs that spend ``budget`` optimizer steps on ``n_crops`` crops.

    Epochs are whole, so the arm takes ``ceil(budget / steps_per_epoch)`` epochs: at most one
    epoch's steps above the budget. The warm-up is scaled by the same factor, so it lasts as many
    steps as in the reference schedule.

    Args:
        cfg: ``PretrainConfig``; ``optim.epochs`` and ``optim.warmup_epochs`` are replaced.
        n_crops: Crops this arm pretrains on (>= 1).
        budget: Optimizer steps (>= 1).

    Returns:
        A new config (the input is not modified).
    """
    if n_crops < 1 or budget < 1:
        raise ValueError(f"need n_crops >= 1 and budget >= 1, got {n_crops}, {budget}")
    epochs = max(1, math.ceil(budget / steps_per_epoch(cfg, n_crops)))
    warmup = cfg.optim.warmup_epochs * epochs / cfg.optim.epochs
    return replace(cfg, optim=replace(cfg.optim, epochs=epochs, warmup_epochs=warmup))


def trial_budget(cfg: Any, n_selected: int, features_pool: str) -> Any:
    """A sweep trial's ``cfg`` under the rule: ``optim.epochs`` over the pool, spent on its selection.

    Args:
        cfg: ``PretrainConfig`` of the trial.
        n_selected: Crops the trial's selection kept (>= 1).
        features_pool: Feature stage folder of the pool (its row count is the pool's size).
    """
    import pyarrow.parquet as pq

    from activessf.selection.stage import features_path

    n_pool = pq.ParquetFile(features_path(features_pool)).metadata.num_rows
    return with_step_budget(cfg, n_selected, step_budget(cfg, n_pool))


def budget_summary(cfg: Any, n_crops: int) -> dict:
    """What a budgeted pretraining will do: crops, epochs, optimizer steps, images seen."""
    steps = cfg.optim.epochs * steps_per_epoch(cfg, n_crops)
    return {"crops": n_crops, "epochs": cfg.optim.epochs, "steps": steps, "images": cfg.optim.epochs * n_crops}
