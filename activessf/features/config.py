"""Config of the feature-extraction stage: where the features come from, the backbone, how actors run.

``source`` says what the prototype/selection features are worth:

- ``labeled``: a backbone trained (supervised, short, on Ray Train) on the labeled crops themselves;
  ``weights`` is its ``final/model.safetensors`` (``activessf run`` trains it as a stage).
- ``pool_ssl``: an encoder exported by ``activessf pretrain`` (``encoder.safetensors``); its
  architecture comes from the file's header.
- ``weights``: any local file (ImageNet ResNet50 as in the paper, DINOv2-format ViTs, ...).
- ``random``: a seeded random initialisation; for tests and timing only, the selection it drives
  carries no class information (the stage and the selection report say so loudly).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Literal

from activessf.config import require

FeatureSource = Literal["labeled", "pool_ssl", "weights", "random"]

RANDOM_WARNING = ("WARNING: features are from a randomly initialised backbone; the selection carries no "
                  "class information (set features.source to labeled, pool_ssl or weights)")


@dataclass
class LabeledBackboneConfig:
    """The short supervised training of ``source: labeled`` (run by the fine-tuning machinery).

    Attributes:
        img_size: Training side in pixels; features are then extracted at the same side.
        epochs: Training epochs (a few: the backbone only has to separate the labeled classes).
        batch_size: Images per optimiser step.
        lr: AdamW learning rate (no layer decay: a CNN trained from scratch).
        warmup_epochs: Linear warm-up before the per-step cosine.
        weight_decay: AdamW weight decay.
        class_balance: ``sampling`` draws every class equally often, so the rare subtypes shape the
            features as much as the common ones; ``none`` / ``loss_weights`` as in fine-tuning.
        randaug_ops: RandAugment ops per image (0 = flips and resized crops only).
        num_workers: Ray Train workers; use_gpu, cpus_per_worker: their resources.
        seed: Seed of the initialisation, sampling and augmentation.
    """

    img_size: int = 64
    epochs: int = 8
    batch_size: int = 64
    lr: float = 2e-3
    warmup_epochs: float = 1.0
    weight_decay: float = 0.05
    class_balance: Literal["none", "loss_weights", "sampling"] = "sampling"
    randaug_ops: int = 0
    num_workers: int = 1
    use_gpu: bool = False
    cpus_per_worker: float = 1.0
    seed: int = 0

    def __post_init__(self) -> None:
        require(self.img_size >= 16, "features.labeled.img_size", "must be >= 16")
        require(self.epochs >= 1, "features.labeled.epochs", "must be >= 1")
        require(self.batch_size >= 2, "features.labeled.batch_size", "must be >= 2 (batch norm)")
        require(self.lr > 0, "features.labeled.lr", "must be > 0")
        require(self.warmup_epochs >= 0, "features.labeled.warmup_epochs", "must be >= 0")
        require(self.weight_decay >= 0, "features.labeled.weight_decay", "must be >= 0")
        require(self.randaug_ops >= 0, "features.labeled.randaug_ops", "must be >= 0")
        require(self.num_workers >= 1, "features.labeled.num_workers", "must be >= 1")
        require(self.cpus_per_worker > 0, "features.labeled.cpus_per_worker", "must be > 0")


@dataclass
class FeaturesConfig:
    """Feature extraction with a frozen timm backbone (pooled features, no classifier head).

    Attributes:
        source: Where the features come from (see the module docstring).
        backbone: Any ``timm`` model name; it is always built with ``pretrained=False`` because
            nothing may be downloaded at run time. For ``pool_ssl`` the encoder's header names it.
        weights: Local ``.safetensors`` or torch state-dict file: required for ``weights`` and
            ``pool_ssl``; for ``labeled`` the trained backbone (the pipeline fills it in); none for
            ``random``.
        img_size: Side the crops are fed at, whole (no centre crop); None = the backbone's own
            data config (224 px centre crop for ImageNet CNNs), or ``labeled.img_size`` /
            the encoder's training side for ``labeled`` / ``pool_ssl``.
        labeled: Training recipe of the ``labeled`` backbone.
        batch_size: Images per forward pass (and per Ray Data batch).
        num_gpus_per_actor: GPUs reserved per actor; None = 1 when the cluster has a GPU, else 0
            (see ``resolve_num_gpus``). Fractions let several actors share one GPU.
        concurrency: Number of extraction actors; None = one per GPU, or one on a CPU-only run.
        device: ``auto`` = CUDA when available, else CPU.
        use_bf16: bf16 autocast for the forward pass; applied on CUDA only (CPU stays float32).
        channels_last: NHWC memory layout, faster for convolutions on recent GPUs.
        image_key: Batch column holding the ``[N, H, W, 3]`` uint8 crops.
        seed: Seed of the random initialisation when no weights are given (the labeled and
            unlabeled feature runs must use the same seed to be comparable).
    """

    source: FeatureSource = "labeled"
    backbone: str = "resnet50"
    weights: str | None = None
    img_size: int | None = None
    labeled: LabeledBackboneConfig = field(default_factory=LabeledBackboneConfig)
    batch_size: int = 64
    num_gpus_per_actor: float | None = None
    concurrency: int | None = None
    device: Literal["auto", "cpu", "cuda"] = "auto"
    use_bf16: bool = True
    channels_last: bool = True
    image_key: str = "image"
    seed: int = 0

    def __post_init__(self) -> None:
        import timm

        require(timm.is_model(self.backbone), "features.backbone", f"unknown timm model {self.backbone!r}")
        if self.weights is not None:
            require(os.path.isfile(self.weights), "features.weights", f"no such file {self.weights!r}")
        require(self.source != "random" or self.weights is None, "features.weights",
                "source is random: no weights (use source: weights for a file)")
        require(self.source not in ("weights", "pool_ssl") or self.weights is not None, "features.weights",
                f"source {self.source} needs a local weights file")
        require(self.img_size is None or self.img_size >= 16, "features.img_size", "must be >= 16 or null")
        require(self.batch_size >= 1, "features.batch_size", "must be >= 1")
        if self.num_gpus_per_actor is not None:
            require(self.num_gpus_per_actor >= 0, "features.num_gpus_per_actor", "must be >= 0")
        if self.concurrency is not None:
            require(self.concurrency >= 1, "features.concurrency", "must be >= 1")
        require(bool(self.image_key), "features.image_key", "must not be empty")


def resolve_num_gpus(config: FeaturesConfig, cluster_gpus: float) -> float:
    """GPUs per actor: the configured value, else 1 when the cluster has a GPU, else 0.

    Args:
        config: The stage config.
        cluster_gpus: GPUs the cluster reports (e.g. ``ray.cluster_resources().get("GPU", 0)``).

    Returns:
        The ``num_gpus`` to request per actor.
    """
    if config.num_gpus_per_actor is not None:
        return float(config.num_gpus_per_actor)
    return 1.0 if cluster_gpus >= 1 else 0.0
