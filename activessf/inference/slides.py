"""``activessf predict`` on whole slides (no Ray): cut each tile's owned cells, merge them per slide.

The slide is planned into tiles exactly as the region stage does (``plan_slide``, with the
bundle's region config); ``cut_tiles`` turns each tile into a ``CUT_SCHEMA`` row of the cells it
owns (boxes in level-0 pixels, crops cut at the working resolution as training crops were), so
the classifier actors take tiles like images. ``SlideMerger`` then joins a slide's tiles into the
one row per input that the part files, the manifest and the summary expect.
"""

from __future__ import annotations

from typing import Any, Iterator

import numpy as np
import pyarrow as pa

from activessf.config import from_dict
from activessf.inference.batches import CUT_SCHEMA, PROBS_FIELD
from activessf.inference.bundle import read_meta
from activessf.pretrain.images import resize_square
from activessf.regions.config import RegionsConfig
from activessf.regions.crops import square_crop
from activessf.slides import tiling
from activessf.slides.collect import Gathered, TileGather, manifest_row
from activessf.slides.reader import Slide
from activessf.slides.tasks import TILE_SCHEMA, map_tiles, owned_cells, plan_slide, read_tile

TILE_FIELDS = [f for f in TILE_SCHEMA if f.name in ("tile", "tiles_planned", "tiles_skipped")]
SLIDE_CUT_SCHEMA = pa.schema([*CUT_SCHEMA, *TILE_FIELDS])
EMPTY = {"n_cells": 0, "boxes": [], "kinds": [], "crops": b"", "width": 0, "height": 0}


def plan_slides(batch: pa.Table, regions: dict[str, Any], mode: str) -> pa.Table:
    """Map of the planning tasks: slide input rows -> ``TILE_SCHEMA`` rows (header + tiles each)."""
    from activessf.config import from_dict

    cfg = from_dict(RegionsConfig, regions)
    rows = []
    for r in batch.to_pylist():
        if mode == "crops" and not r.get("reason"):  # a slide is never one cell crop
            r = {**r, "reason": "a whole slide needs mode 'cells' (mode 'crops' classifies each image whole)"}
        rows.extend(plan_slide(r, cfg))
    return pa.Table.from_pylist(rows, schema=TILE_SCHEMA)


def cut_tiles(batch: pa.Table, regions: dict[str, Any], size: int) -> pa.Table:
    """Map of the cutting tasks: ``TILE_SCHEMA`` rows -> ``SLIDE_CUT_SCHEMA`` (tiles carry their cells)."""
    from activessf.config import from_dict

    cfg = from_dict(RegionsConfig, regions)

    def work(slide: Slide, row: dict) -> dict:
        rgb = read_tile(slide, row)
        cells = owned_cells(rgb, row, cfg)
        crops = np.zeros((len(cells), size, size, 3), np.uint8)
        for k, (region, _) in enumerate(cells):
            crops[k] = resize_square(square_crop(rgb, region, cfg.crop_margin, cfg.crop_size), size)
        boxes = np.array([b for _, b in cells], np.int32).reshape(-1, 4)
        return {"n_cells": len(cells), "boxes": boxes.reshape(-1).tolist(), "kinds": [r.kind for r, _ in cells],
                "crops": crops.tobytes()}

    return map_tiles(batch, work, SLIDE_CUT_SCHEMA, EMPTY)


class SlideMerger:
    """Classified tile rows in, one row per finished slide out (``CUT_SCHEMA`` less crops, plus probs).

    Args:
        n_classes: Length of each cell's probability vector.
        dedup_iou: Boxes of two tiles overlapping this much are one cell (``tiling.duplicates``).
    """

    def __init__(self, n_classes: int, dedup_iou: float) -> None:
        self.k, self.iou = n_classes, dedup_iou
        self.gather = TileGather()

    def add(self, batch: pa.Table) -> Iterator[pa.Table]:
        """Take classified tile rows (crops already dropped); yield a table of the slides they finished."""
        done = self.gather.add(batch.drop_columns([c for c in ("crops",) if c in batch.column_names]).to_pylist())
        if done:
            yield pa.Table.from_pylist([self._row(g) for g in done], schema=self.schema())

    def close(self) -> None:
        """Every slide must have finished: a lost tile is an error, not a silently short slide."""
        if self.gather.pending:
            raise RuntimeError(f"predict lost tiles of {len(self.gather.pending)} slides: "
                               f"{sorted(self.gather.pending)[:3]}")

    def schema(self) -> pa.Schema:
        return pa.schema([f for f in CUT_SCHEMA if f.name != "crops"]).append(PROBS_FIELD)

    def _row(self, g: Gathered) -> dict:
        n = [t["n_cells"] for t in g.rows]
        boxes = np.asarray([v for t in g.rows for v in t["boxes"]], np.int64).reshape(-1, 4)
        probs = np.asarray([v for t in g.rows for v in t["probs"] or []], np.float32).reshape(-1, self.k)
        kinds = [k for t in g.rows for k in t["kinds"]]
        keep = ~tiling.duplicates(boxes, np.repeat([t["tile"] for t in g.rows], n), self.iou)
        m = manifest_row(g.header, g.tiles_done, g.failed, int(keep.sum()))
        return {**{k: m[k] for k in ("image_id", "source_path", "label", "status", "reason", "width", "height")},
                "n_cells": m["n_regions"], "boxes": boxes[keep].reshape(-1).tolist(),
                "kinds": [k for k, ok in zip(kinds, keep) if ok], "probs": probs[keep].reshape(-1).tolist()}


def slide_merger(folder: str, regions: dict[str, Any]) -> SlideMerger:
    """A merger for the bundle in ``folder``: its classes, its region config's tile de-duplication."""
    return SlideMerger(len(read_meta(folder)["classes"]), from_dict(RegionsConfig, regions).slides.dedup_iou)


def slide_window(path: str, box: tuple[int, int, int, int], margin: float) -> tuple[np.ndarray, tuple] | None:
    """Level-0 RGB around a cell's box (room for the square crop) and the box within it; None
    when the slide cannot be read (the sheet then leaves the cell out)."""
    from activessf.slides.reader import SlideError, open_slide

    x, y, w, h = (int(v) for v in box)
    pad = int(max(w, h) * (1 + margin) / 2) + 1
    try:
        slide = open_slide(path)
    except SlideError:
        return None
    try:
        rgb = slide.read(x - pad, y - pad, 0, w + 2 * pad, h + 2 * pad)
    except SlideError:
        return None
    finally:
        slide.close()
    return rgb, (pad, pad, w, h)
