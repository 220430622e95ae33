"""Per-image work of ``activessf predict`` and ``activessf serve``: image bytes -> cell crops.

Pure Python (no Ray, no model): the Ray Data map, the local loop and the HTTP endpoint all call
:func:`cells_of_image`, so a cell is cut alike everywhere, and alike to training: the bundle's own
region-filtering config, the same square crop at ``crop_size``, then the same resize to the
model's input side as the fine-tuning loader (``resize_square``).
"""

from __future__ import annotations

import traceback
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from activessf.io.decode import decode_image
from activessf.pretrain.images import resize_square
from activessf.regions.config import RegionsConfig
from activessf.regions.crops import square_crop
from activessf.regions.detect import find_regions

Mode = Literal["cells", "crops"]


@dataclass
class ImageCells:
    """One input image's status and its cells.

    Attributes:
        status: ``ok`` or ``rejected``.
        reason: Why rejected, or which conversion decoding applied; empty otherwise.
        width, height: Decoded size in pixels (0 when unknown).
        boxes: ``[N, 4]`` int32 ``x, y, w, h`` in image pixels.
        kinds: ``[N]`` region kinds (``nucleated``, ``platelet``, ``cell``, or ``crop``).
        crops: ``[N, S, S, 3]`` uint8 model inputs.
    """

    status: str
    reason: str
    width: int = 0
    height: int = 0
    boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.int32))
    kinds: list[str] = field(default_factory=list)
    crops: np.ndarray | None = None


def _rejected(reason: str, width: int = 0, height: int = 0) -> ImageCells:
    return ImageCells("rejected", reason[:300], width, height)


def cells_of_image(data: bytes | None, regions: RegionsConfig, size: int, mode: Mode) -> ImageCells:
    """Decode one image and cut the model inputs out of it; a bad image becomes a rejected result.

    Args:
        data: Encoded image bytes (None when unreadable).
        regions: Region-filtering config (the bundle's: the one its training crops were cut with).
        size: Model input side S.
        mode: ``cells`` (region filtering, one input per kept region) or ``crops`` (the image is
            one cell crop and is classified whole).

    Returns:
        The image's status and ``[N, S, S, 3]`` crops (N may be 0: an image without cells).
    """
    decoded = decode_image(data, regions.min_side)
    if decoded.image is None:
        return _rejected(decoded.reason, decoded.width, decoded.height)
    rgb, h, w = decoded.image, decoded.height, decoded.width
    if mode == "crops":
        return ImageCells("ok", decoded.reason, w, h, np.array([[0, 0, w, h]], np.int32), ["crop"],
                          resize_square(rgb, size)[None])
    try:
        found = find_regions(rgb, regions)
    except Exception as exc:  # one odd image must not stop a run over thousands
        last = traceback.format_exception_only(type(exc), exc)[-1].strip()
        return _rejected(f"region filter failed: {last}", w, h)
    crops = np.zeros((len(found), size, size, 3), np.uint8)
    for k, r in enumerate(found):
        crops[k] = resize_square(square_crop(rgb, r, regions.crop_margin, regions.crop_size), size)
    boxes = np.array([[r.x, r.y, r.w, r.h] for r in found], np.int32).reshape(-1, 4)
    return ImageCells("ok", decoded.reason, w, h, boxes, [r.kind for r in found], crops)


def normalize(crops: np.ndarray, mean: list[float], std: list[float]) -> np.ndarray:
    """uint8 ``[N, S, S, 3]`` -> float32 ``[N, 3, S, S]``: ``(pixel / 255 - mean) / std``, as in training."""
    x = crops.astype(np.float32).transpose(0, 3, 1, 2) / 255.0
    m = np.asarray(mean, np.float32).reshape(1, 3, 1, 1)
    s = np.asarray(std, np.float32).reshape(1, 3, 1, 1)
    return np.ascontiguousarray((x - m) / s)
