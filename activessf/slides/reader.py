"""Open a whole slide with OpenSlide (the ``openslide-bin`` wheel), tiffslide as the fallback.

OpenSlide reads the vendor formats (SVS, NDPI, MRXS, SCN, BIF, VMS...) and generic tiled TIFF;
tiffslide (tifffile + zarr) reads TIFF-based slides OpenSlide refuses (a TIFF whose pyramid is
in SubIFDs, a strip-based BigTIFF) and object storage through fsspec. Either way a read returns
RGB uint8 of only the requested window, so no slide is ever held in memory whole.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from activessf.io import fs as afs


class SlideError(RuntimeError):
    """The slide cannot be opened or read; the message says why (it becomes a manifest reason)."""


@dataclass
class Slide:
    """An open slide.

    Attributes:
        handle: The OpenSlide or TiffSlide object.
        reader: ``openslide`` or ``tiffslide``.
        dimensions: ``[(width, height)]`` per pyramid level, level 0 first.
        downsamples: Level-0 pixels per pixel of each level.
        mpp: Microns per level-0 pixel (the mean of x and y), None when the slide does not say.
    """

    handle: Any
    reader: str
    dimensions: list[tuple[int, int]]
    downsamples: list[float]
    mpp: float | None

    def read(self, x: int, y: int, level: int, width: int, height: int) -> np.ndarray:
        """RGB ``[height, width, 3]`` uint8 of a window at ``level``, top-left ``(x, y)`` in level-0 pixels.

        The part outside the slide is white (glass), whatever the reader returns there.
        """
        ds = self.downsamples[level]
        lw, lh = self.dimensions[level]
        # Clip to the level first: OpenSlide gives transparent and tiffslide black pixels outside.
        lx, ly = int(round(x / ds)), int(round(y / ds))
        x0, y0 = max(lx, 0), max(ly, 0)
        x1, y1 = min(lx + width, lw), min(ly + height, lh)
        out = np.full((height, width, 3), 255, np.uint8)
        if x1 <= x0 or y1 <= y0:
            return out
        try:
            raw = np.asarray(self.handle.read_region((int(round(x0 * ds)), int(round(y0 * ds))), level,
                                                     (x1 - x0, y1 - y0)))
        except Exception as exc:  # every reader has its own error types; all mean "this window is unreadable"
            raise SlideError(f"{self.reader} could not read level {level} at ({x}, {y}): {_short(exc)}") from exc
        out[y0 - ly:y1 - ly, x0 - lx:x1 - lx] = to_rgb(raw)
        return out

    def close(self) -> None:
        try:
            self.handle.close()
        except Exception:  # closing a half-broken slide must not mask the real error
            pass


def to_rgb(raw: np.ndarray) -> np.ndarray:
    """``[H, W, 3|4]`` uint8 -> RGB; RGBA (OpenSlide's output, transparent where nothing was
    scanned) is put over white, the colour of glass."""
    if raw.ndim == 3 and raw.shape[2] == 4:
        alpha = raw[:, :, 3:4].astype(np.float32) / 255.0
        rgb = raw[:, :, :3].astype(np.float32) * alpha + 255.0 * (1.0 - alpha)
        return (rgb + 0.5).astype(np.uint8)
    if raw.ndim == 2:
        return np.repeat(raw[:, :, None], 3, axis=2).astype(np.uint8)
    return np.ascontiguousarray(raw[:, :, :3]).astype(np.uint8)


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[-1] if text else ''}"[:200]


def _mpp(props: Any, prefix: str) -> float | None:
    values = []
    for axis in ("x", "y"):
        try:
            v = float(props.get(f"{prefix}.mpp-{axis}"))
        except (TypeError, ValueError):
            continue
        if np.isfinite(v) and v > 0:
            values.append(v)
    return float(np.mean(values)) if values else None


def _open_openslide(path: str) -> Slide:
    import openslide

    h = openslide.OpenSlide(path)
    return Slide(h, "openslide", [tuple(d) for d in h.level_dimensions], [float(d) for d in h.level_downsamples],
                 _mpp(h.properties, "openslide"))


def _open_tiffslide(path: str) -> Slide:
    import tiffslide

    h = tiffslide.TiffSlide(path)
    return Slide(h, "tiffslide", [tuple(d) for d in h.level_dimensions], [float(d) for d in h.level_downsamples],
                 _mpp(h.properties, "tiffslide"))


def open_slide(path: str) -> Slide:
    """Open ``path`` with OpenSlide, else tiffslide; raise ``SlideError`` naming both failures.

    Object-storage URIs go to tiffslide (OpenSlide reads local files only).
    """
    openers = [("tiffslide", _open_tiffslide)] if afs.is_remote(path) else [
        ("openslide", _open_openslide), ("tiffslide", _open_tiffslide)]
    errors = []
    for name, opener in openers:
        try:
            slide = opener(path)
        except Exception as exc:  # unsupported format, corrupt header, missing file...
            errors.append(f"{name}: {_short(exc)}")
            continue
        if not slide.dimensions or min(slide.dimensions[0]) < 1:
            slide.close()
            errors.append(f"{name}: no image in the file")
            continue
        return slide
    raise SlideError("not a readable slide (" + "; ".join(errors) + ")")


def slide_thumbnail(path: str, max_side: int) -> tuple[np.ndarray | None, float]:
    """The coarsest level of a slide as RGB and its level-0 downsample; None when it is larger
    than ``max_side`` or unreadable (a picture for a contact sheet, never worth failing a run)."""
    try:
        slide = open_slide(path)
    except SlideError:
        return None, 1.0
    try:
        level = len(slide.dimensions) - 1
        w, h = slide.dimensions[level]
        if max(w, h) > max_side:
            return None, 1.0
        return slide.read(0, 0, level, w, h), slide.downsamples[level]
    except SlideError:
        return None, 1.0
    finally:
        slide.close()
