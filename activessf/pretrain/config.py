"""Config of the self-supervised pretraining stage (MAE recipe defaults; every number a field)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from activessf.config import require, require_file, require_patch_multiple


@dataclass
class ModelConfig:
    """Method, encoder and method-specific head settings.

    Methods (``activessf.models.registry``): ``mae``, ``mocov3``, ``convmae``, ``mixmim``. The
    ``moco_*``/``proj_*`` fields are MoCo v3's, ``convmae_*`` ConvMAE's (which ignores
    ``encoder``; its own hybrid encoder is built from them), ``mix_ratio`` MixMIM's; the decoder
    fields serve every masked-image method.
    """

    method: str = "mae"
    # Any timm VisionTransformer name; built with pretrained=False (nothing is downloaded).
    encoder: str = "vit_base_patch16_224"
    img_size: int = 224
    # None = the encoder's own patch size (from its name); set to override (small test images).
    patch_size: int | None = None
    # Extra timm.create_model arguments (e.g. {depth: 2} for tests, {drop_path_rate: 0.1}).
    encoder_kwargs: dict[str, Any] = field(default_factory=dict)
    mask_ratio: float = 0.75
    decoder_dim: int = 512
    decoder_depth: int = 8
    decoder_heads: int = 16
    decoder_mlp_ratio: float = 4.0
    norm_pix_loss: bool = True
    # Fixed 2-D sin-cos position embeddings for encoder and decoder, frozen (as MAE does).
    sincos_pos_embed: bool = True
    # MoCo v3: InfoNCE temperature, base momentum (cosine schedule to 1), projector/predictor MLPs.
    moco_temperature: float = 0.2
    moco_momentum: float = 0.99
    proj_dim: int = 256
    proj_hidden_dim: int = 4096
    # ConvMAE encoder: widths and depths of the conv, conv and transformer stages (total stride
    # = patch_size, i.e. 1/4, 1/8, 1/16 for patch 16); heads of the transformer stage.
    convmae_dims: list[int] = field(default_factory=lambda: [256, 384, 768])
    convmae_depths: list[int] = field(default_factory=lambda: [2, 2, 11])
    convmae_heads: int = 12
    # MixMIM: fraction of patch positions taken from the partner image.
    mix_ratio: float = 0.5

    def __post_init__(self) -> None:
        import timm

        from activessf.models.registry import available_methods

        methods = available_methods()
        require(self.method in methods, "model.method", f"{self.method!r} is not one of {methods}")
        require(timm.is_model(self.encoder), "model.encoder", f"unknown timm model {self.encoder!r}")
        require(self.img_size >= 8, "model.img_size", "must be >= 8")
        if self.patch_size is not None:
            require(self.patch_size >= 1, "model.patch_size", "must be >= 1")
            require(self.img_size % self.patch_size == 0, "model.patch_size", "must divide model.img_size")
        # With a null patch size, the one in the encoder's name must divide the image size.
        require_patch_multiple(self.img_size, self.patch_size, self.encoder, "model.img_size")
        reserved = {"pretrained", "num_classes", "img_size", "patch_size"} & set(self.encoder_kwargs)
        require(not reserved, "model.encoder_kwargs", f"set {sorted(reserved)} through their own fields")
        require(0.0 <= self.mask_ratio < 1.0, "model.mask_ratio", "must be in [0, 1)")
        require(self.decoder_dim >= 1, "model.decoder_dim", "must be >= 1")
        require(self.decoder_depth >= 1, "model.decoder_depth", "must be >= 1")
        require(self.decoder_heads >= 1, "model.decoder_heads", "must be >= 1")
        require(self.decoder_dim % self.decoder_heads == 0, "model.decoder_heads", "must divide model.decoder_dim")
        if self.sincos_pos_embed:
            require(self.decoder_dim % 4 == 0, "model.decoder_dim", "must be a multiple of 4 for sin-cos")
        require(self.decoder_mlp_ratio > 0, "model.decoder_mlp_ratio", "must be > 0")
        self._check_method_fields()

    def _check_method_fields(self) -> None:
        require(self.moco_temperature > 0, "model.moco_temperature", "must be > 0")
        require(0.0 <= self.moco_momentum <= 1.0, "model.moco_momentum", "must be in [0, 1]")
        require(self.proj_dim >= 1, "model.proj_dim", "must be >= 1")
        require(self.proj_hidden_dim >= 1, "model.proj_hidden_dim", "must be >= 1")
        require(len(self.convmae_dims) == 3 and min(self.convmae_dims) >= 1, "model.convmae_dims", "need 3 widths >= 1")
        require(len(self.convmae_depths) == 3 and min(self.convmae_depths) >= 1, "model.convmae_depths", "need 3 depths >= 1")
        dims = self.convmae_dims if len(self.convmae_dims) == 3 else [1, 1, 1]
        require(self.convmae_heads >= 1 and dims[2] % self.convmae_heads == 0, "model.convmae_heads", "must divide convmae_dims[2]")
        if self.method == "convmae":
            patch = self.patch_size or 16
            require(patch % 4 == 0, "model.patch_size", "ConvMAE needs a multiple of 4 (strides patch/4, 2, 2)")
            require(self.img_size % patch == 0, "model.img_size", f"ConvMAE needs a multiple of the patch size {patch}")
        require(0.0 < self.mix_ratio < 1.0, "model.mix_ratio", "must be in (0, 1)")


@dataclass
class AugConfig:
    """Training views: random resized crop + horizontal flip, then normalisation."""

    crop_scale: list[float] = field(default_factory=lambda: [0.2, 1.0])
    hflip: float = 0.5
    mean: list[float] = field(default_factory=lambda: [0.485, 0.456, 0.406])
    std: list[float] = field(default_factory=lambda: [0.229, 0.224, 0.225])

    def __post_init__(self) -> None:
        check_view_fields(self)


def check_view_fields(aug: Any) -> None:
    """Validate the crop/flip/normalisation fields shared by pretraining and fine-tuning."""
    require(len(aug.crop_scale) == 2, "aug.crop_scale", "must be [min, max]")
    lo, hi = aug.crop_scale if len(aug.crop_scale) == 2 else (0.0, 0.0)
    require(0.0 < lo <= hi <= 1.0, "aug.crop_scale", "need 0 < min <= max <= 1")
    require(0.0 <= aug.hflip <= 1.0, "aug.hflip", "must be in [0, 1]")
    require(len(aug.mean) == 3, "aug.mean", "must have 3 values")
    require(len(aug.std) == 3 and all(s > 0 for s in aug.std), "aug.std", "must be 3 values > 0")


def check_adamw_fields(o: Any) -> None:
    """Validate the AdamW + warm-up/cosine fields shared by pretraining and fine-tuning."""
    require(o.blr > 0, "optim.blr", "must be > 0")
    require(o.lr is None or o.lr > 0, "optim.lr", "must be > 0 or null")
    require(o.min_lr >= 0, "optim.min_lr", "must be >= 0")
    require(o.weight_decay >= 0, "optim.weight_decay", "must be >= 0")
    require(len(o.betas) == 2 and all(0 <= b < 1 for b in o.betas), "optim.betas", "need two values in [0, 1)")
    require(o.warmup_epochs >= 0, "optim.warmup_epochs", "must be >= 0")
    require(o.epochs >= 1, "optim.epochs", "must be >= 1")


@dataclass
class OptimConfig:
    """AdamW with linear warm-up then per-step cosine decay."""

    blr: float = 1e-3
    # None = blr * effective_batch / 256, effective_batch = batch_size * workers * accum_steps.
    lr: float | None = None
    min_lr: float = 0.0
    weight_decay: float = 0.05
    betas: list[float] = field(default_factory=lambda: [0.9, 0.95])
    warmup_epochs: float = 5.0
    epochs: int = 400
    # Per worker, per optimiser micro-step.
    batch_size: int = 64
    accum_steps: int = 1
    # None = no clipping (MAE default).
    clip_grad: float | None = None

    def __post_init__(self) -> None:
        check_adamw_fields(self)
        require(self.batch_size >= 1, "optim.batch_size", "must be >= 1")
        require(self.accum_steps >= 1, "optim.accum_steps", "must be >= 1")
        require(self.clip_grad is None or self.clip_grad > 0, "optim.clip_grad", "must be > 0 or null")


def check_run_fields(t: Any) -> None:
    """Validate the Ray Train run fields shared by pretraining and fine-tuning."""
    require(t.num_workers >= 1, "train.num_workers", "must be >= 1")
    require(t.cpus_per_worker > 0, "train.cpus_per_worker", "must be > 0")
    require(t.checkpoint_every >= 1, "train.checkpoint_every", "must be >= 1")
    require(t.keep_checkpoints is None or t.keep_checkpoints >= 1, "train.keep_checkpoints", "must be >= 1 or null")
    require(t.max_failures >= -1, "train.max_failures", "must be >= -1 (-1 = unlimited)")
    require(bool(t.run_name) and "/" not in t.run_name, "train.run_name", "must be a plain name")
    require(t.stop_after_epochs is None or t.stop_after_epochs >= 1, "train.stop_after_epochs", "must be >= 1")


@dataclass
class TrainConfig:
    """How the run executes: workers, precision, checkpoints, fault tolerance."""

    num_workers: int = 1
    use_gpu: bool = False
    # CPUs reserved per worker; below the node's count leaves room for Ray Data decoding.
    cpus_per_worker: float = 1.0
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"
    checkpoint_every: int = 1
    # Checkpoints kept in storage (None = all); a ViT-B MAE state is ~1.3 GB with AdamW.
    keep_checkpoints: int | None = 2
    max_failures: int = 0
    # None = <output>/ray_runs. Rerunning with the same storage_path + run_name resumes.
    storage_path: str | None = None
    run_name: str = "pretrain"
    seed: int = 0
    log_every: int = 50
    # Rows in each worker's local shuffle buffer (0 = data order as stored).
    shuffle_buffer: int = 256
    # Decode every image once into the object store before training (small sets); else stream.
    materialize: bool = True
    num_reconstructions: int = 4
    # Stop cleanly after this many epochs in this invocation (an interrupted run, for resume).
    stop_after_epochs: int | None = None
    # Test hook: the last rank exits hard once after this epoch (1-based); exercises recovery.
    debug_crash_epoch: int | None = None

    def __post_init__(self) -> None:
        check_run_fields(self)
        require(self.shuffle_buffer >= 0, "train.shuffle_buffer", "must be >= 0")
        require(self.log_every >= 0, "train.log_every", "must be >= 0")
        require(self.num_reconstructions >= 0, "train.num_reconstructions", "must be >= 0")
        require(self.debug_crash_epoch is None or self.debug_crash_epoch >= 1, "train.debug_crash_epoch", "must be >= 1")


@dataclass
class PretrainConfig:
    """Self-supervised pretraining stage."""

    model: ModelConfig = field(default_factory=ModelConfig)
    aug: AugConfig = field(default_factory=AugConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    # Local file to continue pretraining from: timm-style state dict or official MAE
    # {'model': ...}; .safetensors or torch (loaded with weights_only=True).
    init_checkpoint: str | None = None

    def __post_init__(self) -> None:
        require(self.init_checkpoint is None or bool(self.init_checkpoint), "init_checkpoint", "must be a path or null")
        if self.init_checkpoint:
            require_file(self.init_checkpoint, "init_checkpoint")

    def effective_batch(self) -> int:
        """Images per optimiser step over all workers."""
        return self.optim.batch_size * self.train.num_workers * self.optim.accum_steps

    def resolved_lr(self) -> float:
        """``optim.lr`` if set, else the MAE scaling rule ``blr * effective_batch / 256``."""
        if self.optim.lr is not None:
            return self.optim.lr
        return self.optim.blr * self.effective_batch() / 256.0
