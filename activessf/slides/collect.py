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
class _Pending:
    header: dict | None = None
    tiles_done: int = 0
    failed: list[str] = field(default_factory=list)
    regions: list[dict] = field(default_factory=list)
    tiles: list[int] = field(default_factory=list)


class SlideCollector:
    """Accumulates ``RESULT_SCHEMA`` batches; yields ``(manifest, regions)`` tables of finished slides.

    Args:
        out_dir: Stage output folder (crops of dropped duplicates are removed from it).
        dedup_iou: See ``SlideParams.dedup_iou``.
    """

    def __init__(self, out_dir: str, dedup_iou: float) -> None:
        self.out_dir, self.dedup_iou = out_dir, dedup_iou
        self.pending: dict[str, _Pending] = {}
        self.duplicates_dropped = 0

    def add(self, batch: pa.Table) -> Iterator[tuple[pa.Table, pa.Table]]:
        """Take one batch of results; yield the tables of the slides it finished."""
        finished = []
        for row in batch.to_pylist():
            p = self.pending.setdefault(row["image_id"], _Pending())
            if row["tile"] < 0:
                p.header = row
            else:
                p.tiles_done += 1
                if row["status"] != "ok":
                    p.failed.append(row["reason"])
                p.regions.extend(row["regions"])
                p.tiles.extend([row["tile"]] * len(row["regions"]))
            if p.header is not None and p.tiles_done == p.header["tiles_planned"]:
                finished.append(row["image_id"])
        if finished:
            yield self._finish([self.pending.pop(i) for i in finished])

    def close(self) -> Iterator[tuple[pa.Table, pa.Table]]:
        """Slides still unfinished when the stream ended (a lost tile): rejected rows, no regions."""
        left = [self.pending.pop(i) for i in sorted(self.pending)]
        for p in left:
            if p.header is None:
                raise RuntimeError(f"slide {p.regions[0]['source_path'] if p.regions else '?'}: tiles without a header")
            p.failed.append(f"{p.header['tiles_planned'] - p.tiles_done} tiles never returned")
            p.tiles_done = p.header["tiles_planned"]
            self._remove_crops(p.regions)
            p.regions, p.tiles = [], []
        if left:
            yield self._finish(left)

    def _finish(self, slides: list[_Pending]) -> tuple[pa.Table, pa.Table]:
        manifest, regions = [], []
        for p in slides:
            kept = self._dedup(p)
            manifest.append(manifest_row(p.header, p.tiles_done, p.failed, len(kept)))
            regions.extend(kept)
        return (pa.Table.from_pylist(manifest, schema=MANIFEST_SCHEMA),
                pa.Table.from_pylist(regions, schema=REGIONS_SCHEMA))

    def _dedup(self, p: _Pending) -> list[dict]:
        if not p.regions:
            return []
        boxes = np.array([[r["x"], r["y"], r["w"], r["h"]] for r in p.regions], np.int64)
        drop = tiling.duplicates(boxes, np.array(p.tiles), self.dedup_iou)
        self.duplicates_dropped += int(drop.sum())
        self._remove_crops([r for r, d in zip(p.regions, drop) if d])
        return [r for r, d in zip(p.regions, drop) if not d]

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
