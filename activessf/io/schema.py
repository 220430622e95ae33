"""Parquet schemas shared by every stage (documented in README "Tables").

manifest.parquet, one row per input:
    image_id (string): stable id, a hash of the source path relative to the input folder (or the
        inputs' common folder), so reruns and stages agree and a moved input keeps its ids.
    source_path (string): the input's path or URI.
    label (string, nullable): class name when the input is labeled.
    status (string): ``ok`` or ``rejected``.
    reason (string): why rejected, or which conversion was applied; empty otherwise.
    width, height (int32): original size in pixels (0 if unknown).
    n_regions (int32): kept regions for this image (0 when rejected).
    tiles_read, tiles_skipped (int32, null for images): a whole slide's tiles read, and skipped
        as bare glass.

regions.parquet, one row per kept region:
    region_id (string): ``{image_id}-{k:03d}``, k the region's rank in the image (a slide's:
        ``{image_id}-t{tile:05d}-{k:03d}``, k its rank in the tile).
    image_id, source_path, label: as in the manifest.
    x, y, w, h (int32): box in original-image pixels (a slide's level-0 pixels).
    fill_rate (float32): region pixels / box pixels.
    area (int64): region pixels.
    kind (string): ``nucleated`` or ``platelet`` (size relative to the red cells, default preset),
        ``cell`` (paper preset); filter on it to keep only white cells, say.
    crop_path (string): crop file, relative to the stage's output folder.
"""

from __future__ import annotations

import hashlib
from typing import Sequence

import pyarrow as pa

MANIFEST_SCHEMA = pa.schema(
    [
        ("image_id", pa.string()),
        ("source_path", pa.string()),
        ("label", pa.string()),
        ("status", pa.string()),
        ("reason", pa.string()),
        ("width", pa.int32()),
        ("height", pa.int32()),
        ("n_regions", pa.int32()),
        ("tiles_read", pa.int32()),
        ("tiles_skipped", pa.int32()),
    ]
)

REGIONS_SCHEMA = pa.schema(
    [
        ("region_id", pa.string()),
        ("image_id", pa.string()),
        ("source_path", pa.string()),
        ("label", pa.string()),
        ("x", pa.int32()),
        ("y", pa.int32()),
        ("w", pa.int32()),
        ("h", pa.int32()),
        ("fill_rate", pa.float32()),
        ("area", pa.int64()),
        ("kind", pa.string()),
        ("crop_path", pa.string()),
    ]
)


def image_id_for(source_path: str) -> str:
    """Stable 16-hex-digit id of an input path (the same path always gets the same id)."""
    return hashlib.sha1(str(source_path).encode("utf-8")).hexdigest()[:16]


def relative_paths(paths: Sequence[str], root: str | None = None) -> list[str]:
    """Each path relative to ``root`` (when every path is under it), else to the paths' common folder.

    Ids are hashed from these, not from absolute paths: the same images copied to another folder
    (or bucket) keep their ids, so everything ordered or split by id (prototypes, folds, the
    selection) comes out the same.

    Args:
        paths: Absolute local paths or URIs, '/'-separated.
        root: The input folder, or a manifest's folder.

    Returns:
        ``[N]`` relative paths, in order.
    """
    split = [str(p).split("/") for p in paths]
    root_parts = str(root).rstrip("/").split("/") if root else None
    if root_parts and all(s[: len(root_parts)] == root_parts and len(s) > len(root_parts) for s in split):
        cut = len(root_parts)
    else:
        folders = [s[:-1] for s in split]
        cut = 0
        while folders and all(len(f) > cut and f[cut] == folders[0][cut] for f in folders):
            cut += 1
    return ["/".join(s[cut:]) for s in split]


def empty_table(schema: pa.Schema) -> pa.Table:
    return schema.empty_table()
