"""Synthetic whole slides for tests and benchmarks: mosaics of real smear fields as pyramidal TIFF.

A ``Mosaic`` lays real fields (e.g. BCCD smears) edge to edge on a grid, inside a margin of
bare glass; ``write_slide`` writes it as a tiled, JPEG-compressed pyramidal TIFF with its
resolution (microns per pixel) in the TIFF tags, one pyramid level per halving, streaming tile
by tile so that a 20,000 px slide is never built in memory. Known cell boxes of the fields map
into slide (level-0) coordinates with ``Mosaic.boxes``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Iterator

import cv2
import numpy as np


@dataclass
class Mosaic:
    """Fields on a ``cols`` x ``rows`` grid, field ``k`` at grid cell ``k`` (row-major, cycling).

    Attributes:
        fields: RGB ``[h, w, 3]`` uint8 images, all of one size.
        cols, rows: Grid size.
        margin: Glass around the grid, in level-0 pixels.
        order: Field index per grid cell (default: cycle through ``fields``).
        glass: RGB colour of the margin (and of any gap), the slide's bare glass.
    """

    fields: list[np.ndarray]
    cols: int
    rows: int
    margin: int = 0
    order: list[int] | None = None
    glass: tuple[int, int, int] = (255, 255, 255)
    _cache: dict = field(default_factory=dict, repr=False)

    @property
    def field_size(self) -> tuple[int, int]:
        h, w = self.fields[0].shape[:2]
        return w, h

    @property
    def size(self) -> tuple[int, int]:
        """Level-0 ``(width, height)``."""
        fw, fh = self.field_size
        return self.cols * fw + 2 * self.margin, self.rows * fh + 2 * self.margin

    def field_at(self, cell: int) -> int:
        return (self.order[cell] if self.order is not None else cell) % len(self.fields)

    def origin(self, cell: int) -> tuple[int, int]:
        """Level-0 top-left corner of grid cell ``cell``."""
        fw, fh = self.field_size
        return self.margin + (cell % self.cols) * fw, self.margin + (cell // self.cols) * fh

    def boxes(self, per_field: list[list[tuple[float, float, float, float]]]) -> list[tuple[int, tuple]]:
        """``(cell, (x0, y0, x1, y1))`` level-0 boxes of every cell's field's known boxes."""
        out = []
        for cell in range(self.cols * self.rows):
            ox, oy = self.origin(cell)
            for x0, y0, x1, y1 in per_field[self.field_at(cell)]:
                out.append((cell, (x0 + ox, y0 + oy, x1 + ox, y1 + oy)))
        return out

    def _scaled(self, k: int, ds: int) -> np.ndarray:
        key = (k, ds)
        if key not in self._cache:
            img = self.fields[k]
            w, h = (max(1, int(round(s / ds))) for s in self.field_size)
            self._cache[key] = img if ds == 1 else cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA)
        return self._cache[key]

    def region(self, x: int, y: int, w: int, h: int, ds: int) -> np.ndarray:
        """RGB ``[h, w, 3]`` of the slide at downsample ``ds``, top-left ``(x, y)`` in that level's pixels."""
        out = np.empty((h, w, 3), np.uint8)
        out[:] = self.glass
        fw, fh = self.field_size
        # Only the grid cells under the window (a 20k slide has over a thousand).
        c0, c1 = ((v * ds - self.margin) // fw for v in (x, x + w))
        r0, r1 = ((v * ds - self.margin) // fh for v in (y, y + h))
        for r in range(max(r0, 0), min(r1, self.rows - 1) + 1):
            for c in range(max(c0, 0), min(c1, self.cols - 1) + 1):
                cell = r * self.cols + c
                ox, oy = (int(round(v / ds)) for v in self.origin(cell))
                img = self._scaled(self.field_at(cell), ds)
                x0, y0 = max(x, ox), max(y, oy)
                x1, y1 = min(x + w, ox + img.shape[1]), min(y + h, oy + img.shape[0])
                if x1 > x0 and y1 > y0:
                    out[y0 - y:y1 - y, x0 - x:x1 - x] = img[y0 - oy:y1 - oy, x0 - ox:x1 - ox]
        return out


def _tiles(mosaic: Mosaic, ds: int, tile: int) -> Iterator[np.ndarray]:
    w, h = (max(1, math.ceil(s / ds)) for s in mosaic.size)
    for ty in range(0, h, tile):
        for tx in range(0, w, tile):
            yield mosaic.region(tx, ty, tile, tile, ds)


def write_slide(path: str, mosaic: Mosaic, mpp: float | None = 0.25, tile: int = 256, min_side: int = 256,
                quality: int = 90) -> list[tuple[int, int]]:
    """Write ``mosaic`` as a pyramidal tiled TIFF (JPEG tiles; levels halve until ``min_side``).

    Args:
        path: Output ``.tif`` path.
        mosaic: The slide content.
        mpp: Microns per level-0 pixel written as the TIFF resolution (None: none written).
        tile: TIFF tile side.
        min_side: The pyramid stops at the first level whose longer side is at most this.
        quality: JPEG quality.

    Returns:
        ``(width, height)`` of every level written, level 0 first.
    """
    import tifffile

    dims, ds = [], 1
    with tifffile.TiffWriter(path, bigtiff=True) as tw:
        while True:
            w, h = (max(1, math.ceil(s / ds)) for s in mosaic.size)
            opts = dict(tile=(tile, tile), photometric="rgb", compression="jpeg", compressionargs={"level": quality},
                        subfiletype=0 if ds == 1 else 1, dtype=np.uint8, shape=(h, w, 3))
            if mpp:
                res = 1e4 / (mpp * ds)  # pixels per centimetre
                opts.update(resolution=(res, res), resolutionunit="CENTIMETER")
            tw.write(_tiles(mosaic, ds, tile), **opts)
            dims.append((w, h))
            if max(w, h) <= min_side:
                return dims
            ds *= 2
