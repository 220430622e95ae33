"""The run's last step: the shipped model classifies held-back images (export -> predict -> report).

``pipeline.predict_holdout`` names a folder of images no stage trained on (``sample`` = the
embedded ``pbc11/holdout``). After the comparison the best arm (mean macro PR-AUC) is exported as
a bundle (``<run>/bundle``), exactly what ``activessf export`` writes, and ``run_predict``
classifies every cell of those images into ``<run>/predict_holdout``, as ``activessf predict``
does. Held-back images are cell-centred like the labeled ones, so each image is reported by the
cell whose box holds its centre (the cell it is labeled for); its true class is its folder's name
when that is one of the model's classes.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.compute as pc

from activessf.io import fs as afs
from activessf.io.atomic import atomic_write_bytes, atomic_write_text
from activessf.pipeline.config import SAMPLE
from activessf.pipeline.labeled import central_rows

BUNDLE = "bundle"
PREDICT = "predict_holdout"
TABLE = f"{PREDICT}/holdout.json"
SHEET = f"{PREDICT}/holdout_sheet.png"


def holdout_input(pipe: Any) -> str | None:
    """The held-back images folder of a ``PipelineConfig`` (None: the run predicts nothing)."""
    if not pipe.predict_holdout:
        return None
    from activessf.data import SAMPLE_HOLDOUT

    return str(SAMPLE_HOLDOUT) if pipe.predict_holdout == SAMPLE else pipe.predict_holdout


def holdout_key(source: str) -> list:
    """What the predictions depend on besides the bundle: the images (paths, sizes, mtimes)."""
    from activessf.io.markers import files_stamp

    if afs.is_remote(source):
        return [source]
    files = sorted(str(p) for p in Path(source).rglob("*") if p.is_file())
    return [source, files_stamp(files)]


def export_best(plan: Any) -> dict:
    """Export the best arm's final fit to ``<run>/bundle`` (``activessf export --run``)."""
    from activessf.inference.export import export_bundle

    meta = export_bundle(plan.root, plan.path(BUNDLE))
    return {"arm": meta["arm"], "kind": meta["kind"], "classes": len(meta["classes"])}


def predict_holdout(plan: Any) -> dict:
    """Classify the held-back images with the bundle; write the per-image table and sheet."""
    from activessf.stages.predict import run_predict
    from activessf.inference.config import PredictConfig

    out = plan.path(PREDICT)
    # Local executor: a handful of images, so Ray Data's start-up would cost more than the work.
    summary = run_predict(holdout_input(plan.pipe), plan.path(BUNDLE), out, PredictConfig(mode="cells"),
                          executor="local")
    classes = json.loads(afs.read_bytes(afs.join(plan.path(BUNDLE), "model.json")))["classes"]
    rows = image_rows(out, classes)
    atomic_write_text(plan.path(TABLE), json.dumps(rows, indent=1))
    atomic_write_bytes(plan.path(SHEET), _sheet(rows))
    known = [r for r in rows if r["true"]]
    return {"images": len(rows), "cells": summary.get("cells", 0),
            "correct": sum(r["predicted"] == r["true"] for r in known), "with_true_class": len(known)}


def image_rows(out: str, classes: list[str]) -> list[dict]:
    """One row per held-back image: its central cell's class and confidence, and its true class."""
    manifest = afs.read_table(os.path.join(out, "manifest.parquet"))
    cells = afs.read_table(os.path.join(out, "predictions.parquet"))
    sizes = {r["image_id"]: (r["width"], r["height"]) for r in manifest.to_pylist() if r["status"] == "ok"}
    central = {cells["image_id"][i].as_py(): i for i in central_rows(cells, sizes)}
    rows = []
    for img in manifest.to_pylist():
        mine = cells.filter(pc.equal(cells["image_id"], img["image_id"]))
        # No cell over the centre: the most confident cell found stands for the image.
        pick = (cells.slice(central[img["image_id"]], 1) if img["image_id"] in central else
                mine.take(pc.sort_indices(mine, [("confidence", "descending")])[:1]) if mine.num_rows else None)
        cell = pick.to_pylist()[0] if pick is not None else None
        parent = os.path.basename(os.path.dirname(img["source_path"]))
        rows.append({"image": os.path.basename(img["source_path"]), "source_path": img["source_path"],
                     "status": img["status"], "cells": mine.num_rows,
                     "predicted": cell["predicted"] if cell else "", "confidence": cell["confidence"] if cell else None,
                     "central": img["image_id"] in central,
                     "box": [cell[k] for k in ("x", "y", "w", "h")] if cell else None,
                     "true": parent if parent in classes else ""})
    return sorted(rows, key=lambda r: (r["true"], r["image"]))


def _sheet(rows: list[dict]) -> bytes:
    """PNG: each held-back image with the classified cell boxed, captioned predicted / true."""
    from activessf.io.decode import decode_image
    from activessf.regions.crops import draw_boxes, encode_image, tile_images

    images, captions = [], []
    for r in rows:
        rgb = decode_image(afs.read_bytes(r["source_path"]), 1).image
        if rgb is None:
            continue
        images.append(draw_boxes(rgb, [tuple(r["box"])]) if r["box"] else rgb)
        conf = f" {r['confidence']:.2f}" if r["confidence"] is not None else ""
        captions.append(f"{r['predicted'] or '-'}{conf} / {r['true'] or '?'}")
    if not images:
        return encode_image(np.full((16, 16, 3), 255, np.uint8), "png")
    return encode_image(tile_images(images, captions, tile=128, cols=6), "png")


def report_lines(root: str, esc: Any, image: Any) -> list[str]:
    """The report's section on the held-back images (empty when the run predicted none).

    Args:
        root: Run folder.
        esc: The report's escaper (every data string goes through it).
        image: The report's image-link helper ``image(root, rel, alt)``.
    """
    path = afs.join(root, TABLE)
    if not afs.exists(path):
        return []
    rows = json.loads(afs.read_bytes(path))
    meta_path = afs.join(root, BUNDLE, "model.json")
    arm = json.loads(afs.read_bytes(meta_path)).get("arm", "") if afs.exists(meta_path) else ""
    known = [r for r in rows if r["true"]]
    right = sum(r["predicted"] == r["true"] for r in known)
    lines = ["## 5. The final model on held-back images", "",
             f"The best arm ({esc(arm)}), exported as `bundle/` and applied with `activessf predict` to "
             f"{len(rows)} images no stage trained on: {right} of {len(known)} classified correctly "
             "(each image by the cell at its centre).", "",
             "| image | predicted | confidence | true class | cells found |", "|---|---|---|---|---|"]
    for r in rows:
        conf = f"{r['confidence']:.2f}" if r["confidence"] is not None else "-"
        mark = "" if not r["true"] or r["predicted"] == r["true"] else " ✗"
        lines.append(f"| {esc(r['image'])} | {esc(r['predicted'] or '-')}{mark} | {conf} | {esc(r['true'] or '?')} | "
                     f"{esc(r['cells'])} |")
    return lines + ["", "Each image with the classified cell boxed (predicted confidence / true class):", ""] + \
        image(root, SHEET, "held-back images")
