"""Outputs of ``activessf predict`` (no Ray).

While it runs, every classified batch of inputs is written at once as one part file under
``OUT/parts/<key>/`` (``<digest>.parquet``: one row per input with its cells), so a rerun reads
which inputs are done and skips them. At the end the parts become:

- ``manifest.parquet``: every input, ``ok`` or ``rejected`` with its ``reason``, and ``n_cells``;
- ``predictions.parquet``: one row per cell (region_id, image_id, source_path, x, y, w, h, kind,
  predicted, confidence, low_confidence, ``p_<class>`` per class);
- ``summary.csv``: per image, cells per predicted class and their proportions, and an ``ALL`` row;
- ``contact_sheets/<class>.png``: the most confident cells predicted as each class.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import shutil
from typing import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from activessf.io import fs as afs
from activessf.io.atomic import atomic_write_bytes, atomic_write_table, atomic_write_text
from activessf.io.decode import decode_image
from activessf.regions.crops import encode_image, tile_images

MANIFEST_COLUMNS = ["image_id", "source_path", "label", "status", "reason", "width", "height", "n_cells"]


def parts_dir(out: str, key: str) -> str:
    """Where the part files of one (bundle, settings) key live; other keys' parts are stale."""
    return os.path.join(out, "parts", key)


def clear_stale_parts(out: str, key: str) -> None:
    """Remove parts written under another bundle or settings: they must not be served again."""
    root = os.path.join(out, "parts")
    if os.path.isdir(root):
        for name in os.listdir(root):
            if name != key:
                shutil.rmtree(os.path.join(root, name), ignore_errors=True)


def done_ids(out: str, key: str) -> set[str]:
    """Image ids already in a finished part file."""
    folder = parts_dir(out, key)
    if not os.path.isdir(folder):
        return set()
    files = [os.path.join(folder, f) for f in sorted(os.listdir(folder)) if f.endswith(".parquet") and not f.startswith(".")]
    return {i for f in files for i in pq.read_table(f, columns=["image_id"])["image_id"].to_pylist()}


def write_part(out: str, key: str, batch: pa.Table) -> None:
    """One finished batch (rows of inputs with ``probs``) as a part file, named by its ids."""
    ids = "\n".join(sorted(batch["image_id"].to_pylist())).encode()
    name = hashlib.sha1(ids).hexdigest()[:16] + ".parquet"
    atomic_write_table(os.path.join(parts_dir(out, key), name), batch)


def read_parts(out: str, key: str) -> pa.Table:
    """Every part's rows, sorted by source path (one stable order whatever finished first)."""
    folder = parts_dir(out, key)
    files = [os.path.join(folder, f) for f in sorted(os.listdir(folder)) if f.endswith(".parquet") and not f.startswith(".")]
    table = pa.concat_tables([pq.read_table(f) for f in files]) if files else None
    if table is None:
        raise RuntimeError(f"{folder}: no prediction parts to assemble")
    return table.sort_by([("source_path", "ascending"), ("image_id", "ascending")])


def cell_rows(parts: pa.Table, classes: Sequence[str], low: float) -> pa.Table:
    """Flatten per-input rows into one row per cell (``predictions.parquet``)."""
    k = len(classes)
    cols: dict[str, list] = {c: [] for c in ("region_id", "image_id", "source_path", "x", "y", "w", "h", "kind")}
    probs = []
    for r in parts.select(["image_id", "source_path", "n_cells", "boxes", "kinds", "probs"]).to_pylist():
        boxes = np.asarray(r["boxes"], np.int32).reshape(-1, 4)
        for j in range(r["n_cells"]):
            for name, v in zip(("region_id", "image_id", "source_path", "x", "y", "w", "h", "kind"),
                               (f"{r['image_id']}-{j:03d}", r["image_id"], r["source_path"], *boxes[j], r["kinds"][j])):
                cols[name].append(v)
        probs.append(np.asarray(r["probs"], np.float32).reshape(-1, k))
    p = np.concatenate(probs) if probs else np.zeros((0, k), np.float32)
    top = p.argmax(1) if len(p) else np.zeros(0, np.int64)
    conf = p.max(1) if len(p) else np.zeros(0, np.float32)
    table = pa.table({n: pa.array(v, pa.int32() if n in "xywh" else pa.string()) for n, v in cols.items()})
    table = table.append_column("predicted", pa.array([classes[i] for i in top], pa.string()))
    table = table.append_column("confidence", pa.array(conf, pa.float32()))
    table = table.append_column("low_confidence", pa.array(conf < low, pa.bool_()))
    for j, c in enumerate(classes):
        table = table.append_column(f"p_{c}", pa.array(p[:, j], pa.float32()))
    return table


def summary_csv(manifest: pa.Table, cells: pa.Table, classes: Sequence[str]) -> str:
    """Per image (and ``ALL``): status, cells, low-confidence cells, count and share per class."""
    counts: dict[str, dict[str, int]] = {}
    for img, cls, low in zip(cells["image_id"].to_pylist(), cells["predicted"].to_pylist(),
                             cells["low_confidence"].to_pylist()):
        c = counts.setdefault(img, {})
        c[cls] = c.get(cls, 0) + 1
        c["_low"] = c.get("_low", 0) + int(low)
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["source_path", "status", "cells", "low_confidence", *classes, *[f"share_{c}" for c in classes]])
    total: dict[str, int] = {}
    for r in manifest.select(["image_id", "source_path", "status"]).to_pylist():
        c = counts.get(r["image_id"], {})
        for key, v in c.items():
            total[key] = total.get(key, 0) + v
        w.writerow(_summary_row(r["source_path"], r["status"], c, classes))
    w.writerow(_summary_row("ALL", f"{manifest.num_rows} inputs", total, classes))
    return buf.getvalue()


def _summary_row(name: str, status: str, c: dict[str, int], classes: Sequence[str]) -> list:
    n = sum(v for k, v in c.items() if k != "_low")
    return [name, status, n, c.get("_low", 0), *[c.get(k, 0) for k in classes],
            *[f"{c.get(k, 0) / n:.4f}" if n else "" for k in classes]]


def contact_sheets(out: str, cells: pa.Table, classes: Sequence[str], per_class: int, crop,
                   window=None) -> list[str]:
    """``contact_sheets/<class>.png``: the ``per_class`` most confident cells of each predicted class.

    Args:
        crop: ``crop(rgb, (x, y, w, h))`` -> RGB crop, the cut predict used (so the sheet shows
            what the model saw).
        window: ``window(path, box)`` -> ``(rgb, box in rgb)`` for inputs not to be decoded
            whole (whole slides: a window around the cell), or None to decode the file.
    """
    paths = []
    for cls in classes if per_class else []:
        rows = cells.filter(pc.equal(cells["predicted"], cls))
        if rows.num_rows == 0:
            continue
        rows = rows.take(pc.sort_indices(rows, [("confidence", "descending"), ("region_id", "ascending")])[:per_class])
        images, captions = _cut_cells(rows.to_pylist(), crop, window)
        path = os.path.join(out, "contact_sheets", f"{_safe(cls)}.png")
        atomic_write_bytes(path, encode_image(tile_images(images, captions, tile=128, cols=8), "png"))
        paths.append(path)
    return paths


def _cut_cells(rows: list[dict], crop, window=None) -> tuple[list[np.ndarray], list[str]]:
    images, captions, cache = [], [], {}
    for r in rows:
        box = (r["x"], r["y"], r["w"], r["h"])
        part = window(r["source_path"], box) if window else None
        if part is not None:
            rgb, box = part
        else:
            if r["source_path"] not in cache:
                cache = {r["source_path"]: decode_image(afs.read_bytes(r["source_path"]), 1).image}
            rgb = cache[r["source_path"]]
        if rgb is not None:
            images.append(crop(rgb, box))
            captions.append(f"{r['confidence']:.2f}" + (" low" if r["low_confidence"] else ""))
    return images, captions


def _safe(name: str) -> str:
    """A class name as a file name (class names come from user folders)."""
    keep = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name).strip(".")
    return keep or "class"


def write_tables(out: str, parts: pa.Table, classes: Sequence[str], low: float) -> tuple[pa.Table, pa.Table]:
    """``manifest.parquet``, ``predictions.parquet`` and ``summary.csv``; returns (manifest, cells)."""
    manifest = parts.select(MANIFEST_COLUMNS)
    cells = cell_rows(parts, classes, low)
    atomic_write_table(os.path.join(out, "manifest.parquet"), manifest)
    atomic_write_table(os.path.join(out, "predictions.parquet"), cells)
    atomic_write_text(os.path.join(out, "summary.csv"), summary_csv(manifest, cells, classes))
    return manifest, cells
