"""Ray Dataset of pretraining images: one ``image`` column of uint8 ``[S, S, 3]`` arrays.

Built from a list of paths (see ``activessf.pretrain.images.list_images``); decoding runs in
Ray Data tasks, so on a cluster every node reads its share from object storage.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import ray

from activessf.pretrain.images import load_image


def _decode_batch(batch: dict[str, np.ndarray], img_size: int) -> dict[str, np.ndarray]:
    images = [load_image(str(p), img_size) for p in batch["path"]]
    kept = [img for img in images if img is not None]
    if not kept:
        return {"image": np.zeros((0, img_size, img_size, 3), np.uint8)}
    return {"image": np.stack(kept)}


def build_image_dataset(
    paths: Sequence[str],
    img_size: int,
    materialize: bool = True,
    batch_size: int = 64,
) -> ray.data.Dataset:
    """Decode and resize images into a Ray Dataset.

    Args:
        paths: Image files (local or object storage).
        img_size: Side of the square uint8 images.
        materialize: Decode once now into the object store (small sets: later epochs and
            Ray Train's split read memory); False streams and decodes every epoch.
        batch_size: Files per decode task batch.

    Returns:
        Dataset with column ``image``: uint8 ``[img_size, img_size, 3]``; unreadable files dropped.
    """
    if not paths:
        raise ValueError("no image paths given")
    blocks = max(1, min(len(paths) // batch_size + 1, 1024))
    ds = ray.data.from_items([{"path": str(p)} for p in paths], override_num_blocks=blocks)
    ds = ds.map_batches(_decode_batch, fn_kwargs={"img_size": img_size}, batch_size=batch_size, batch_format="numpy")
    return ds.materialize() if materialize else ds


def dataset_from_array(images: np.ndarray) -> ray.data.Dataset:
    """In-memory uint8 ``[N, S, S, 3]`` images as a materialised dataset (benchmarks, tests)."""
    items = [{"image": img} for img in np.ascontiguousarray(images, dtype=np.uint8)]
    # Few large blocks: per-block overhead of one-row blocks dominates iteration otherwise.
    blocks = max(1, min(len(items) // 256 + 1, 1024))
    return ray.data.from_items(items, override_num_blocks=blocks).materialize()


def take_images(ds: ray.data.Dataset, count: int) -> np.ndarray:
    """The first ``count`` images as uint8 ``[K, S, S, 3]`` (for figures)."""
    if count <= 0:
        return np.zeros((0, 1, 1, 3), np.uint8)
    rows = ds.take(count)
    return np.stack([np.asarray(r["image"], dtype=np.uint8) for r in rows]) if rows else np.zeros((0, 1, 1, 3), np.uint8)
