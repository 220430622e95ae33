"""The region stage's driver side: stream processed batches into the output tables.

Whatever runs the per-image work (Ray Data on a cluster, or a plain loop in tests) hands this
module an iterator of processed batches; it writes ``manifest.parquet`` and ``regions.parquet``
atomically with flat memory, checks that counts reconcile, and draws the contact sheet.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Iterable, Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from activessf.io import fs as afs
from activessf.io.atomic import AtomicParquetWriter, atomic_write_bytes
from activessf.io.decode import decode_image
from activessf.io.schema import MANIFEST_SCHEMA, REGIONS_SCHEMA
from activessf.regions.config import RegionsConfig
from activessf.regions.crops import draw_boxes, encode_image, tile_images
from activessf.regions.process import process_batch, split_batch
from activessf.slides.collect import SlideCollector
from activessf.slides.formats import is_slide
from activessf.slides.reader import slide_thumbnail
from activessf.slides.tasks import TILE_SCHEMA, plan_slide, process_tiles


@dataclass
class RegionsSummary:
    inputs: int
    ok: int
    rejected: int
    regions: int
    images_with_regions: int

    def line(self) -> str:
        return (
            f"regions: inputs={self.inputs} = ok {self.ok} + rejected {self.rejected}; "
            f"{self.regions} regions kept from {self.images_with_regions} images"
        )


def write_stage_outputs(parts: Iterable[tuple[pa.Table, pa.Table]], out_dir: str,
                        expected_inputs: int) -> RegionsSummary:
    """Stream ``(manifest rows, region rows)`` pairs into ``manifest.parquet`` and ``regions.parquet``.

    Args:
        parts: ``MANIFEST_SCHEMA`` and ``REGIONS_SCHEMA`` tables: ``split_batch`` of a processed
            image batch, or the finished slides of a ``SlideCollector``.
        out_dir: Output folder.
        expected_inputs: Number of inputs handed to the stage; a mismatch is an error, because
            an input that left no row would be a silently dropped image.

    Returns:
        The reconciled counts.
    """
    afs.makedirs(out_dir)
    counts = {"inputs": 0, "ok": 0, "regions": 0, "with": 0}
    with AtomicParquetWriter(afs.join(out_dir, "manifest.parquet"), MANIFEST_SCHEMA) as man_w, AtomicParquetWriter(
        afs.join(out_dir, "regions.parquet"), REGIONS_SCHEMA
    ) as reg_w:
        for manifest, regions in parts:
            man_w.write(manifest)
            reg_w.write(regions)
            counts["inputs"] += manifest.num_rows
            counts["ok"] += pc.sum(pc.equal(manifest["status"], "ok")).as_py() or 0
            counts["with"] += pc.sum(pc.greater(manifest["n_regions"], 0)).as_py() or 0
            counts["regions"] += regions.num_rows
        if counts["inputs"] != expected_inputs:
            raise RuntimeError(f"region stage lost inputs: {expected_inputs} given, {counts['inputs']} written")
    return RegionsSummary(counts["inputs"], counts["ok"], counts["inputs"] - counts["ok"], counts["regions"], counts["with"])


def iter_local(inputs: pa.Table, cfg: RegionsConfig, out_dir: str) -> Iterator[tuple[pa.Table, pa.Table]]:
    """Process images in this process (no Ray): small runs and tests."""
    for start in range(0, inputs.num_rows, cfg.batch_size):
        yield split_batch(process_batch(inputs.slice(start, cfg.batch_size), cfg, out_dir))


def iter_slides_local(slides: pa.Table, cfg: RegionsConfig, out_dir: str) -> Iterator[tuple[pa.Table, pa.Table]]:
    """Tile, filter and gather whole slides in this process (no Ray): small runs and tests."""
    collector = SlideCollector(out_dir, cfg.slides.dedup_iou)
    step = cfg.slides.tiles_per_batch
    for row in slides.to_pylist():
        plan = plan_slide(row, cfg)
        for start in range(0, len(plan), step):
            chunk = pa.Table.from_pylist(plan[start:start + step], schema=TILE_SCHEMA)
            yield from collector.add(process_tiles(chunk, cfg, out_dir))
    yield from collector.close()


def split_inputs(inputs: pa.Table, cfg: RegionsConfig) -> tuple[pa.Table, pa.Table]:
    """``(images, slides)``: the inputs decoded whole, and the whole slides to tile.

    An entry rejected unread (hidden, duplicate...) stays with the images, whatever its name:
    it only becomes its rejected row.
    """
    paths, reasons = inputs.column("source_path").to_pylist(), inputs.column("reason").to_pylist()
    mask = [r is None and is_slide(p, cfg.max_pixels) for p, r in zip(paths, reasons)]
    arr = pa.array(mask, pa.bool_())
    return inputs.filter(pc.invert(arr)), inputs.filter(arr)


def write_contact_sheet(out_dir: str, cfg: RegionsConfig) -> str | None:
    """PNG of a seeded sample of ok images with their kept boxes drawn; returns its path."""
    if cfg.contact_sheet_images == 0:
        return None
    manifest = afs.read_table(afs.join(out_dir, "manifest.parquet"))
    regions = afs.read_table(afs.join(out_dir, "regions.parquet"), ["image_id", "x", "y", "w", "h"])
    ok = manifest.filter(pc.equal(manifest["status"], "ok")).to_pylist()
    if not ok:
        return None
    rng = np.random.default_rng(cfg.seed)
    picks = sorted(rng.choice(len(ok), size=min(cfg.contact_sheet_images, len(ok)), replace=False))
    boxes_by_image: dict[str, list] = {}
    for r in regions.select(["image_id", "x", "y", "w", "h"]).to_pylist():
        boxes_by_image.setdefault(r["image_id"], []).append((r["x"], r["y"], r["w"], r["h"]))
    images, captions = [], []
    for i in picks:
        row = ok[i]
        boxes = boxes_by_image.get(row["image_id"], [])
        if row.get("tiles_read") is not None:  # a whole slide: its coarsest level, boxes scaled
            shown, scale = slide_thumbnail(row["source_path"], cfg.slides.mask_max_side)
            boxes = [tuple(v / scale for v in b) for b in boxes]
        else:
            shown = decode_image(afs.read_bytes(row["source_path"]), 1).image
        if shown is None:
            continue
        images.append(draw_boxes(shown, boxes))
        name = row["source_path"].rsplit("/", 1)[-1]
        captions.append(f"{name} ({len(boxes)})")
    path = afs.join(out_dir, "contact_sheet.png")
    atomic_write_bytes(path, encode_image(tile_images(images, captions), "png"))
    return path


def write_summary(out_dir: str, summary: RegionsSummary) -> None:
    atomic_write_bytes(afs.join(out_dir, "summary.json"), json.dumps(summary.__dict__, indent=2).encode())
