"""Per-slide and per-tile work of the region stage on whole slides. Pure Python, no Ray.

``plan_slide`` turns one slide into its tile tasks (opening the slide, reading its coarsest
level for the glass test); ``process_tiles`` reads each tile inside the map, filters it, keeps
the cells the tile owns and writes their crops. The Ray Data stage maps both; tests call them.

Rows of the plan (``TILE_SCHEMA``): one *header* per slide (``tile = -1``: status, size, tiles
to read and skipped) and one row per tile to read. ``process_tiles`` passes headers through and
turns tiles into ``RESULT_SCHEMA`` rows, each carrying the regions that tile kept.
"""

from __future__ import annotations

import traceback

import cv2
import numpy as np
import pyarrow as pa

from activessf.io import fs as afs
from activessf.io.atomic import atomic_write_bytes
from activessf.regions.config import RegionsConfig
from activessf.regions.crops import encode_image, square_crop
from activessf.regions.detect import find_regions
from activessf.regions.process import REGION_STRUCT, crop_relpath
from activessf.slides import tiling
from activessf.slides.reader import Slide, SlideError, open_slide

TILE_SCHEMA = pa.schema([
    ("image_id", pa.string()), ("source_path", pa.string()), ("label", pa.string()),
    ("tile", pa.int32()), ("status", pa.string()), ("reason", pa.string()),
    ("width", pa.int32()), ("height", pa.int32()), ("tiles_planned", pa.int32()), ("tiles_skipped", pa.int32()),
    # Tile rows: the working-frame origin, the core (half-open) and how to read it.
    ("x", pa.int64()), ("y", pa.int64()), ("w", pa.int64()), ("h", pa.int64()), ("core", pa.list_(pa.int64())),
    ("level", pa.int32()), ("level_downsample", pa.float64()), ("factor", pa.float64()),
])
RESULT_SCHEMA = pa.schema([f for f in TILE_SCHEMA if f.name in (
    "image_id", "source_path", "label", "tile", "status", "reason", "width", "height", "tiles_planned",
    "tiles_skipped")]).append(pa.field("regions", pa.list_(REGION_STRUCT)))


def _header(row: dict, status: str, reason: str, size=(0, 0), planned: int = 0, skipped: int = 0) -> dict:
    return {**{k: row.get(k) for k in ("image_id", "source_path", "label")}, "tile": -1, "status": status,
            "reason": reason[:300], "width": int(size[0]), "height": int(size[1]), "tiles_planned": planned,
            "tiles_skipped": skipped}


def _error(exc: BaseException) -> str:
    if isinstance(exc, SlideError):  # already says which reader failed and why
        return str(exc)
    return traceback.format_exception_only(type(exc), exc)[-1].strip()


def glass_test(slide: Slide, p) -> tuple[np.ndarray, float] | None:
    """Summed-area table of the stained mask of the coarsest level, and its level-0 downsample.

    None when the coarsest level is larger than ``p.mask_max_side`` (every tile is then read).
    Raises ``SlideError`` when the level cannot be read: the slide is broken.
    """
    level = len(slide.dimensions) - 1
    w, h = slide.dimensions[level]
    if max(w, h) > p.mask_max_side:
        return None
    mask = tiling.stained_mask(slide.read(0, 0, level, w, h), p.stained_od)
    return cv2.integral(mask.astype(np.uint8)), slide.downsamples[level]


def plan_slide(row: dict, cfg: RegionsConfig) -> list[dict]:
    """``TILE_SCHEMA`` rows of one slide: its header, then each tile that is not bare glass.

    Args:
        row: ``image_id``, ``source_path``, ``label``, optional ``reason`` (set: rejected unread).
        cfg: Stage config (``cfg.slides``).

    Returns:
        The header first (``rejected`` with the reason when the slide cannot be opened or its
        low-resolution level read), then the tile rows in row-major order.
    """
    p = cfg.slides
    if row.get("reason"):
        return [_header(row, "rejected", row["reason"])]
    try:
        slide = open_slide(row["source_path"])
    except SlideError as exc:
        return [_header(row, "rejected", str(exc))]
    try:
        glass = glass_test(slide, p)
        scale = tiling.choose_scale(slide.dimensions[0], slide.downsamples, slide.mpp, p.mpp, p.level)
    except Exception as exc:  # a truncated or corrupt file fails here, before any tile task
        return [_header(row, "rejected", f"slide unreadable: {_error(exc)}", slide.dimensions[0])]
    finally:
        slide.close()
    tiles, skipped = _tile_rows(row, scale, glass, p)
    return [_header(row, "ok", "", slide.dimensions[0], len(tiles), skipped), *tiles]


def _tile_rows(row: dict, scale: tiling.Scale, glass, p) -> tuple[list[dict], int]:
    """The tile rows of a slide that are not bare glass, and how many were skipped as glass."""
    xs, ys = (tiling.grid_starts(n, p.tile, p.overlap) for n in (scale.width, scale.height))
    tw, th = min(p.tile, scale.width), min(p.tile, scale.height)
    ident = {k: row.get(k) for k in ("image_id", "source_path", "label")}
    tiles, skipped = [], 0
    for j, y in enumerate(ys):
        for i, x in enumerate(xs):
            if glass is not None:
                k = scale.factor / glass[1]  # mask pixels per working pixel
                if tiling.tissue_fraction(glass[0], (x * k, y * k, (x + tw) * k, (y + th) * k)) < p.min_tissue:
                    skipped += 1
                    continue
            (cx0, cx1), (cy0, cy1) = (tiling.core_bounds(xs, i, tw, scale.width),
                                      tiling.core_bounds(ys, j, th, scale.height))
            tiles.append({**ident, "tile": j * len(xs) + i, "x": x, "y": y, "w": tw, "h": th,
                          "core": [cx0, cy0, cx1, cy1], "level": scale.level,
                          "level_downsample": scale.level_downsample, "factor": scale.factor})
    return tiles, skipped


def read_tile(slide: Slide, row: dict) -> np.ndarray:
    """The tile's ``[h, w, 3]`` RGB at the working resolution (read at its level, then resized)."""
    per_level = row["factor"] / row["level_downsample"]  # level pixels per working pixel
    w, h = row["w"], row["h"]
    lw, lh = (max(1, int(round(v * per_level))) for v in (w, h))
    rgb = slide.read(int(round(row["x"] * row["factor"])), int(round(row["y"] * row["factor"])), row["level"], lw, lh)
    if (lw, lh) != (w, h):
        rgb = cv2.resize(rgb, (w, h), interpolation=cv2.INTER_AREA)
    return rgb


def owned_cells(rgb: np.ndarray, row: dict, cfg: RegionsConfig) -> list[tuple]:
    """``(region, level-0 box [4])`` of each cell the tile owns (its box centre in the tile's core).

    Args:
        rgb: The tile, ``[h, w, 3]`` uint8 at the working resolution.
        row: Its ``TILE_SCHEMA`` row.
        cfg: Stage config (the preset).
    """
    found = find_regions(rgb, cfg)
    boxes = np.array([[r.x, r.y, r.w, r.h] for r in found], np.int64).reshape(-1, 4)
    x0, y0, x1, y1 = row["core"]
    keep = tiling.owned(boxes, (x0 - row["x"], y0 - row["y"], x1 - row["x"], y1 - row["y"]))
    level0 = tiling.to_level0(boxes, (row["x"], row["y"]), row["factor"])
    return [(found[k], level0[k]) for k in np.flatnonzero(keep)]


def tile_regions(rgb: np.ndarray, row: dict, cfg: RegionsConfig, out_dir: str) -> list[dict]:
    """Region rows the tile owns (crops written), boxes in level-0 pixels."""
    out = []
    for region, (bx, by, bw, bh) in owned_cells(rgb, row, cfg):
        region_id = f"{row['image_id']}-t{row['tile']:05d}-{len(out):03d}"
        rel = crop_relpath(region_id, cfg.crop_format)
        crop = square_crop(rgb, region, cfg.crop_margin, cfg.crop_size)
        atomic_write_bytes(afs.join(out_dir, rel), encode_image(crop, cfg.crop_format))
        out.append({"region_id": region_id, "image_id": row["image_id"], "source_path": row["source_path"],
                    "label": row.get("label"), "x": int(bx), "y": int(by), "w": int(bw), "h": int(bh),
                    "fill_rate": float(region.fill_rate), "area": int(round(region.area * row["factor"] ** 2)),
                    "kind": region.kind, "crop_path": rel})
    return out


def map_tiles(batch: pa.Table, work, schema: pa.Schema, defaults: dict | None = None) -> pa.Table:
    """Run ``work(slide, row) -> dict`` on every tile row of ``batch``; headers pass through.

    ``defaults`` fill every output row first (the values of a header or of a failed tile).

    Each slide is opened once per batch. A tile that cannot be read or filtered is a
    ``rejected`` row with its reason; the slide's other tiles go on.
    """
    rows, slides = [], {}
    try:
        for row in batch.to_pylist():
            out = {**(defaults or {}), **{k: row[k] for k in schema.names if k in row}}
            if row["tile"] >= 0:
                out.update(status="ok", reason="")
                try:
                    path = row["source_path"]
                    slide = slides.get(path) or slides.setdefault(path, open_slide(path))
                    out.update(work(slide, row))
                except Exception as exc:  # one bad tile must not stop the slide, nor the run
                    out.update(status="rejected", reason=f"tile {row['tile']}: {_error(exc)}"[:300])
            rows.append(out)
    finally:
        for slide in slides.values():
            slide.close()
    return pa.Table.from_pylist(rows, schema=schema)


def process_tiles(batch: pa.Table, cfg: RegionsConfig, out_dir: str) -> pa.Table:
    """Map of the region stage's tile tasks: ``TILE_SCHEMA`` rows -> ``RESULT_SCHEMA`` rows."""

    def work(slide: Slide, row: dict) -> dict:
        return {"regions": tile_regions(read_tile(slide, row), row, cfg, out_dir)}

    return map_tiles(batch, work, RESULT_SCHEMA, {"regions": []})
