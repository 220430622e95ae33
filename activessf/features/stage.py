"""The feature stage's data side (no Ray): what to featurize, loading crops, the output table.

Input is either a finished region stage folder (its crops, with labels when the region stage ran
with ``--labeled``) or any image folder/manifest (each whole image is one crop).

features.parquet columns:
    id (string): ``region_id`` for region crops, ``image_id`` for whole images.
    path (string): the crop or image file.
    label (string, nullable): class name when known.
    feature (fixed_size_list<float32>[D]): pooled backbone features.
Table metadata ``activessf``: JSON with ``backbone``, ``weights``, ``data_config``, ``dim``.
"""

from __future__ import annotations

import json
from typing import Iterable

import cv2
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from activessf.io import fs as afs
from activessf.io.decode import decode_image
from activessf.io.items import ITEMS_SCHEMA, crop_items
from activessf.io.sources import InputError

STATUS_SCHEMA = ITEMS_SCHEMA.append(pa.field("status", pa.string())).append(pa.field("reason", pa.string()))


def features_schema(dim: int, meta: dict) -> pa.Schema:
    fields = [*ITEMS_SCHEMA, pa.field("feature", pa.list_(pa.float32(), dim))]
    return pa.schema(fields, metadata={"activessf": json.dumps(meta)})


def feature_items(source: str, labeled: bool = False) -> pa.Table:
    """Rows to featurize: every crop of a region stage folder, or every image of a folder/manifest.

    A selection folder is not a feature source (select reads features, it does not make crops).
    """
    if afs.exists(afs.join(source, "selection.parquet")):
        raise InputError(f"{source} is a selection stage folder; give a region stage folder or images")
    return crop_items(source, labeled)


def load_crops(batch: pa.Table, size: int) -> dict[str, np.ndarray]:
    """Read and decode a batch of crops, resized to ``size`` x ``size``, each with a status.

    Args:
        batch: ``ITEMS_SCHEMA`` rows.
        size: Side the crops are resized to (the backbone's input size keeps payloads small).

    Returns:
        Columns ``id``, ``path``, ``label``, ``status``, ``reason`` ``[N]`` and ``image``
        ``[N, size, size, 3]`` uint8 (zeros for rejected rows).
    """
    rows = batch.to_pylist()
    images = np.zeros((len(rows), size, size, 3), np.uint8)
    status, reason = [], []
    for i, row in enumerate(rows):
        try:
            decoded = decode_image(afs.read_bytes(row["path"]))
        except OSError as exc:
            status.append("rejected")
            reason.append(f"unreadable file: {exc}"[:300])
            continue
        status.append(decoded.status)
        reason.append(decoded.reason)
        if decoded.image is not None:
            images[i] = cv2.resize(decoded.image, (size, size), interpolation=cv2.INTER_AREA)
    out = {k: np.array([r[k] for r in rows], dtype=object) for k in ("id", "path", "label")}
    out.update(status=np.array(status, dtype=object), reason=np.array(reason, dtype=object), image=images)
    return out


def split_features(batch: dict, schema: pa.Schema) -> tuple[pa.Table, pa.Table]:
    """Featurized batch -> (rows of ``features.parquet`` for ok items, status rows for all)."""
    # Ray Data may hand an all-null string column back as float NaNs: anything not a str is null.
    cols = {k: [v if isinstance(v, str) else None for v in batch[k]] for k in ("id", "path", "label", "status", "reason")}
    status = pa.table(cols, schema=STATUS_SCHEMA)
    ok = np.asarray(batch["status"], dtype=object) == "ok"
    feats = np.asarray(batch["feature"], dtype=np.float32)[ok]
    dim = schema.field("feature").type.list_size
    flat = pa.FixedSizeListArray.from_arrays(pa.array(feats.reshape(-1)), dim)
    table = pa.table(
        {
            "id": pa.array(status["id"].to_numpy(zero_copy_only=False)[ok], pa.string()),
            "path": pa.array(status["path"].to_numpy(zero_copy_only=False)[ok], pa.string()),
            "label": pa.array(status["label"].to_numpy(zero_copy_only=False)[ok], pa.string()),
            "feature": flat,
        },
        schema=schema,
    )
    return table, status


def count_status(status: pa.Table) -> tuple[int, int]:
    ok = pc.sum(pc.equal(status["status"], "ok")).as_py() or 0
    return status.num_rows, ok


def iter_local(items: pa.Table, extractor, size: int, batch_size: int) -> Iterable[dict]:
    """Load and featurize in this process (small runs and tests)."""
    for start in range(0, items.num_rows, batch_size):
        yield extractor(load_crops(items.slice(start, batch_size), size))


def read_features(path: str) -> tuple[pa.Table, np.ndarray, dict]:
    """``features.parquet`` -> (id/path/label table, features ``[N, D]`` float32, metadata), by id.

    Rows come sorted by ``id``: the stage writes them in Ray Data's completion order, which
    varies between runs, and K-means (prototypes) depends on row order through its seeding.
    """
    table = afs.read_table(path)
    table = table.take(pc.sort_indices(table, [("id", "ascending")]))
    meta = json.loads((table.schema.metadata or {}).get(b"activessf", b"{}"))
    col = table.column("feature").combine_chunks()
    dim = col.type.list_size
    feats = col.flatten().to_numpy(zero_copy_only=False).reshape(-1, dim).astype(np.float32, copy=False)
    return table.drop(["feature"]), feats, meta
