"""The two maps of ``activessf predict`` over Arrow batches of inputs (no Ray imported here).

``cut_batch`` (CPU tasks): decode and region-filter each input, carrying its crops as bytes;
``ClassifyBatch`` (an actor holding the model): add each input's probabilities. One row per input
all the way, so an input's manifest row and its cells always travel and land together, and a
finished part file marks exactly which inputs are done.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

from activessf.inference.cells import cells_of_image
from activessf.inference.classifier import CellClassifier
from activessf.io import fs as afs
from activessf.regions.config import RegionsConfig

CUT_SCHEMA = pa.schema([
    ("image_id", pa.string()), ("source_path", pa.string()), ("label", pa.string()),
    ("status", pa.string()), ("reason", pa.string()), ("width", pa.int32()), ("height", pa.int32()),
    ("n_cells", pa.int32()), ("boxes", pa.list_(pa.int32())), ("kinds", pa.list_(pa.string())),
    ("crops", pa.large_binary()),
])
PROBS_FIELD = pa.field("probs", pa.list_(pa.float32()))


def _read(row: dict[str, Any]) -> tuple[bytes | None, str]:
    if row.get("reason"):  # rejected unread when listed (hidden file, duplicate, ...)
        return None, row["reason"]
    try:
        return afs.read_bytes(row["source_path"]), ""
    except OSError as exc:
        return None, f"unreadable file: {exc}"[:300]


def cut_row(row: dict[str, Any], regions: RegionsConfig, size: int, mode: str) -> dict[str, Any]:
    """One ``CUT_SCHEMA`` row: the input's status and its crops (``[N, S, S, 3]`` uint8 as bytes)."""
    data, why = _read(row)
    out = {k: row.get(k) for k in ("image_id", "source_path", "label")}
    if data is None:
        return out | {"status": "rejected", "reason": why, "width": 0, "height": 0, "n_cells": 0,
                      "boxes": [], "kinds": [], "crops": b""}
    cells = cells_of_image(data, regions, size, mode)
    crops = cells.crops if cells.crops is not None else np.zeros((0, size, size, 3), np.uint8)
    return out | {"status": cells.status, "reason": cells.reason, "width": cells.width, "height": cells.height,
                  "n_cells": len(cells.kinds), "boxes": cells.boxes.reshape(-1).tolist(), "kinds": cells.kinds,
                  "crops": crops.tobytes()}


def cut_batch(batch: pa.Table, regions: dict[str, Any], size: int, mode: str) -> pa.Table:
    """Map of the cutting tasks: inputs (``image_id``, ``source_path``, ``label``, ``reason``) -> ``CUT_SCHEMA``."""
    from activessf.config import from_dict

    cfg = from_dict(RegionsConfig, regions)
    cols = [c for c in ("image_id", "source_path", "label", "reason") if c in batch.column_names]
    rows = [cut_row(r, cfg, size, mode) for r in batch.select(cols).to_pylist()]
    return pa.Table.from_pylist(rows, schema=CUT_SCHEMA)


class ClassifyBatch:
    """Map of the classifier actors: ``CUT_SCHEMA`` batch -> the same rows plus ``probs`` (flat ``[N*K]``).

    Args:
        folder: Bundle folder.
        runtime, threads, use_gpu, batch_size: See :class:`CellClassifier`.
    """

    def __init__(self, folder: str, runtime: str = "auto", threads: int = 1, use_gpu: bool = False,
                 batch_size: int = 64) -> None:
        self.clf = CellClassifier(folder, runtime, threads, use_gpu, batch_size)
        self.size = int(self.clf.meta["input"]["size"])

    def __call__(self, batch: pa.Table) -> pa.Table:
        counts = batch["n_cells"].to_numpy(zero_copy_only=False)
        blobs = batch["crops"].to_pylist()
        crops = np.frombuffer(b"".join(blobs), np.uint8).reshape(-1, self.size, self.size, 3)
        if len(crops) != int(counts.sum()):
            raise RuntimeError(f"{len(crops)} crops for {int(counts.sum())} cells in a predict batch")
        probs = self.clf.probabilities(crops)
        ends = np.cumsum(counts)
        per_row = [probs[e - n:e].reshape(-1).tolist() for n, e in zip(counts, ends)]
        return batch.drop_columns(["crops"]).append_column(PROBS_FIELD, pa.array(per_row, PROBS_FIELD.type))
