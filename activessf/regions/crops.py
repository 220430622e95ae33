"""Square crops around kept regions, and the contact sheet that shows what the filter kept."""

from __future__ import annotations

import math

import cv2
import numpy as np

from activessf.regions.types import Region


def background_colour(rgb: np.ndarray) -> tuple[int, int, int]:
    """Median colour of the image border: the slide background used to pad crops."""
    border = np.concatenate([rgb[0], rgb[-1], rgb[:, 0], rgb[:, -1]], axis=0)
    return tuple(int(v) for v in np.median(border, axis=0))


def square_crop(rgb: np.ndarray, region: Region, margin: float, size: int) -> np.ndarray:
    """Cut a square around ``region``, padded with background where it leaves the image.

    Args:
        rgb: Image ``[H, W, 3]`` uint8.
        region: The box to centre on.
        margin: Side = ``max(w, h) * (1 + margin)``.
        size: Output side in pixels.

    Returns:
        Crop ``[size, size, 3]`` uint8.
    """
    side = max(1, int(math.ceil(max(region.w, region.h) * (1.0 + margin))))
    cx, cy = region.x + region.w / 2.0, region.y + region.h / 2.0
    x0, y0 = int(round(cx - side / 2.0)), int(round(cy - side / 2.0))
    h, w = rgb.shape[:2]
    pad = (max(0, -y0), max(0, y0 + side - h), max(0, -x0), max(0, x0 + side - w))
    window = rgb[max(0, y0) : min(h, y0 + side), max(0, x0) : min(w, x0 + side)]
    if any(pad):
        window = cv2.copyMakeBorder(window, *pad, cv2.BORDER_CONSTANT, value=background_colour(rgb))
    interp = cv2.INTER_AREA if side > size else cv2.INTER_LINEAR
    return cv2.resize(window, (size, size), interpolation=interp)


def draw_boxes(rgb: np.ndarray, boxes: list[tuple[int, int, int, int]]) -> np.ndarray:
    """A copy of ``rgb`` with ``(x, y, w, h)`` boxes drawn in green, line width scaled to size."""
    out = rgb.copy()
    thick = max(2, round(max(rgb.shape[:2]) / 200))
    for x, y, w, h in boxes:
        cv2.rectangle(out, (int(x), int(y)), (int(x + w - 1), int(y + h - 1)), (0, 200, 0), thick)
    return out


def tile_images(images: list[np.ndarray], captions: list[str], tile: int = 256, cols: int = 4) -> np.ndarray:
    """Tile RGB images into one grid image with a caption under each.

    Args:
        images: ``[H, W, 3]`` uint8 images of any size (each is letterboxed into ``tile``).
        captions: One short text per image.
        tile: Cell side in pixels.
        cols: Images per row.

    Returns:
        Grid ``[rows * (tile + 20), cols * tile, 3]`` uint8.
    """
    cols = max(1, min(cols, len(images)))
    rows = max(1, math.ceil(len(images) / cols))
    cap = 20
    sheet = np.full((rows * (tile + cap), cols * tile, 3), 255, np.uint8)
    for i, (img, text) in enumerate(zip(images, captions)):
        r, c = divmod(i, cols)
        scale = tile / max(img.shape[:2])
        small = cv2.resize(img, (max(1, int(img.shape[1] * scale)), max(1, int(img.shape[0] * scale))))
        y0, x0 = r * (tile + cap), c * tile
        sheet[y0 : y0 + small.shape[0], x0 : x0 + small.shape[1]] = small
        cv2.putText(sheet, text[:40], (x0 + 3, y0 + tile + 14), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1)
    return sheet


def encode_image(rgb: np.ndarray, fmt: str) -> bytes:
    """PNG or JPEG bytes of an RGB image."""
    ext = ".png" if fmt == "png" else ".jpg"
    ok, buf = cv2.imencode(ext, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    if not ok:
        raise RuntimeError(f"could not encode image as {fmt}")
    return buf.tobytes()
