"""Tiling math of whole slides: working resolution, the tile grid, who owns a cell, de-duplication.

Pure numpy. Coordinates are named by their frame: *level-0* (the slide's full-resolution pixels,
what ``regions.parquet`` stores), *working* (the resolution the region filter sees: the target
microns per pixel, or a pyramid level) and *tile* (working pixels from a tile's top-left corner).

A tile is ``tile`` working pixels square (less along an axis shorter than that) and its
neighbours overlap it by at least ``overlap``. Each tile owns a *core*: the grid cut halfway
through every overlap, so the cores partition the slide. A
cell is kept by the tile whose core holds its box centre; any cell at most ``overlap`` wide whose
centre is in a core lies whole inside that tile (its centre is at least ``overlap / 2`` from every
inner edge), so a cell cut by one tile's border is found whole by its owner and kept once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Scale:
    """How working pixels map onto a slide.

    Attributes:
        level: Pyramid level read (the finest one no finer than needed).
        level_downsample: Level-0 pixels per pixel of ``level``.
        factor: Level-0 pixels per working pixel (>= ``level_downsample``).
        width, height: Slide size in working pixels.
    """

    level: int
    level_downsample: float
    factor: float
    width: int
    height: int


def choose_scale(level0: tuple[int, int], downsamples: list[float], mpp: float | None,
                 target_mpp: float | None, level: int) -> Scale:
    """The working resolution: ``target_mpp`` when the slide records its mpp, else pyramid ``level``.

    Args:
        level0: Slide ``(width, height)`` at level 0.
        downsamples: Level-0 pixels per pixel of each pyramid level, ``[L]``, level 0 first.
        mpp: The slide's microns per level-0 pixel, or None when it does not record it.
        target_mpp: Wanted microns per working pixel, or None to use ``level``.
        level: Pyramid level used without an mpp (clamped to the deepest level the slide has).

    Returns:
        The level to read and the level-0 pixels per working pixel.
    """
    if mpp and target_mpp:
        factor = max(target_mpp / mpp, 1.0)  # never upsample: finer than level 0 adds no detail
        # The coarsest level still at least as fine as the target: fewest pixels read.
        chosen = max((i for i, d in enumerate(downsamples) if d <= factor * 1.001), default=0)
    else:
        chosen = min(max(level, 0), len(downsamples) - 1)
        factor = float(downsamples[chosen])
    w, h = (max(1, int(math.ceil(s / factor))) for s in level0)
    return Scale(chosen, float(downsamples[chosen]), factor, w, h)


def grid_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Tile start offsets along one axis (working pixels), every tile inside ``[0, length)``.

    As few tiles as a stride of ``tile - overlap`` needs, spread evenly from 0 to
    ``length - tile``: neighbours overlap by at least ``overlap`` and no tile runs past the
    slide (padding would put a colour in the tile that the slide does not have). An axis no
    longer than ``tile`` is one tile of ``length``.
    """
    if length <= tile:
        return [0]
    n = int(math.ceil((length - overlap) / (tile - overlap)))
    return [int(round(i * (length - tile) / (n - 1))) for i in range(n)]


def core_bounds(starts: list[int], i: int, tile: int, length: int) -> tuple[int, int]:
    """Half-open core ``[lo, hi)`` of tile ``i`` along one axis, in working pixels.

    Each core boundary is the middle of the overlap of two neighbours; the first core starts at
    0 and the last ends at ``length``, so the cores of an axis partition ``[0, length)`` and every
    inner core edge is at least ``overlap / 2`` inside its tile.

    Args:
        starts: ``grid_starts`` of the axis.
        i: Tile index along the axis.
        tile: Tile extent along the axis (``min(tile, length)``).
        length: Axis length.
    """
    lo = 0 if i == 0 else (starts[i - 1] + tile + starts[i]) // 2
    hi = length if i == len(starts) - 1 else (starts[i] + tile + starts[i + 1]) // 2
    return lo, hi


def owned(boxes: np.ndarray, core: tuple[int, int, int, int]) -> np.ndarray:
    """Which boxes a tile keeps: those whose centre lies in its core.

    Args:
        boxes: ``[N, 4]`` ``x, y, w, h`` in the same frame as ``core``.
        core: ``(x0, y0, x1, y1)`` half-open.

    Returns:
        ``[N]`` bool.
    """
    b = np.asarray(boxes, np.float64).reshape(-1, 4)
    cx, cy = b[:, 0] + b[:, 2] / 2.0, b[:, 1] + b[:, 3] / 2.0
    x0, y0, x1, y1 = core
    return (cx >= x0) & (cx < x1) & (cy >= y0) & (cy < y1)


def to_level0(boxes: np.ndarray, origin: tuple[int, int], factor: float) -> np.ndarray:
    """Tile-frame boxes ``[N, 4]`` -> level-0 ``x, y, w, h`` int32, ``origin`` the tile's working offset."""
    b = np.asarray(boxes, np.float64).reshape(-1, 4)
    x0 = np.floor((b[:, 0] + origin[0]) * factor)
    y0 = np.floor((b[:, 1] + origin[1]) * factor)
    x1 = np.ceil((b[:, 0] + b[:, 2] + origin[0]) * factor)
    y1 = np.ceil((b[:, 1] + b[:, 3] + origin[1]) * factor)
    return np.stack([x0, y0, x1 - x0, y1 - y0], axis=1).astype(np.int32)


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box of ``a`` ``[N, 4]`` with every box of ``b`` ``[M, 4]`` (``x, y, w, h``) -> ``[N, M]``."""
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    ix = np.clip(np.minimum(a[:, None, 0] + a[:, None, 2], b[None, :, 0] + b[None, :, 2])
                 - np.maximum(a[:, None, 0], b[None, :, 0]), 0, None)
    iy = np.clip(np.minimum(a[:, None, 1] + a[:, None, 3], b[None, :, 1] + b[None, :, 3])
                 - np.maximum(a[:, None, 1], b[None, :, 1]), 0, None)
    inter = ix * iy
    union = (a[:, 2] * a[:, 3])[:, None] + (b[:, 2] * b[:, 3])[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def duplicates(boxes: np.ndarray, tiles: np.ndarray, iou: float) -> np.ndarray:
    """Boxes that repeat a cell another tile already kept (level-0 frame): the safety net.

    Ownership by core keeps each cell once when both tiles see it alike; where the filter draws
    a border cell's box slightly differently in two tiles, both centres can land in their own
    tile's core. Of a pair from different tiles overlapping by ``iou`` or more, the box of the
    lower tile index stays.

    Args:
        boxes: ``[N, 4]`` level-0 ``x, y, w, h`` of one slide.
        tiles: ``[N]`` tile index of each box.
        iou: Overlap at or above which two boxes are one cell.

    Returns:
        ``[N]`` bool, True for the boxes to drop.
    """
    boxes = np.asarray(boxes, np.int64).reshape(-1, 4)
    tiles = np.asarray(tiles).reshape(-1)
    drop = np.zeros(len(boxes), bool)
    if len(boxes) < 2:
        return drop
    # Only nearby boxes can overlap: bucket by a grid as coarse as the largest box and compare
    # each box with the 3x3 buckets around its own (linear in the cells of a slide, not square).
    cell = max(1, int(boxes[:, 2:].max()))
    keys = [(int(x) // cell, int(y) // cell) for x, y in boxes[:, :2]]
    buckets: dict[tuple[int, int], list[int]] = {}
    for i, k in enumerate(keys):
        buckets.setdefault(k, []).append(i)
    for i in np.lexsort((np.arange(len(tiles)), tiles)):  # lower tile index first: it stays
        if drop[i]:
            continue
        gx, gy = keys[i]
        near = np.array([j for dx in (-1, 0, 1) for dy in (-1, 0, 1) for j in buckets.get((gx + dx, gy + dy), ())
                         if tiles[j] != tiles[i] and not drop[j]], np.int64)
        if len(near):
            drop[near[box_iou(boxes[i], boxes[near])[0] >= iou]] = True
    return drop


def stained_mask(rgb: np.ndarray, stained_od: float) -> np.ndarray:
    """``[H, W]`` bool: pixels whose densest channel's optical density reaches ``stained_od``.

    Glass transmits nearly all light in every channel; any dye (red cells included) absorbs
    in at least one, so the densest channel separates the two whatever the stain's colour.
    """
    darkest = np.asarray(rgb, np.uint8).min(axis=2)
    # OD = -log10(I / 255) >= t  <=>  I <= 255 * 10^-t: one comparison per pixel.
    return darkest <= 255.0 * 10.0 ** (-stained_od)


def tissue_fraction(integral: np.ndarray, box: tuple[float, float, float, float]) -> float:
    """Share of stained pixels inside ``box`` ``(x0, y0, x1, y1)`` of a mask (its summed-area table).

    Args:
        integral: ``cv2.integral``-style table ``[H + 1, W + 1]`` of the stained mask.
        box: Window in mask pixels; the part outside the mask counts as glass.
    """
    h, w = integral.shape[0] - 1, integral.shape[1] - 1
    x0, y0, x1, y1 = box
    area = max((x1 - x0) * (y1 - y0), 1e-9)
    cx0, cy0 = int(np.clip(np.floor(x0), 0, w)), int(np.clip(np.floor(y0), 0, h))
    cx1, cy1 = int(np.clip(np.ceil(x1), 0, w)), int(np.clip(np.ceil(y1), 0, h))
    inside = integral[cy1, cx1] - integral[cy0, cx1] - integral[cy1, cx0] + integral[cy0, cx0]
    return float(inside) / area
