"""Frozen timm backbone: build it (local weights only), preprocess crops like timm, extract features.

Everything here is plain torch/timm so the lead's Ray Data stage can hand ``FeatureExtractor`` to
``map_batches`` as a callable class: Ray constructs it once per actor, so the model is built in
``__init__`` on the worker and never pickled.
"""

from __future__ import annotations

import contextlib
import math
import os
from typing import Any, Mapping

import numpy as np
import timm
import torch
import torch.nn.functional as F

from activessf.features.config import FeaturesConfig
from activessf.features.sources import build_source_backbone
from activessf.features.weights import load_weights, read_state_dict, resolve_preprocess  # noqa: F401 (re-exported)



def build_backbone(name: str, weights: str | os.PathLike | None = None, seed: int = 0) -> torch.nn.Module:
    """A timm model returning pooled features ``[N, D]``, in eval mode, never downloading.

    Args:
        name: timm model name.
        weights: Optional local ``.safetensors`` or torch state-dict file.
        seed: Seed of the random initialisation. Without weights, every actor and every stage
            (labeled and unlabeled features) must build the *same* network, or their features
            are not comparable; the global RNG is left as it was.

    Returns:
        The model (``model.num_features`` = D).

    Raises:
        ValueError: ``weights`` does not fit the architecture (names the offending keys).
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = timm.create_model(name, pretrained=False, num_classes=0)
    if weights is not None:
        load_weights(model, weights)
    return model.eval()


def _resize(x: torch.Tensor, size: tuple[int, int], interpolation: str) -> torch.Tensor:
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    if interpolation == "nearest":
        return F.interpolate(x, size=size, mode="nearest")
    if interpolation not in ("bilinear", "bicubic"):
        raise ValueError(f"unsupported interpolation {interpolation!r}")
    # antialias=True is what torchvision (and so timm) uses, and it tracks PIL when shrinking.
    out = F.interpolate(x, size=size, mode=interpolation, align_corners=False, antialias=True)
    # Bicubic overshoots; PIL clamps to the uint8 range, so do the same.
    return out.clamp_(0.0, 255.0)


def _scaled_size(h: int, w: int, data_cfg: Mapping[str, Any]) -> tuple[int, int]:
    _, out_h, out_w = data_cfg["input_size"]
    crop_pct = data_cfg["crop_pct"]
    if data_cfg["crop_mode"] == "squash":
        return math.floor(out_h / crop_pct), math.floor(out_w / crop_pct)
    if data_cfg["crop_mode"] != "center" or out_h != out_w:
        raise ValueError(f"only square 'center' or 'squash' crops are supported, got {dict(data_cfg)}")
    # torchvision Resize(int): the short side becomes `scale`, the long side keeps the aspect ratio.
    scale = math.floor(out_h / crop_pct)
    if w <= h:
        return int(scale * h / w), scale
    return scale, int(scale * w / h)


def preprocess_batch(images: np.ndarray, data_cfg: Mapping[str, Any]) -> torch.Tensor:
    """Resize, centre-crop, scale and normalise crops exactly as timm's eval transform does.

    Args:
        images: ``[N, H, W, 3]`` uint8 RGB.
        data_cfg: From ``resolve_preprocess``.

    Returns:
        ``[N, 3, S, S]`` float32.
    """
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"expected images [N, H, W, 3], got shape {images.shape}")
    # astype copies, so Ray's read-only batch buffers are never shared with torch.
    x = torch.from_numpy(images.astype(np.float32)).permute(0, 3, 1, 2)
    _, out_h, out_w = data_cfg["input_size"]
    x = _resize(x, _scaled_size(x.shape[-2], x.shape[-1], data_cfg), data_cfg["interpolation"])
    h, w = x.shape[-2:]
    if h < out_h or w < out_w:
        raise ValueError(f"crop_pct > 1 would need padding: resized {h}x{w} < {out_h}x{out_w}")
    top, left = int(round((h - out_h) / 2.0)), int(round((w - out_w) / 2.0))
    x = x[:, :, top : top + out_h, left : left + out_w]
    mean = torch.tensor(data_cfg["mean"], dtype=torch.float32).view(1, 3, 1, 1) * 255.0
    std = torch.tensor(data_cfg["std"], dtype=torch.float32).view(1, 3, 1, 1) * 255.0
    return ((x - mean) / std).contiguous()


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` -> CUDA when available, else CPU; ``cuda`` without a GPU is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("features.device is 'cuda' but no CUDA device is visible")
    return torch.device(name)


def extract_features(
    model: torch.nn.Module,
    batch: torch.Tensor,
    device: torch.device | str,
    use_bf16: bool = True,
    channels_last: bool = True,
) -> np.ndarray:
    """One forward pass of a model already on ``device``.

    Args:
        model: From ``build_backbone``, moved to ``device``.
        batch: ``[N, 3, S, S]`` float32 from ``preprocess_batch``.
        device: Where the model lives.
        use_bf16: bf16 autocast, applied on CUDA only (CPU bf16 is slow on most CPUs).
        channels_last: Feed NHWC memory layout (match the model's layout for speed).

    Returns:
        ``[N, D]`` float32 features.
    """
    device = torch.device(device)
    batch = batch.to(device, non_blocking=True)
    if channels_last:
        batch = batch.contiguous(memory_format=torch.channels_last)
    autocast = (
        torch.autocast("cuda", dtype=torch.bfloat16)
        if use_bf16 and device.type == "cuda"
        else contextlib.nullcontext()
    )
    with torch.inference_mode(), autocast:
        out = model(batch)
    if out.ndim != 2:
        raise ValueError(f"backbone returned shape {tuple(out.shape)}, expected pooled [N, D]")
    return out.float().cpu().numpy()


class FeatureExtractor:
    """Callable for Ray Data ``map_batches``: ``{'image': [N, H, W, 3] uint8, ...}`` -> features.

    The model is built in ``__init__`` (once per actor); other batch columns pass through.
    """

    def __init__(self, config: FeaturesConfig) -> None:
        self.config = config
        self.device = resolve_device(config.device)
        model, self.data_cfg = build_source_backbone(config)
        model = model.to(self.device)
        if config.channels_last:
            model = model.to(memory_format=torch.channels_last)
        self.model = model
        self.feature_dim = int(model.num_features)

    def __call__(self, batch: Mapping[str, Any]) -> dict[str, Any]:
        """Features for one batch.

        Args:
            batch: Column ``config.image_key`` holds ``[N, H, W, 3]`` uint8 (or N such arrays of
                one shape); every other column is returned unchanged.

        Returns:
            The passthrough columns plus ``feature`` ``[N, D]`` float32.
        """
        key = self.config.image_key
        images = batch[key]
        if isinstance(images, (list, tuple)) or getattr(images, "dtype", None) == object:
            images = np.stack(list(images)) if len(images) else np.zeros((0, 1, 1, 3), np.uint8)
        chunks = [np.zeros((0, self.feature_dim), np.float32)]
        step = self.config.batch_size
        for start in range(0, len(images), step):
            x = preprocess_batch(images[start : start + step], self.data_cfg)
            chunks.append(
                extract_features(self.model, x, self.device, self.config.use_bf16, self.config.channels_last)
            )
        out = {k: v for k, v in batch.items() if k != key}
        out["feature"] = np.concatenate(chunks, axis=0)
        return out
