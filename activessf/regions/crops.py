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
        images: ``[H, W, 3]`` uint8 images of any size (each is scaled to fit ``tile`` x ``tile``;
            rows are as tall as the tallest scaled image, so wide images leave no blank band).
        captions: One short text per image.
        tile: Largest side of a cell in pixels.
        cols: Images per row.

    Returns:
        Grid ``[sum of row heights, cols * tile, 3]`` uint8.
    """
    cols = max(1, min(cols, len(images)))
    cap = 18
    scaled = []
    for img in images:
        scale = tile / max(img.shape[:2])
        scaled.append(cv2.resize(img, (max(1, int(img.shape[1] * scale)), max(1, int(img.shape[0] * scale)))))
    rows = [scaled[i : i + cols] for i in range(0, len(scaled), cols)] or [[]]
    heights = [max((im.shape[0] for im in row), default=tile) + cap for row in rows]
    sheet = np.full((sum(heights), cols * tile, 3), 255, np.uint8)
    y0 = 0
    for r, row in enumerate(rows):
        for c, small in enumerate(row):
            x0 = c * tile
            sheet[y0 : y0 + small.shape[0], x0 : x0 + small.shape[1]] = small
            text = captions[r * cols + c][:40]
            cv2.putText(sheet, text, (x0 + 3, y0 + heights[r] - 5), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1)
        y0 += heights[r]
    return sheet


def encode_image(rgb: np.ndarray, fmt: str) -> bytes:
    """PNG or JPEG bytes of an RGB image."""
    ext = ".png" if fmt == "png" else ".jpg"
    ok, buf = cv2.imencode(ext, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    if not ok:
        raise RuntimeError(f"could not encode image as {fmt}")
    return buf.tobytes()
