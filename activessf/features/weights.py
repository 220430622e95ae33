"""Checkpoint files into timm models: reading, layout conversion, strict loading, preprocessing.

Below both ``backbone`` (the frozen feature extractor) and ``sources`` (which network embeds
the crops), which each use it; plain torch/timm.
"""

from __future__ import annotations

import os
import re
from typing import Any, Mapping

import timm
import torch

from activessf.errors import WeightsError

# Buffers a checkpoint may legitimately lack (older torch, or saved without BN bookkeeping).
_OPTIONAL_SUFFIXES = ("num_batches_tracked",)
_MAX_KEYS_SHOWN = 8
# Wrappers self-distillation checkpoints put around the backbone (DINO/DINOv2/DinoBloom teacher).
_WRAPPER_PREFIXES = ("teacher.backbone.", "student.backbone.", "teacher.", "backbone.", "encoder.")
# DINOv2 training checkpoints with block chunks: blocks.<chunk>.<block>.* -> blocks.<block>.*
_CHUNKED_BLOCK = re.compile(r"^blocks\.\d+\.(\d+)\.")


def strip_wrappers(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Drop a prefix every backbone key shares (``teacher.backbone.`` ...) and un-chunk blocks.

    Keys outside the prefix (a DINO head, a projector) are dropped with it: they are not part of
    the backbone.
    """
    state = dict(state)
    for prefix in _WRAPPER_PREFIXES:
        inner = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
        if inner and any(k.startswith(("blocks.", "patch_embed.", "conv1.", "stem")) for k in inner):
            state = inner
            break
    return {_CHUNKED_BLOCK.sub(r"blocks.\1.", k): v for k, v in state.items()}


def to_model_layout(state: Mapping[str, torch.Tensor], model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A checkpoint in ``model``'s key layout: wrappers stripped, ViTs through timm's own filter.

    timm's ``checkpoint_filter_fn`` converts DINOv2's layout (``mask_token``, ``register_tokens``,
    SwiGLU ``w12``/``w3``) and resamples position embeddings to the model's grid, e.g. a
    518 px DINOv2 checkpoint into a 224 px model.
    """
    state = strip_wrappers(state)
    from timm.models.vision_transformer import VisionTransformer, checkpoint_filter_fn

    if isinstance(model, VisionTransformer):
        state = checkpoint_filter_fn(state, model)
    return state


def read_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read a checkpoint as a flat ``{name: tensor}`` dict.

    Accepts safetensors, a bare torch state dict, or a dict wrapping one under ``model`` or
    ``state_dict`` (common training-checkpoint layouts); ``module.`` prefixes left by
    DataParallel/DDP are stripped.
    """
    path = os.fspath(path)
    if path.endswith(".safetensors"):
        from safetensors.torch import load_file

        state = load_file(path)
    else:
        # weights_only: a checkpoint is data, never code to execute.
        state = torch.load(path, map_location="cpu", weights_only=True)
    for key in ("model", "state_dict"):
        if isinstance(state, Mapping) and isinstance(state.get(key), Mapping):
            state = state[key]
    if not isinstance(state, Mapping):
        raise ValueError(f"{path}: expected a state dict, got {type(state).__name__}")
    return {(k[len("module.") :] if k.startswith("module.") else k): v for k, v in state.items()}


def _classifier_prefixes(model: torch.nn.Module) -> tuple[str, ...]:
    names = getattr(model, "pretrained_cfg", {}).get("classifier") or ()
    names = (names,) if isinstance(names, str) else tuple(names)
    return tuple(n + "." for n in names)


def _shown(keys: list[str]) -> str:
    more = f" (+{len(keys) - _MAX_KEYS_SHOWN} more)" if len(keys) > _MAX_KEYS_SHOWN else ""
    return ", ".join(keys[:_MAX_KEYS_SHOWN]) + more


def load_weights(model: torch.nn.Module, path: str | os.PathLike) -> None:
    """Load a local checkpoint into ``model`` strictly, ignoring only classifier-head keys.

    Raises:
        WeightsError: Missing, unexpected or shape-mismatched keys, each listed.
    """
    own = model.state_dict()
    heads = _classifier_prefixes(model)
    # The backbone is built with num_classes=0, so a checkpoint's head has nowhere to go.
    # DINOv2 / training-checkpoint layouts become timm's first (ViT positions resampled to fit).
    state = to_model_layout(read_state_dict(path), model)
    state = {k: v for k, v in state.items() if k in own or not k.startswith(heads)}
    mismatched = [
        f"{k} (file {tuple(v.shape)} vs model {tuple(own[k].shape)})"
        for k, v in state.items()
        if k in own and tuple(v.shape) != tuple(own[k].shape)
    ]
    problems = []
    if mismatched:
        problems.append(f"mismatched keys: {_shown(mismatched)}")
    else:
        result = model.load_state_dict(state, strict=False)
        missing = [k for k in result.missing_keys if not k.endswith(_OPTIONAL_SUFFIXES)]
        if missing:
            problems.append(f"missing keys: {_shown(missing)}")
        if result.unexpected_keys:
            problems.append(f"unexpected keys: {_shown(list(result.unexpected_keys))}")
    if problems:
        arch = getattr(model, "pretrained_cfg", {}).get("architecture", type(model).__name__)
        raise WeightsError(f"weights {os.fspath(path)} do not fit {arch}: " + "; ".join(problems))


def resolve_preprocess(model: torch.nn.Module) -> dict[str, Any]:
    """timm's eval data config for ``model``.

    Returns:
        ``input_size`` (C, S, S), ``mean``, ``std``, ``interpolation``, ``crop_pct``, ``crop_mode``.
    """
    cfg = timm.data.resolve_data_config({}, model=model)
    return {
        "input_size": tuple(cfg["input_size"]),
        "mean": tuple(cfg["mean"]),
        "std": tuple(cfg["std"]),
        "interpolation": cfg.get("interpolation", "bicubic"),
        "crop_pct": cfg.get("crop_pct") or timm.data.DEFAULT_CROP_PCT,
        "crop_mode": cfg.get("crop_mode") or "center",
    }
