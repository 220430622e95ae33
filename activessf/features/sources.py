"""Feature sources: which network embeds the crops and how crops are fed to it (pure torch/timm).

``features.source`` (see ``features.config``) decides what the selection's prototypes are worth:
a backbone trained on the labeled crops (``labeled``), an encoder self-supervised on the pool
(``pool_ssl``), any local file (``weights``: ImageNet CNNs, DINOv2-format ViTs such as DinoBloom),
or a random initialisation (``random``: tests and timing only). This module builds the network
and its preprocessing for each, and adapts checkpoint layouts (DINOv2's own key names, training
checkpoint prefixes) to timm's.
"""

from __future__ import annotations

import json
import sys
from typing import Any, Mapping

import timm
import torch
from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD

from activessf.features.config import RANDOM_WARNING, FeaturesConfig
from activessf.features.weights import load_weights, resolve_preprocess, strip_wrappers, to_model_layout  # noqa: F401

# MAE-family encoders learn no class token: their patch tokens, averaged, are the features.
_AVG_POOL_METHODS = ("mae", "mixmim")


def encoder_header(path: str) -> dict[str, Any]:
    """The architecture an ``activessf pretrain`` export records in its safetensors header.

    Returns:
        ``method``, ``encoder``, ``img_size``, ``patch_size``, ``encoder_kwargs``.

    Raises:
        ValueError: The file is not such an export, or its method is not a timm ViT.
    """
    from safetensors import safe_open

    if not str(path).endswith(".safetensors"):
        raise ValueError(f"features.source pool_ssl: {path} is not an encoder.safetensors export")
    with safe_open(path, framework="pt") as fh:
        meta = fh.metadata() or {}
    if "encoder" not in meta or "method" not in meta:
        raise ValueError(f"features.source pool_ssl: {path} has no pretrain header (method, encoder)")
    if meta["method"] == "convmae":
        raise ValueError("features.source pool_ssl: ConvMAE encoders are not timm models; use MoCo v3 or MAE")
    out = {"method": meta["method"], "encoder": meta["encoder"]}
    for key in ("img_size", "patch_size", "encoder_kwargs"):
        out[key] = json.loads(meta[key]) if key in meta else None
    return out


def _create(name: str, seed: int, **kwargs: Any) -> torch.nn.Module:
    """``timm.create_model`` without a head, seeded; size arguments only where the model takes them."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        try:
            return timm.create_model(name, pretrained=False, num_classes=0, **kwargs)
        except TypeError as exc:  # CNNs take any input size and reject img_size
            if "img_size" not in str(exc):
                raise
            kwargs.pop("img_size", None)
            return timm.create_model(name, pretrained=False, num_classes=0, **kwargs)


def feed_size(cfg: FeaturesConfig, header: Mapping[str, Any] | None = None) -> int | None:
    """Side the crops are fed at whole, or None for the backbone's own data config."""
    if cfg.img_size is not None:
        return cfg.img_size
    if cfg.source == "labeled":
        return cfg.labeled.img_size
    if header is not None:
        return header.get("img_size")
    return None


def build_source_backbone(cfg: FeaturesConfig) -> tuple[torch.nn.Module, dict[str, Any]]:
    """The frozen network of ``cfg.source`` and how to preprocess crops for it.

    Args:
        cfg: Stage config (``weights`` already set for ``labeled``).

    Returns:
        The model in eval mode (pooled features ``[N, D]``, ``num_features`` = D) and its data
        config (as ``weights.resolve_preprocess``). Crops fed at an explicit side are resized
        whole (``crop_pct`` 1), as fine-tuning and pretraining saw them.

    Raises:
        ValueError: ``labeled`` without a trained backbone, or weights that do not fit.
    """
    if cfg.source == "labeled" and cfg.weights is None:
        raise ValueError("features.source is labeled but features.weights is empty: train the labeled "
                         "backbone first (activessf run does; or activessf feature-backbone)")
    if cfg.source == "pool_ssl":
        described = _described_encoder(cfg)
        if described is not None:
            return described
    header = encoder_header(cfg.weights) if cfg.source == "pool_ssl" else None
    size = feed_size(cfg, header)
    name, kwargs = cfg.backbone, {} if size is None else {"img_size": size}
    if header is not None:
        name = header["encoder"]
        kwargs.update(header.get("encoder_kwargs") or {})
        if header.get("patch_size") is not None:
            kwargs["patch_size"] = header["patch_size"]
        if header["method"] in _AVG_POOL_METHODS:
            kwargs["global_pool"] = "avg"
    model = _create(name, cfg.seed, **kwargs)
    if cfg.weights is not None:
        load_weights(model, cfg.weights)
    data_cfg = resolve_preprocess(model)
    if size is not None:
        data_cfg.update(input_size=(3, size, size), crop_pct=1.0, crop_mode="center")
    if cfg.source in ("labeled", "pool_ssl"):  # trained here, on ImageNet statistics
        data_cfg.update(mean=tuple(IMAGENET_DEFAULT_MEAN), std=tuple(IMAGENET_DEFAULT_STD))
    return model.eval(), data_cfg


def _described_encoder(cfg: FeaturesConfig) -> tuple[torch.nn.Module, dict[str, Any]] | None:
    """A pretraining export with a descriptor (``encoder.json``), built and loaded as fine-tuning
    builds it (its pooling and the checkpoint filter that maps MAE's ``norm`` onto ``fc_norm``);
    None for an export without one (the safetensors header path below)."""
    from dataclasses import replace

    from activessf.models.descriptor import build_encoder_module, read_descriptor

    desc = read_descriptor(cfg.weights)
    if desc is None:
        return None
    size = cfg.img_size or desc.img_size
    model = build_encoder_module(replace(desc, img_size=size), cfg.weights)
    data_cfg = {"input_size": (3, size, size), "interpolation": "bicubic", "crop_pct": 1.0, "crop_mode": "center",
                "mean": tuple(IMAGENET_DEFAULT_MEAN), "std": tuple(IMAGENET_DEFAULT_STD)}
    return model.eval(), data_cfg


def source_warning(cfg: FeaturesConfig) -> str | None:
    """The line a run on random features must print (None for informative sources)."""
    return RANDOM_WARNING if cfg.source == "random" else None


def warn_if_random(cfg: FeaturesConfig) -> None:
    """Print the random-features warning to stderr, framed so a person cannot miss it."""
    line = source_warning(cfg)
    if line:
        bar = "!" * min(len(line), 100)
        print(f"{bar}\n{line}\n{bar}", file=sys.stderr, flush=True)
