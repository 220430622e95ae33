"""Config of the feature-extraction stage: which timm backbone, its weights, how actors run."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Literal

from activessf.config import require


@dataclass
class FeaturesConfig:
    """Feature extraction with a frozen timm backbone (pooled features, no classifier head).

    Attributes:
        backbone: Any ``timm`` model name; it is always built with ``pretrained=False`` because
            nothing may be downloaded at run time.
        weights: Local ``.safetensors`` or torch state-dict file; None = random init (only useful
            for tests and timing: random features make the selection meaningless).
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

    backbone: str = "resnet50"
    weights: str | None = None
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
