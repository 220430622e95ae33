"""Per-image work of the region stage: read, decode, filter, crop. Pure Python, no Ray.

``process_batch`` is what the Ray Data stage maps; tests call it directly.
"""

from __future__ import annotations

import traceback

import numpy as np
import pyarrow as pa

from activessf.io import fs as afs
from activessf.io.atomic import atomic_write_bytes
from activessf.io.decode import decode_image
from activessf.io.schema import MANIFEST_SCHEMA, REGIONS_SCHEMA
from activessf.regions.config import RegionsConfig
from activessf.regions.crops import encode_image, square_crop
from activessf.regions.detect import find_regions

REGION_STRUCT = pa.struct([f for f in REGIONS_SCHEMA])
BATCH_SCHEMA = MANIFEST_SCHEMA.append(pa.field("regions", pa.list_(REGION_STRUCT)))


def crop_relpath(region_id: str, fmt: str) -> str:
    """Where a crop lives under the output folder; two-level fan-out keeps folders small."""
    return f"crops/{region_id[:2]}/{region_id}.{fmt}"


def process_image(row: dict, cfg: RegionsConfig, out_dir: str) -> dict:
    """Manifest row (with its ``regions`` list) for one input; bad input becomes a rejected row.

    Args:
        row: ``image_id``, ``source_path``, ``label``, optional ``reason`` (set: rejected unread).
        cfg: Stage config.
        out_dir: Stage output folder; crops are written under ``out_dir/crops``.

    Returns:
        A dict with the manifest columns plus ``regions`` (list of region dicts).
    """
    skip = row.pop("reason", None)
    out = {**row, "status": "rejected", "reason": "", "width": 0, "height": 0, "n_regions": 0, "regions": []}
    if skip:  # listed but not to be read (hidden, FIFO, duplicate...): a rejected row, never opened
        out["reason"] = skip
        return out
    try:
        data = afs.read_bytes(row["source_path"])
    except OSError as exc:
        out["reason"] = f"unreadable file: {exc}"[:300]
        return out
    decoded = decode_image(data, cfg.min_side, cfg.max_pixels)
    out.update(status=decoded.status, reason=decoded.reason, width=decoded.width, height=decoded.height)
    if decoded.image is None:
        return out
    try:
        regions = find_regions(decoded.image, cfg)
    except Exception as exc:  # one odd image must not stop a run over thousands
        last = traceback.format_exception_only(type(exc), exc)[-1].strip()
        out.update(status="rejected", reason=f"region filter failed: {last}"[:300])
        return out
    out["regions"] = [_write_region(decoded.image, row, k, r, cfg, out_dir) for k, r in enumerate(regions)]
    out["n_regions"] = len(regions)
    return out


def _write_region(rgb: np.ndarray, row: dict, k: int, region, cfg: RegionsConfig, out_dir: str) -> dict:
    region_id = f"{row['image_id']}-{k:03d}"
    rel = crop_relpath(region_id, cfg.crop_format)
    crop = square_crop(rgb, region, cfg.crop_margin, cfg.crop_size)
    atomic_write_bytes(afs.join(out_dir, rel), encode_image(crop, cfg.crop_format))
    return {
        "region_id": region_id,
        "image_id": row["image_id"],
        "source_path": row["source_path"],
        "label": row.get("label"),
        "x": region.x,
        "y": region.y,
        "w": region.w,
        "h": region.h,
        "fill_rate": float(region.fill_rate),
        "area": int(region.area),
        "kind": region.kind,
        "crop_path": rel,
    }


def process_batch(batch: pa.Table, cfg: RegionsConfig, out_dir: str) -> pa.Table:
    """Process a batch of inputs.

    Args:
        batch: Rows with ``image_id``, ``source_path``, ``label`` and optionally ``reason``.
        cfg: Stage config.
        out_dir: Stage output folder.

    Returns:
        ``BATCH_SCHEMA`` table: one manifest row per input, each carrying its regions.
    """
    columns = [c for c in ("image_id", "source_path", "label", "reason") if c in batch.column_names]
    rows = [process_image(r, cfg, out_dir) for r in batch.select(columns).to_pylist()]
    return pa.Table.from_pylist(rows, schema=BATCH_SCHEMA)


def split_batch(table: pa.Table) -> tuple[pa.Table, pa.Table]:
    """Split a processed batch into its manifest rows and its flattened region rows."""
    manifest = table.select(MANIFEST_SCHEMA.names).cast(MANIFEST_SCHEMA)
    flat = pa.Table.from_struct_array(table.column("regions").combine_chunks().flatten())
    regions = flat.cast(REGIONS_SCHEMA) if flat.num_rows else REGIONS_SCHEMA.empty_table()
    return manifest, regions
