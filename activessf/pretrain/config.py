"""Config of the self-supervised pretraining stage (MAE recipe defaults; every number a field).

The run, AdamW and view parts are the shared ones (``activessf.training_config``); each method's
own settings are its registered config class, under ``model.<method>``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from activessf.config import from_dict, require, require_file, require_patch_multiple
from activessf.models.descriptor import EncoderDescriptor
from activessf.models.registry import available_methods, method_config_class
from activessf.training_config import AdamWFields, RunFields, ViewFields


@dataclass
class ModelConfig:
    """Method, encoder, and the chosen method's own section.

    Methods (``activessf.models.registry``): ``mae``, ``mocov3``, ``convmae``, ``mixmim``. Each
    owns a config class registered with its builder: its settings sit under ``model.<method>``
    (``model.mae.mask_ratio``, ``model.mocov3.temperature``); ConvMAE ignores ``encoder`` and
    builds its own hybrid encoder from ``model.convmae``. Only the chosen method's module is
    imported; a section of another method (a pipeline YAML shared by arms of several methods)
    is checked and kept, unused.
    """

    method: str = "mae"
    # Any timm VisionTransformer name; built with pretrained=False (nothing is downloaded).
    encoder: str = "vit_base_patch16_224"
    img_size: int = 224
    # None = the encoder's own patch size (from its name); set to override (small test images).
    patch_size: int | None = None
    # Extra timm.create_model arguments (e.g. {depth: 2} for tests, {drop_path_rate: 0.1}).
    encoder_kwargs: dict[str, Any] = field(default_factory=dict)
    # Method name -> that method's config (YAML: one key per method, beside the fields above).
    sections: dict[str, Any] = field(default_factory=dict, metadata={"inline": True})

    def __post_init__(self) -> None:
        import timm

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
        self._resolve_sections(methods)

    def _resolve_sections(self, methods: list[str]) -> None:
        unknown = sorted(set(self.sections) - set(methods))
        require(not unknown, f"model.{unknown[0] if unknown else ''}", "unknown config field; valid: encoder, "
                f"encoder_kwargs, img_size, method, patch_size and a method's section ({', '.join(methods)})")
        resolved = {}
        for name in sorted(set(self.sections) | {self.method}):
            cls, value = method_config_class(name), self.sections.get(name, {})
            resolved[name] = value if isinstance(value, cls) else from_dict(cls, value, prefix=f"model.{name}.")
        self.sections = resolved
        if hasattr(self.params, "check_model"):
            self.params.check_model(self)

    @property
    def params(self) -> Any:
        """The chosen method's config (``model.<method>``)."""
        return self.sections[self.method]

    def encoder_descriptor(self) -> EncoderDescriptor:
        """How the encoder this config pretrains is rebuilt and loaded (written as ``encoder.json``)."""
        own = getattr(self.params, "encoder_descriptor", None)
        if own is not None:
            return own(self)
        return EncoderDescriptor(method=self.method, builder="timm", name=self.encoder, img_size=self.img_size,
                                 patch_size=self.patch_size, kwargs=dict(self.encoder_kwargs),
                                 pool=getattr(self.params, "pool", "token"))


@dataclass
class AugConfig(ViewFields):
    """Training views: random resized crop + horizontal flip, then normalisation."""


@dataclass
class OptimConfig(AdamWFields):
    """AdamW with linear warm-up then per-step cosine decay (MAE's pretraining recipe)."""

    betas: list[float] = field(default_factory=lambda: [0.9, 0.95])
    epochs: int = 400
    # Micro-steps per optimiser step; lr = blr * effective_batch / 256 with
    # effective_batch = batch_size * workers * accum_steps (when lr is null).
    accum_steps: int = 1

    def __post_init__(self) -> None:
        super().__post_init__()
        require(self.accum_steps >= 1, "optim.accum_steps", "must be >= 1")


@dataclass
class TrainConfig(RunFields):
    """How the run executes: workers, precision, checkpoints (a ViT-B MAE state is ~1.3 GB with
    AdamW), fault tolerance."""

    run_name: str = "pretrain"
    log_every: int = 50
    # Rows in each worker's local shuffle buffer (0 = data order as stored).
    shuffle_buffer: int = 256
    # Decode every image once into the object store before training (small sets); else stream.
    materialize: bool = True
    num_reconstructions: int = 4

    def __post_init__(self) -> None:
        super().__post_init__()
        require(self.shuffle_buffer >= 0, "train.shuffle_buffer", "must be >= 0")
        require(self.log_every >= 0, "train.log_every", "must be >= 0")
        require(self.num_reconstructions >= 0, "train.num_reconstructions", "must be >= 0")


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
