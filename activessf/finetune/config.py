"""Config of the fine-tuning stage (the paper's recipe as defaults; every number a field).

Recipe: AdamW, weight decay 0.05, batch 64, lr = blr * effective_batch / 256 with blr 1e-3
(the issue's value; MAE's own fine-tuning uses 5e-4), 5 warm-up epochs then per-step cosine,
50 epochs, layer-wise lr decay 0.75 (timm ``create_optimizer_v2(layer_decay=...)``).
Baselines (supervised ResNet50 / ViT) are the same config with another ``model.name`` and
``model.init: none``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from activessf.config import require, require_file, require_patch_multiple
from activessf.training_config import AdamWFields, RunFields, ViewFields


@dataclass
class FtModelConfig:
    """Network and its initialisation."""

    # Any timm model; pretrained encoders are ViTs, baselines e.g. resnet50 or a ViT from scratch.
    name: str = "vit_base_patch16_224"
    # "none" = random init (seeded); else a local .safetensors / torch state dict in timm's layout
    # (e.g. the pretrain stage's encoder.safetensors). Nothing is ever downloaded.
    init: str = "none"
    img_size: int = 224
    # ViT only: None = the name's patch size; must match the pretrained encoder's.
    patch_size: int | None = None
    # Extra timm.create_model arguments (e.g. {depth: 2} in tests); must match the encoder's.
    encoder_kwargs: dict[str, Any] = field(default_factory=dict)
    drop_path_rate: float = 0.1

    def __post_init__(self) -> None:
        import timm

        require(timm.is_model(self.name), "model.name", f"unknown timm model {self.name!r}")
        require(bool(self.init), "model.init", "a weights path or 'none'")
        require(self.img_size >= 8, "model.img_size", "must be >= 8")
        require(self.patch_size is None or self.patch_size >= 1, "model.patch_size", "must be >= 1 or null")
        require_patch_multiple(self.img_size, self.patch_size, self.name, "model.img_size")
        if self.init != "none":
            require_file(self.init, "model.init")
        reserved = {"pretrained", "num_classes", "img_size", "patch_size", "drop_path_rate"} & set(self.encoder_kwargs)
        require(not reserved, "model.encoder_kwargs", f"set {sorted(reserved)} through their own fields")
        require(0.0 <= self.drop_path_rate < 1.0, "model.drop_path_rate", "must be in [0, 1)")


@dataclass
class FtAugConfig(ViewFields):
    """Training augmentation and regularisation (all optional but flip + resized crop)."""

    crop_scale: list[float] = field(default_factory=lambda: [0.5, 1.0])
    vflip: float = 0.5
    # RandAugment (torchvision v2) ops per image and magnitude; 0 ops = off.
    randaug_ops: int = 2
    randaug_magnitude: int = 9
    label_smoothing: float = 0.1
    # timm Mixup/CutMix alphas (0 = off) and the probability a batch is mixed.
    mixup: float = 0.0
    cutmix: float = 0.0
    mix_prob: float = 1.0

    def __post_init__(self) -> None:
        super().__post_init__()
        require(0.0 <= self.vflip <= 1.0, "aug.vflip", "must be in [0, 1]")
        require(self.randaug_ops >= 0, "aug.randaug_ops", "must be >= 0")
        require(0 <= self.randaug_magnitude <= 30, "aug.randaug_magnitude", "must be in [0, 30]")
        require(0.0 <= self.label_smoothing < 1.0, "aug.label_smoothing", "must be in [0, 1)")
        require(self.mixup >= 0 and self.cutmix >= 0, "aug.mixup", "alphas must be >= 0")
        require(0.0 <= self.mix_prob <= 1.0, "aug.mix_prob", "must be in [0, 1]")


@dataclass
class FtOptimConfig(AdamWFields):
    """AdamW with layer-wise lr decay, linear warm-up then per-step cosine.

    ``lr`` null = blr * effective_batch / 256, effective_batch = batch_size * workers.
    """

    min_lr: float = 1e-6
    # None = off (e.g. for ResNet baselines); 0.75 = paper / MAE fine-tuning.
    layer_decay: float | None = 0.75
    # Class imbalance (off by default): inverse-frequency loss weights or class-balanced sampling.
    class_balance: Literal["none", "loss_weights", "sampling"] = "none"

    def __post_init__(self) -> None:
        super().__post_init__()
        require(self.layer_decay is None or 0 < self.layer_decay <= 1, "optim.layer_decay", "must be in (0, 1] or null")
        require(self.batch_size >= 2, "optim.batch_size", "must be >= 2 (mixup pairs, batch norm)")


@dataclass
class FtTrainConfig(RunFields):
    """Folds, execution and checkpoints (fold k runs as "<run_name>_fold<k>"; the same name resumes)."""

    n_folds: int = 5
    # Seed of the fold split (used only when the folds file is created).
    folds_seed: int = 0
    # Run only these folds (None = all); e.g. [0, 1] for a quick check.
    only_folds: list[int] | None = None
    # Folds trained at the same time, each its own TorchTrainer run. None = as many as the
    # cluster's current CPUs/GPUs hold (set it on an autoscaling cluster); 1 = one after another.
    max_concurrent_folds: int | None = None
    keep_checkpoints: int | None = 1
    run_name: str = "finetune"
    # Display name in comparisons (None = model name + init).
    method_name: str | None = None
    eval_batch_size: int = 128
    # After (and alongside) the folds, train one model on every labeled crop with the same
    # recipe: cross-validation estimates how good it is, the final fit is what ships
    # (``activessf export``). The pipeline turns it on (``pipeline.final_fit``).
    final_fit: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        require(self.n_folds >= 2, "train.n_folds", "must be >= 2")
        require(self.only_folds is None or all(0 <= f < self.n_folds for f in self.only_folds), "train.only_folds",
                "each must be in [0, n_folds)")
        require(self.max_concurrent_folds is None or self.max_concurrent_folds >= 1, "train.max_concurrent_folds",
                "must be >= 1 or null")
        require(self.eval_batch_size >= 1, "train.eval_batch_size", "must be >= 1")


@dataclass
class FinetuneConfig:
    """Supervised fine-tuning stage."""

    model: FtModelConfig = field(default_factory=FtModelConfig)
    aug: FtAugConfig = field(default_factory=FtAugConfig)
    optim: FtOptimConfig = field(default_factory=FtOptimConfig)
    train: FtTrainConfig = field(default_factory=FtTrainConfig)

    def effective_batch(self) -> int:
        """Images per optimiser step over all workers."""
        return self.optim.batch_size * self.train.num_workers

    def resolved_lr(self) -> float:
        """``optim.lr`` if set, else ``blr * effective_batch / 256``."""
        return self.optim.lr if self.optim.lr is not None else self.optim.blr * self.effective_batch() / 256.0

    def method_name(self) -> str:
        """Display name: ``train.method_name`` or ``<model>[+<init file stem>]``."""
        if self.train.method_name:
            return self.train.method_name
        if self.model.init == "none":
            return f"{self.model.name} (scratch)"
        stem = self.model.init.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]
        return f"{self.model.name} ({stem})"
