"""A new labeled manifest version from checked answers: the old set plus the newly labeled cells.

The new folder ``NEW/`` holds ``labeled.csv`` (``source_path``, ``label``, ``region_id``: every
row of the base labeled set as it was, then one row per newly labeled cell pointing at its copied
crop ``crops/<label>/<region_id>.png``), ``negatives.csv`` (cells answered "not a target cell",
this import's and the base version's: region id, image, box, copied crop under ``negatives/``) and
``import.json``. ``activessf run --set pipeline.labeled=NEW/labeled.csv`` trains on it. The base
is never edited; the folder is written under a temporary name and renamed, so a failed import
leaves nothing behind.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil

from activessf.active import NOT_A_CELL
from activessf.io import fs as afs
from activessf.io.atomic import atomic_folder
from activessf.io.sources import InputError, load_inputs, readable

MANIFEST, NEGATIVES = "labeled.csv", "negatives.csv"
NEG_COLUMNS = ("region_id", "image_id", "source_path", "x", "y", "w", "h", "crop_path")


def _base_rows(base: str) -> list[dict]:
    """``source_path``, ``label``, ``region_id`` of the base labeled set (folder or manifest)."""
    from activessf.active.run_inputs import labeled_region_ids

    table = readable(load_inputs(base, labeled=True))
    rows = [{"source_path": p if afs.is_remote(p) else os.path.abspath(p), "label": lab, "region_id": ""}
            for p, lab in zip(table["source_path"].to_pylist(), table["label"].to_pylist())]
    if labeled_region_ids(base):  # an earlier import: keep its region ids (queries skip them)
        with open(base, newline="", encoding="utf-8") as fh:
            by_path = {os.path.abspath(os.path.join(os.path.dirname(base), r["source_path"])): r.get("region_id", "")
                       for r in csv.DictReader(fh)}
        for row in rows:
            row["region_id"] = by_path.get(row["source_path"], "")
    return rows


def _base_negatives(base: str) -> list[dict]:
    """The negatives file beside a base manifest from an earlier import ([] otherwise)."""
    path = os.path.join(os.path.dirname(base), NEGATIVES)
    if not base.lower().endswith(".csv") or not os.path.isfile(path):
        return []
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    for row in rows:  # absolute, so the new version does not depend on the old folder's layout
        row["crop_path"] = os.path.normpath(os.path.join(os.path.dirname(path), row["crop_path"]))
    return rows


def _copy_crop(log_row: dict, dst_dir: str) -> str:
    """Copy a queried cell's crop (the pool's, else the query folder's copy) into ``dst_dir``."""
    src = next((p for p in (log_row["pool_crop"], log_row["crop_path"]) if p and os.path.isfile(p)), None)
    if src is None:
        raise InputError(f"{log_row['region_id']}: its crop is gone ({log_row['pool_crop']}, {log_row['crop_path']})")
    os.makedirs(dst_dir, exist_ok=True)
    dst = os.path.join(dst_dir, log_row["region_id"] + (os.path.splitext(src)[1] or ".png"))
    shutil.copyfile(src, dst)
    return dst


def _csv_text(rows: list[dict], columns) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(columns), extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()


def write_version(labels: dict[str, str], log: dict[str, dict], base: str, out: str) -> dict:
    """Write the new labeled version ``out`` (a new folder) from checked answers.

    Args:
        labels: Region id -> class or ``NOT_A_CELL`` (from ``check_answers``).
        log: Region id -> its queried-log row (``LOG_COLUMNS``).
        base: The labeled set this version extends (folder or manifest; left as it is).
        out: Folder to create; refused when it exists and is not empty.

    Returns:
        Summary: counts per class added, negatives, base and new sizes, paths.
    """
    if os.path.isdir(out) and os.listdir(out):
        raise InputError(f"{out} exists and is not empty; a labeled version is written once, into a new folder")
    rows, negatives = _base_rows(base), _base_negatives(base)
    have = {r["region_id"]: r["label"] for r in rows if r["region_id"]}
    clash = [f"{rid} ({have[rid]} before, {lab} now)" for rid, lab in labels.items() if rid in have and have[rid] != lab]
    if clash:
        raise InputError("already labeled otherwise in the base set, nothing written: " + ", ".join(clash[:10]))
    with atomic_folder(out, prefix=".tmp-labels-") as tmp:
        added: dict[str, int] = {}
        for rid, lab in sorted(labels.items()):
            if rid in have:
                continue
            if lab == NOT_A_CELL:
                crop = _copy_crop(log[rid], os.path.join(tmp, "negatives"))
                negatives.append({c: log[rid].get(c, "") for c in NEG_COLUMNS} | {"crop_path": crop})
                continue
            crop = _copy_crop(log[rid], os.path.join(tmp, "crops", lab))
            rows.append({"source_path": os.path.relpath(crop, tmp), "label": lab, "region_id": rid})
            added[lab] = added.get(lab, 0) + 1
        for row in negatives:
            row["crop_path"] = os.path.relpath(row["crop_path"], tmp) if row["crop_path"].startswith(tmp) else row["crop_path"]
        with open(os.path.join(tmp, MANIFEST), "w", encoding="utf-8") as fh:
            fh.write(_csv_text(rows, ("source_path", "label", "region_id")))
        with open(os.path.join(tmp, NEGATIVES), "w", encoding="utf-8") as fh:
            fh.write(_csv_text(negatives, NEG_COLUMNS))
        summary = {"base": os.path.abspath(base), "base_rows": len(rows) - sum(added.values()), "added": added,
                   "rows": len(rows), "negatives": len(negatives), "manifest": os.path.join(os.path.abspath(out), MANIFEST)}
        with open(os.path.join(tmp, "import.json"), "w", encoding="utf-8") as fh:
            json.dump(summary, fh, indent=1)
    return summary


def read_negatives(version: str) -> list[dict]:
    """The "not a target cell" answers of a labeled version (its folder or manifest), crop paths absolute."""
    folder = version if os.path.isdir(version) else os.path.dirname(version)
    return _base_negatives(os.path.join(folder, MANIFEST))
