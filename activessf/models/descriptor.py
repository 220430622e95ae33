"""The encoder descriptor: how to rebuild and load an encoder that pretraining exported.

Every pretraining export writes ``encoder.json`` beside ``encoder.safetensors`` (and the same
JSON in the safetensors header, so a copied weights file still describes itself). Fine-tuning,
the pipeline plan and the sweep read it instead of working the architecture out each on its own:

- ``builder: timm``: ``timm.create_model(name, img_size=..., patch_size=..., **kwargs)`` loads the
  file through ``pretrained_cfg_overlay=dict(file=...)`` (timm's own key layout);
- any other builder (``convmae``): a network a method module registers with
  :func:`register_encoder_builder`, rebuilt from ``kwargs`` and loaded strictly. Its forward
  gives pooled features ``[N, D]`` and it has ``num_features``.

Light module: torch and timm are imported only when an encoder is built.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import os
from dataclasses import dataclass, field
from typing import Any, Callable

DESCRIPTOR_FILE = "encoder.json"
WEIGHTS_FILE = "encoder.safetensors"
FORMAT = 1
# Header key of the descriptor inside encoder.safetensors.
HEADER_KEY = "descriptor"
# Non-timm builder name -> the module that registers it (imported on first use).
BUILDER_MODULES = {"convmae": "activessf.models.convmae"}
_BUILDERS: dict[str, Callable[..., Any]] = {}


@dataclass
class EncoderDescriptor:
    """What a pretraining export is and how to load it (``encoder.json``)."""

    # Pretraining method that trained it (``mae``, ``mocov3``, ...).
    method: str
    # "timm", or a builder registered with :func:`register_encoder_builder`.
    builder: str
    # timm model name (builder timm), else the builder's name.
    name: str
    img_size: int
    patch_size: int | None = None
    # More timm.create_model (or builder) arguments, e.g. {depth: 4} or ConvMAE's widths.
    kwargs: dict[str, Any] = field(default_factory=dict)
    # Pooled features: "token" = the class token, "avg" = mean of the patch tokens (methods that
    # never train their class token: MAE, MixMIM, ConvMAE).
    pool: str = "token"
    # Weights file beside the descriptor.
    weights: str = WEIGHTS_FILE
    format: int = FORMAT

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "EncoderDescriptor":
        data = json.loads(text)
        if data.get("format") != FORMAT:
            raise ValueError(f"encoder descriptor format {data.get('format')!r}; this version reads {FORMAT}")
        return cls(**data)

    def is_timm(self) -> bool:
        return self.builder == "timm"

    def finetune_model(self, init: str) -> dict[str, Any]:
        """Fine-tuning ``model`` fields that start from this encoder at ``init``.

        A timm encoder is fine-tuned as its timm model (same name, patch size and arguments); any
        other builder is rebuilt from this descriptor, so only ``init`` is set.
        """
        if not self.is_timm():
            return {"init": init}
        return {"name": self.name, "patch_size": self.patch_size, "encoder_kwargs": dict(self.kwargs), "init": init}


def register_encoder_builder(name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator: ``build(img_size, patch_size, **kwargs) -> nn.Module`` for descriptors of ``builder: name``."""

    def wrap(fn: Callable[..., Any]) -> Callable[..., Any]:
        _BUILDERS[name] = fn
        return fn

    return wrap


def descriptor_path(weights: str) -> str:
    """``encoder.json`` beside ``weights``."""
    return os.path.join(os.path.dirname(os.fspath(weights)), DESCRIPTOR_FILE)


def read_descriptor(weights: str) -> EncoderDescriptor | None:
    """The descriptor of an exported encoder: ``encoder.json`` beside it, else its safetensors
    header; None for any other weights file (e.g. an ImageNet checkpoint)."""
    weights = os.fspath(weights)
    side = descriptor_path(weights)
    if os.path.isfile(side) and os.path.basename(weights) == WEIGHTS_FILE:
        with open(side, encoding="utf-8") as fh:
            return EncoderDescriptor.from_json(fh.read())
    if not weights.endswith(".safetensors") or not os.path.isfile(weights):
        return None
    from safetensors import safe_open

    with safe_open(weights, framework="pt") as fh:
        text = (fh.metadata() or {}).get(HEADER_KEY)
    return EncoderDescriptor.from_json(text) if text else None


def build_encoder_module(desc: EncoderDescriptor, weights: str | None = None) -> Any:
    """The encoder ``desc`` describes, loaded (strictly) from ``weights`` when given.

    Returns:
        An ``nn.Module`` with ``num_features`` whose forward gives pooled features ``[N, D]``.
    """
    if desc.is_timm():
        import timm

        kw = dict(desc.kwargs, img_size=desc.img_size, num_classes=0, global_pool=desc.pool)
        if desc.patch_size is not None:
            kw["patch_size"] = desc.patch_size
        if weights is None:
            return timm.create_model(desc.name, pretrained=False, **kw)
        return timm.create_model(desc.name, pretrained=True, pretrained_cfg_overlay=dict(file=weights), **kw)
    if desc.builder not in _BUILDERS and desc.builder in BUILDER_MODULES:
        importlib.import_module(BUILDER_MODULES[desc.builder])  # registers on import
    if desc.builder not in _BUILDERS:
        raise ValueError(f"encoder builder {desc.builder!r} is unknown; known: timm, {', '.join(sorted(BUILDER_MODULES))}")
    encoder = _BUILDERS[desc.builder](desc.img_size, desc.patch_size, **desc.kwargs)
    if weights is not None:
        from safetensors.torch import load_file

        encoder.load_state_dict(load_file(weights))
    return encoder
