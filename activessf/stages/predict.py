"""The predict stage: a bundle applied to images and whole slides, resumable part by part.

Writes ``manifest.parquet`` (every input, rejected with its reason), ``predictions.parquet``,
``summary.csv`` and contact sheets. Each finished batch is a part file at once, so memory stays
flat in the input size and a rerun skips the inputs already done. Runs on Ray Data
(``activessf.distributed.predict``) or in this process (small runs and tests).
"""

from __future__ import annotations

import os
import sys
import time
from typing import Iterable, Literal

import pyarrow as pa
import pyarrow.compute as pc

from activessf.config import from_dict, to_dict
from activessf.inference.batches import ClassifyBatch, cut_batch
from activessf.inference.bundle import read_meta
from activessf.inference.config import PredictConfig
from activessf.inference.outputs import clear_stale_parts, contact_sheets, done_ids, read_parts, write_part, write_tables
from activessf.inference.slides import cut_tiles, plan_slides, slide_merger, slide_window
from activessf.io.atomic import atomic_write_text
from activessf.io.markers import clear_marker, fingerprint, is_complete, write_marker
from activessf.io.sources import load_inputs, refuse_output_inside_input
from activessf.regions.config import RegionsConfig
from activessf.regions.crops import square_crop
from activessf.regions.stage import split_inputs
from activessf.regions.types import Region


def iter_local(inputs: pa.Table, folder: str, cfg: PredictConfig, regions: dict, size: int) -> Iterable[pa.Table]:
    """The same two maps in this process, one chunk of inputs at a time."""
    clf = ClassifyBatch(folder, cfg.runtime, cfg.threads, cfg.use_gpu == "true", cfg.batch_size)
    for start in range(0, inputs.num_rows, cfg.chunk_size):
        yield clf(cut_batch(inputs.slice(start, cfg.chunk_size), regions, size, cfg.mode))


def iter_slides_local(slides: pa.Table, folder: str, cfg: PredictConfig, regions: dict, size: int) -> Iterable[pa.Table]:
    """Whole slides in this process: each slide's tiles cut and classified a batch at a time."""
    clf = ClassifyBatch(folder, cfg.runtime, cfg.threads, cfg.use_gpu == "true", cfg.batch_size)
    per_batch = from_dict(RegionsConfig, regions).slides.tiles_per_batch
    merger = slide_merger(folder, regions)
    for start in range(slides.num_rows):
        tiles = plan_slides(slides.slice(start, 1), regions, cfg.mode)
        for t in range(0, tiles.num_rows, per_batch):
            yield from merger.add(clf(cut_tiles(tiles.slice(t, per_batch), regions, size)))
    merger.close()


def _keys(meta: dict, cfg: PredictConfig, inputs: pa.Table) -> tuple[str, str]:
    """(parts key, whole-run fingerprint): what the predictions depend on, then also which inputs."""
    parts_key = fingerprint("predict", meta["files"], cfg.mode, cfg.low_confidence)
    return parts_key, fingerprint(parts_key, inputs.column("source_path").to_pylist(), cfg.contact_sheet_cells)


def _progress(done: int, total: int, started: float) -> None:
    rate = done / max(time.time() - started, 1e-6)
    eta = (total - done) / rate if rate > 0 else float("inf")
    print(f"predict: {done}/{total} images, {rate:.1f} images/s, ETA {eta:.0f} s", file=sys.stderr, flush=True)


def _crop_for(regions: RegionsConfig, mode: str):
    """The cut a contact sheet shows: the model's view of each cell."""
    if mode == "crops":
        return lambda rgb, box: rgb
    return lambda rgb, box: square_crop(rgb, Region(*box, 0, 0.0), regions.crop_margin, regions.crop_size)


def run_predict(source: str, model: str, out: str, cfg: PredictConfig,
                executor: Literal["ray", "local"] = "ray", force: bool = False) -> dict:
    """Apply a bundle to images: ``manifest.parquet``, ``predictions.parquet``, ``summary.csv``, sheets.

    Args:
        source: Image folder, manifest (CSV/Parquet) or one image path; whole slides among the
            inputs are tiled with the bundle's region config (``slides``).
        model: Bundle folder (``activessf export``).
        out: Output folder (local).
        cfg: Predict config.
        executor: ``ray`` (Ray Data) or ``local`` (this process).
        force: Redo every input even when parts or outputs are complete.

    Returns:
        Counts: ``inputs``, ``ok``, ``rejected``, ``cells``, ``low_confidence``, ``skipped`` (inputs
        found done by an earlier attempt), ``per_class`` (cells per predicted class).
    """
    meta = read_meta(model)
    refuse_output_inside_input(source, out)
    inputs = load_inputs(source, slides=True)
    regions = meta["regions"]
    parts_key, fp = _keys(meta, cfg, inputs)
    if is_complete(out, fp) and not force:
        print(f"predict: {out} is complete for these inputs and this model; skipped", file=sys.stderr)
        return read_summary(out)
    clear_marker(out) if os.path.isdir(out) else os.makedirs(out, exist_ok=True)
    clear_stale_parts(out, "" if force else parts_key)
    atomic_write_text(os.path.join(out, "predict_config.yaml"), _config_text(cfg, model))
    done = done_ids(out, parts_key)
    todo = inputs.filter(pc.invert(pc.is_in(inputs["image_id"], pa.array(sorted(done), pa.string()))))
    size = int(meta["input"]["size"])
    images, slides = split_inputs(todo, from_dict(RegionsConfig, regions))
    if executor == "ray":
        from activessf.distributed.predict import iter_ray, iter_slides_ray

        runs = [(iter_ray, images), (iter_slides_ray, slides)]
    else:
        runs = [(iter_local, images), (iter_slides_local, slides)]
    started, n = time.time(), len(done)
    for run, rows in runs:
        for batch in run(rows, os.path.abspath(model), cfg, regions, size) if rows.num_rows else []:
            write_part(out, parts_key, batch)
            n += batch.num_rows
            _progress(n, inputs.num_rows, started)
    summary = _finish(out, parts_key, meta, cfg, inputs) | {"skipped": len(done)}
    write_marker(out, "predict", fp, summary)
    return summary


def _finish(out: str, key: str, meta: dict, cfg: PredictConfig, inputs: pa.Table) -> dict:
    parts = read_parts(out, key)
    parts = parts.filter(pc.is_in(parts["image_id"], inputs["image_id"]))  # inputs since removed drop out
    if parts.num_rows != inputs.num_rows:
        raise RuntimeError(f"predict lost inputs: {inputs.num_rows} given, {parts.num_rows} written")
    classes = list(meta["classes"])
    manifest, cells = write_tables(out, parts, classes, cfg.low_confidence)
    regions = from_dict(RegionsConfig, meta["regions"])
    slide_paths = set(split_inputs(inputs, regions)[1]["source_path"].to_pylist())

    def window(path: str, box: tuple):  # a slide is never decoded whole, not even for a sheet
        return slide_window(path, box, regions.crop_margin) if path in slide_paths else None

    sheets = contact_sheets(out, cells, classes, cfg.contact_sheet_cells, _crop_for(regions, cfg.mode), window)
    ok = pc.sum(pc.equal(manifest["status"], "ok")).as_py() or 0
    per_class = {c: int(n) for c, n in zip(*_value_counts(cells["predicted"]))}
    return {"inputs": manifest.num_rows, "ok": ok, "rejected": manifest.num_rows - ok, "cells": cells.num_rows,
            "low_confidence": int(pc.sum(cells["low_confidence"]).as_py() or 0), "per_class": per_class,
            "contact_sheets": [os.path.basename(s) for s in sheets]}


def _value_counts(col: pa.ChunkedArray) -> tuple[list, list]:
    vc = pc.value_counts(col).to_pylist()
    return [v["values"] for v in vc], [v["counts"] for v in vc]


def _config_text(cfg: PredictConfig, model: str) -> str:
    import yaml

    return yaml.safe_dump({"model": os.path.abspath(model), "predict": to_dict(cfg)}, sort_keys=False)


def read_summary(out: str) -> dict:
    """The counts recorded by a finished predict run in ``out``."""
    from activessf.io.markers import read_marker

    return dict((read_marker(out) or {}).get("summary", {}))
