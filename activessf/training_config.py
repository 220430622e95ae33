"""Config parts pretraining and fine-tuning share: the Ray Train run, AdamW, the training views.

Each stage's section extends one of these dataclasses (``train.*``, ``optim.*``, ``aug.*`` keep
their YAML keys), adding its own fields and overriding defaults. Each part validates itself in
``__post_init__`` through :func:`activessf.config.check`, so an error names the field by its
place in the stage's config (``train.num_workers``, ``aug.crop_scale``). No heavy imports.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from activessf.config import check

IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]


@dataclass
class RunFields:
    """How a Ray Train run executes: workers, precision, checkpoints, fault tolerance."""

    num_workers: int = 1
    use_gpu: bool = False
    # CPUs reserved per worker; below the node's count leaves room for Ray Data decoding.
    cpus_per_worker: float = 1.0
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"
    checkpoint_every: int = 1
    # Checkpoints kept in storage (None = all).
    keep_checkpoints: int | None = 2
    max_failures: int = 0
    # None = <output>/ray_runs. Rerunning with the same storage_path + run_name resumes.
    storage_path: str | None = None
    run_name: str = "run"
    seed: int = 0
    # Stop cleanly after this many epochs in this invocation (checkpointed; a rerun resumes).
    stop_after_epochs: int | None = None

    def __post_init__(self) -> None:
        check(self.num_workers >= 1, "num_workers", "must be >= 1")
        check(self.cpus_per_worker > 0, "cpus_per_worker", "must be > 0")
        check(self.checkpoint_every >= 1, "checkpoint_every", "must be >= 1")
        check(self.keep_checkpoints is None or self.keep_checkpoints >= 1, "keep_checkpoints", "must be >= 1 or null")
        check(self.max_failures >= -1, "max_failures", "must be >= -1 (-1 = unlimited)")
        check(bool(self.run_name) and "/" not in self.run_name, "run_name", "must be a plain name")
        check(self.stop_after_epochs is None or self.stop_after_epochs >= 1, "stop_after_epochs", "must be >= 1")


@dataclass
class AdamWFields:
    """AdamW with linear warm-up then per-step cosine decay to ``min_lr``."""

    blr: float = 1e-3
    # None = blr * effective_batch / 256 (the stage defines its effective batch).
    lr: float | None = None
    min_lr: float = 0.0
    weight_decay: float = 0.05
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    warmup_epochs: float = 5.0
    epochs: int = 50
    # Per worker, per optimiser micro-step.
    batch_size: int = 64
    # None = no clipping.
    clip_grad: float | None = None

    def __post_init__(self) -> None:
        check(self.blr > 0, "blr", "must be > 0")
        check(self.lr is None or self.lr > 0, "lr", "must be > 0 or null")
        check(self.min_lr >= 0, "min_lr", "must be >= 0")
        check(self.weight_decay >= 0, "weight_decay", "must be >= 0")
        check(len(self.betas) == 2 and all(0 <= b < 1 for b in self.betas), "betas", "need two values in [0, 1)")
        check(self.warmup_epochs >= 0, "warmup_epochs", "must be >= 0")
        check(self.epochs >= 1, "epochs", "must be >= 1")
        check(self.batch_size >= 1, "batch_size", "must be >= 1")
        check(self.clip_grad is None or self.clip_grad > 0, "clip_grad", "must be > 0 or null")


@dataclass
class ViewFields:
    """Training views: random resized crop + horizontal flip, then normalisation."""

    crop_scale: list[float] = field(default_factory=lambda: [0.2, 1.0])
    hflip: float = 0.5
    mean: list[float] = field(default_factory=lambda: list(IMAGENET_MEAN))
    std: list[float] = field(default_factory=lambda: list(IMAGENET_STD))

    def __post_init__(self) -> None:
        check(len(self.crop_scale) == 2, "crop_scale", "must be [min, max]")
        lo, hi = self.crop_scale if len(self.crop_scale) == 2 else (0.0, 0.0)
        check(0.0 < lo <= hi <= 1.0, "crop_scale", "need 0 < min <= max <= 1")
        check(0.0 <= self.hflip <= 1.0, "hflip", "must be in [0, 1]")
        check(len(self.mean) == 3, "mean", "must have 3 values")
        check(len(self.std) == 3 and all(s > 0 for s in self.std), "std", "must be 3 values > 0")
