"""The crops a source holds, whatever stage produced it (the input of features and pretraining).

A source is one of: a selection stage folder (its *selected* crops), a region stage folder (all
its crops), an image folder, or a CSV/Parquet manifest (each image is one crop).
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from activessf.io import fs as afs
from activessf.io.markers import files_stamp, stage_stamp
from activessf.io.sources import load_inputs, readable

ITEMS_SCHEMA = pa.schema([("id", pa.string()), ("path", pa.string()), ("label", pa.string())])


def _done(source: str, table: str) -> bool:
    return afs.exists(afs.join(source, table)) and afs.exists(afs.join(source, "_SUCCESS.json"))


def crop_items(source: str, labeled: bool = False) -> pa.Table:
    """``ITEMS_SCHEMA`` rows (``id``, ``path``, ``label``) of the crops in ``source``.

    Args:
        source: Selection folder, region folder, image folder or manifest.
        labeled: Image folder only: labels from ImageFolder sub-folders.

    Returns:
        One row per crop, in the source's order.
    """
    if _done(source, "selection.parquet"):
        sel = afs.read_table(afs.join(source, "selection.parquet"), ["id", "path", "selected"])
        sel = sel.filter(pc.equal(sel["selected"], True))
        labels = pa.nulls(sel.num_rows, pa.string())
        return pa.table({"id": sel["id"], "path": sel["path"], "label": labels}, schema=ITEMS_SCHEMA)
    if _done(source, "regions.parquet"):
        regions = afs.read_table(afs.join(source, "regions.parquet"), ["region_id", "crop_path", "label"])
        paths = [afs.join(source, p) for p in regions["crop_path"].to_pylist()]
        return pa.table({"id": regions["region_id"], "path": paths, "label": regions["label"]}, schema=ITEMS_SCHEMA)
    # Entries that cannot be read (hidden, FIFOs, duplicates) are not crops.
    inputs = readable(load_inputs(source, labeled=labeled))
    return pa.table(
        {"id": inputs["image_id"], "path": inputs["source_path"], "label": inputs["label"]}, schema=ITEMS_SCHEMA
    )


def source_stamp(source: str, items: pa.Table) -> str:
    """What a stage reading ``source`` must key its skip by, besides the items' ids and paths.

    A stage folder stands for its outputs through its completion marker's fingerprint (which
    already covers its own inputs and config); images and manifests through their files' sizes
    and modification times, so changed bytes at the same path are noticed.

    Args:
        source: As given to ``crop_items``.
        items: Its ``crop_items`` rows.
    """
    return stage_stamp(source) or files_stamp(items.column("path").to_pylist())
