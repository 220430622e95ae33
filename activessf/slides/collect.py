"""The driver side of slides: gather each slide's tile results into its manifest row and regions.

Tile results of many slides arrive interleaved and in any order. A slide is finished once its
header and every tile it planned are in; then boxes that two tiles both kept are dropped (the
safety net of ``tiling.duplicates``, their crops deleted) and the slide's manifest row and region
rows are handed on. Memory holds only the unfinished slides' region rows, never pixels.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator

import numpy as np
import pyarrow as pa

from activessf.io import fs as afs
from activessf.io.schema import MANIFEST_SCHEMA, REGIONS_SCHEMA
from activessf.slides import tiling


@dataclass
class Gathered:
    """One slide's rows so far: its header (None until it arrives), and its tile rows."""

    header: dict | None = None
    tiles_done: int = 0
    failed: list[str] = field(default_factory=list)
    rows: list[dict] = field(default_factory=list)


class TileGather:
    """Groups tile result rows (any schema with ``image_id``, ``tile``, ``status``, ``reason``)
    by slide; a slide is finished once its header and its ``tiles_planned`` tiles are in."""

    def __init__(self) -> None:
        self.pending: dict[str, Gathered] = {}

    def add(self, rows: list[dict]) -> list[Gathered]:
        """Take rows; return the slides they finished (removed from ``pending``)."""
        finished = []
        for row in rows:
            g = self.pending.setdefault(row["image_id"], Gathered())
            if row["tile"] < 0:
                g.header = row
            else:
                g.tiles_done += 1
                if row["status"] != "ok":
                    g.failed.append(row["reason"])
                g.rows.append(row)
            if g.header is not None and g.tiles_done == g.header["tiles_planned"]:
                # Tiles in plan order, whatever order Ray finished them in: a slide's cells, their
                # region ids and which of two duplicates is kept are then the same on every run.
                g.rows.sort(key=lambda r: r["tile"])
                finished.append(self.pending.pop(row["image_id"]))
        return finished


class SlideCollector:
    """Accumulates ``RESULT_SCHEMA`` batches; yields ``(manifest, regions)`` tables of finished slides.

    Args:
        out_dir: Stage output folder (crops of dropped duplicates are removed from it).
        dedup_iou: See ``SlideParams.dedup_iou``.
    """

    def __init__(self, out_dir: str, dedup_iou: float) -> None:
        self.out_dir, self.dedup_iou = out_dir, dedup_iou
        self.gather = TileGather()
        self.duplicates_dropped = 0

    def add(self, batch: pa.Table) -> Iterator[tuple[pa.Table, pa.Table]]:
        """Take one batch of results; yield the tables of the slides it finished."""
        finished = self.gather.add(batch.to_pylist())
        if finished:
            yield self._finish(finished)

    def close(self) -> Iterator[tuple[pa.Table, pa.Table]]:
        """Slides still unfinished when the stream ended (a lost tile): rejected rows, no regions."""
        left = [self.gather.pending.pop(i) for i in sorted(self.gather.pending)]
        for g in left:
            if g.header is None:
                raise RuntimeError(f"slide {g.rows[0]['source_path']}: tiles without a header")
            g.failed.append(f"{g.header['tiles_planned'] - g.tiles_done} tiles never returned")
            g.tiles_done = g.header["tiles_planned"]
            self._remove_crops([r for t in g.rows for r in t["regions"] or []])
            g.rows = []
        if left:
            yield self._finish(left)

    def _finish(self, slides: list[Gathered]) -> tuple[pa.Table, pa.Table]:
        manifest, regions = [], []
        for g in slides:
            kept = self._dedup(g)
            manifest.append(manifest_row(g.header, g.tiles_done, g.failed, len(kept)))
            regions.extend(kept)
        return (pa.Table.from_pylist(manifest, schema=MANIFEST_SCHEMA),
                pa.Table.from_pylist(regions, schema=REGIONS_SCHEMA))

    def _dedup(self, g: Gathered) -> list[dict]:
        regions = [r for t in g.rows for r in t["regions"] or []]
        if not regions:
            return []
        tiles = np.array([t["tile"] for t in g.rows for _ in t["regions"] or []])
        boxes = np.array([[r["x"], r["y"], r["w"], r["h"]] for r in regions], np.int64)
        drop = tiling.duplicates(boxes, tiles, self.dedup_iou)
        self.duplicates_dropped += int(drop.sum())
        self._remove_crops([r for r, d in zip(regions, drop) if d])
        return [r for r, d in zip(regions, drop) if not d]

    def _remove_crops(self, regions: list[dict]) -> None:
        for r in regions:
            fs, path = afs.resolve(afs.join(self.out_dir, r["crop_path"]))
            fs.delete_file(path)


def manifest_row(header: dict, tiles_done: int, failed: list[str], n_regions: int) -> dict:
    """A slide's manifest row: rejected when it could not be opened or no tile could be read."""
    status, reason = header["status"], header["reason"] or ""
    read = tiles_done - len(failed)
    if status == "ok" and failed:
        note = f"{len(failed)} of {tiles_done} tiles unreadable (first: {failed[0]})"
        status, reason = ("rejected", note) if read == 0 else ("ok", note)
    return {"image_id": header["image_id"], "source_path": header["source_path"], "label": header["label"],
            "status": status, "reason": reason[:300], "width": header["width"], "height": header["height"],
            "n_regions": n_regions, "tiles_read": read, "tiles_skipped": header["tiles_skipped"]}
