"""timm ViT encoders: building one offline, loading external weights into a method.

Checkpoints accepted by :func:`load_init_checkpoint`:

- timm-style encoder state dicts (``patch_embed.*``, ``blocks.*``, ``norm.*``; e.g. a timm
  ``vit_base_patch16_224.mae`` file or this project's exported encoder), ``.safetensors`` or torch;
- official MAE checkpoints ``{'model': {...}}``, with or without the decoder (``mask_token``,
  ``decoder_*`` keys load into the method when the shapes match);
- this project's training checkpoints (``encoder.*`` prefixed keys).

Torch files are read with ``weights_only=True``: no pickled code is ever executed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import timm
import torch
import torch.nn as nn
from timm.models.vision_transformer import VisionTransformer, checkpoint_filter_fn

log = logging.getLogger(__name__)

# Encoder parts MAE never calls (pooling and classifier); frozen so DDP sees no unused grads.
_UNUSED_ENCODER_PARTS = ("fc_norm", "attn_pool", "head")


def build_encoder(
    name: str, img_size: int, patch_size: int | None = None, extra: dict[str, Any] | None = None
) -> VisionTransformer:
    """A randomly initialised timm ViT with no classifier (nothing is downloaded).

    Args:
        name: timm model name of a ``VisionTransformer`` (e.g. ``vit_base_patch16_224``).
        img_size: Input side in pixels.
        patch_size: Override of the name's patch size, or None.
        extra: More ``timm.create_model`` keyword arguments (e.g. ``depth``).

    Returns:
        The encoder; its ``forward_features`` maps ``[N, 3, S, S]`` to ``[N, T, D]``.
    """
    kwargs = {**(extra or {}), "img_size": img_size}
    if patch_size is not None:
        kwargs["patch_size"] = patch_size
    encoder = timm.create_model(name, pretrained=False, num_classes=0, **kwargs)
    if not isinstance(encoder, VisionTransformer):
        raise ValueError(f"{name} is a {type(encoder).__name__}; MAE needs a timm VisionTransformer")
    if encoder.pos_embed is None or getattr(encoder, "dynamic_img_size", False):
        raise ValueError(f"{name}: MAE needs a fixed absolute pos_embed (no RoPE / dynamic size)")
    for part in _UNUSED_ENCODER_PARTS:
        module = getattr(encoder, part, None)
        if isinstance(module, nn.Module):
            module.requires_grad_(False)
    return encoder


def patch_size_of(encoder: VisionTransformer) -> int:
    """Square patch side of a timm ViT."""
    ph, pw = encoder.patch_embed.patch_size
    if ph != pw:
        raise ValueError(f"non-square patches {ph}x{pw} are not supported")
    return ph


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Tensors of a ``.safetensors`` or torch file, unwrapped from ``model``/``state_dict`` keys."""
    path = str(path)
    if path.endswith(".safetensors"):
        from safetensors.torch import load_file

        state = load_file(path, device="cpu")
    else:
        state = torch.load(path, map_location="cpu", weights_only=True)
    for key in ("model", "state_dict"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    state = {k[len("module."):] if k.startswith("module.") else k: v for k, v in state.items()}
    return {k: v for k, v in state.items() if isinstance(v, torch.Tensor)}


@dataclass
class LoadReport:
    """What :func:`load_init_checkpoint` did; ``skipped`` lists shape mismatches."""

    loaded: int = 0
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def load_init_checkpoint(method: nn.Module, path: str | Path) -> LoadReport:
    """Load encoder (and, if present, MAE decoder) weights into ``method`` non-strictly.

    The encoder part goes through timm's ``checkpoint_filter_fn`` so ``pos_embed`` and
    ``patch_embed`` are resampled to this model's image and patch size.

    Args:
        method: A method with an ``encoder`` attribute (a timm ViT).
        path: Local checkpoint file.

    Returns:
        A :class:`LoadReport`; missing and unexpected keys are also logged.
    """
    state = read_state_dict(path)
    if any(k.startswith("encoder.") for k in state):
        enc_state = {k[len("encoder."):]: v for k, v in state.items() if k.startswith("encoder.")}
        head_state = {k: v for k, v in state.items() if not k.startswith("encoder.")}
    else:
        is_head = lambda k: k.startswith("decoder_") or k == "mask_token"  # noqa: E731
        enc_state = {k: v for k, v in state.items() if not is_head(k)}
        head_state = {k: v for k, v in state.items() if is_head(k)}
    enc_state = checkpoint_filter_fn(enc_state, method.encoder)
    merged = {f"encoder.{k}": v for k, v in enc_state.items()} | head_state
    own = method.state_dict()
    report = LoadReport()
    usable = {}
    for key, value in merged.items():
        if key in own and own[key].shape != value.shape:
            report.skipped.append(f"{key} {tuple(value.shape)} != {tuple(own[key].shape)}")
        else:
            usable[key] = value
    result = method.load_state_dict(usable, strict=False)
    report.missing = [k for k in result.missing_keys if not k.startswith(tuple(f"encoder.{p}" for p in _UNUSED_ENCODER_PARTS))]
    report.unexpected = list(result.unexpected_keys)
    report.loaded = len(usable) - len(report.unexpected)
    log.info(
        "init checkpoint %s: %d tensors loaded, %d missing, %d unexpected, %d skipped (shape)",
        path, report.loaded, len(report.missing), len(report.unexpected), len(report.skipped),
    )
    for name in ("missing", "unexpected", "skipped"):
        if getattr(report, name):
            log.info("  %s: %s", name, ", ".join(getattr(report, name)))
    return report
