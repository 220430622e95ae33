"""Image inputs for pretraining: which files, and one file -> uint8 ``[S, S, 3]`` (no Ray).

The crops come from the data layer (``activessf.io.items``): a selection stage folder gives its
selected crops (ActiveSSF), a region stage folder or an image folder gives all of them (the
"w/o ActiveSSF" baseline).
"""

from __future__ import annotations

import os
from typing import Sequence

import cv2
import numpy as np

from activessf.io import fs as afs
from activessf.io.decode import decode_image
from activessf.io.items import crop_items



def list_images(data: str | os.PathLike | Sequence[str]) -> list[str]:
    """Image paths from a stage folder, an image folder, a manifest, a ``.txt`` list or a list.

    Args:
        data: Selection stage folder (selected crops), region stage folder (all crops), image
            folder (recursive; local or object storage), CSV/Parquet manifest, ``.txt`` list file
            (one path a line), or a sequence of paths.

    Returns:
        Paths in a stable order (the source's order; sorted for folders).
    """
    if not isinstance(data, (str, os.PathLike)):
        return [str(p) for p in data]
    data = str(data)
    if data.endswith(".txt"):
        text = afs.read_bytes(data).decode("utf-8")
        return [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]
    paths = crop_items(data)["path"].to_pylist()
    if not paths:
        raise FileNotFoundError(f"no images to pretrain on in {data} (an empty selection?)")
    return paths


def load_image(path: str, img_size: int) -> np.ndarray | None:
    """Decode one file (project decode policy) and resize it to ``img_size`` square.

    Args:
        path: Local path or object-storage URI.
        img_size: Output side; the crops are near-square cells, so the aspect is not kept.

    Returns:
        RGB uint8 ``[img_size, img_size, 3]``, or None when the file is rejected.
    """
    decoded = decode_image(afs.read_bytes(path), min_side=1)
    if decoded.image is None:
        return None
    return resize_square(decoded.image, img_size)


def resize_square(image: np.ndarray, img_size: int) -> np.ndarray:
    """RGB uint8 ``[H, W, 3]`` -> ``[img_size, img_size, 3]`` (area when shrinking, else cubic).

    Training and ``activessf predict`` both go through here, so a cell is seen alike by both.
    """
    if image.shape[:2] != (img_size, img_size):
        shrink = image.shape[0] > img_size or image.shape[1] > img_size
        interp = cv2.INTER_AREA if shrink else cv2.INTER_CUBIC
        image = cv2.resize(image, (img_size, img_size), interpolation=interp)
    return np.ascontiguousarray(image)


def load_images(paths: Sequence[str], img_size: int) -> np.ndarray:
    """Decode many files; rejected ones are dropped. Returns uint8 ``[N, S, S, 3]``."""
    images = [img for img in (load_image(p, img_size) for p in paths) if img is not None]
    if not images:
        return np.zeros((0, img_size, img_size, 3), np.uint8)
    return np.stack(images)
