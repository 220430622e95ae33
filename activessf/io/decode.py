"""Decode one image file into RGB uint8 with a status, never raising on bad input.

Policy (documented in README "Inputs"):
- rejected: empty file, undecodable bytes (not an image, corrupt), truncated JPEG/PNG (missing
  end marker: OpenCV would otherwise return a half-grey image), images smaller than
  ``min_side`` on either side, images of more than ``max_pixels`` pixels (read from the header,
  before decoding: a 1.5 MB PNG can hold 20000x20000 pixels, over 15 GiB once decoded; whole
  slides belong to a tiled reader), and channel layouts other than 1, 3 or 4.
- converted (status ``ok``, the conversion named in ``reason``): grayscale -> RGB by channel
  replication; RGBA -> RGB composited over white (slides have a white background); 16-bit ->
  8-bit by scaling the full 16-bit range (``v / 257``).
"""

from __future__ import annotations

import io
import struct
import warnings
from dataclasses import dataclass

import cv2
import numpy as np

JPEG_SOI = b"\xff\xd8"
JPEG_EOI = b"\xff\xd9"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
PNG_IEND = b"IEND"
# 50 megapixels: a 7000x7000 field of view; decoded RGB plus the region filter's float copies
# stay around 2 GiB. Larger inputs are whole slides, for a tiled reader.
DEFAULT_MAX_PIXELS = 50_000_000
# JPEG start-of-frame markers (baseline, progressive, lossless...); C4, C8, CC are not frames.
_JPEG_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


@dataclass
class Decoded:
    """Result of decoding one file.

    Attributes:
        image: RGB uint8 ``[H, W, 3]`` or None when rejected.
        status: ``"ok"`` or ``"rejected"``.
        reason: Why it was rejected, or which conversion was applied; ``""`` for a clean decode.
        width, height: Original size in pixels (0 when unknown).
    """

    image: np.ndarray | None
    status: str
    reason: str
    width: int = 0
    height: int = 0


def _reject(reason: str, width: int = 0, height: int = 0) -> Decoded:
    return Decoded(None, "rejected", reason, width, height)


def truncation_reason(data: bytes) -> str:
    """A reason string if a JPEG or PNG stream lacks its end marker, else ``""``."""
    if data.startswith(JPEG_SOI):
        # Some writers pad after EOI; look for it near the end rather than exactly at the end.
        if JPEG_EOI not in data[-1024:]:
            return "truncated JPEG (no end-of-image marker)"
    elif data.startswith(PNG_MAGIC):
        if PNG_IEND not in data[-64:]:
            return "truncated PNG (no IEND chunk)"
    return ""


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    """Width and height from a JPEG's start-of-frame segment (walking the marker segments)."""
    i = 2
    while i + 9 <= len(data):
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in _JPEG_SOF:
            height, width = struct.unpack(">HH", data[i + 5 : i + 9])
            return width, height
        if marker in (0x01,) or 0xD0 <= marker <= 0xD8:  # markers without a length
            i += 2
            continue
        i += 2 + struct.unpack(">H", data[i + 2 : i + 4])[0]
    return None


def header_size(data: bytes) -> tuple[int, int] | None:
    """Width and height as the file's header states them, without decoding any pixel.

    PNG and JPEG are parsed here; other formats through Pillow's lazy ``Image.open`` (which reads
    the header only). None when the header cannot be read (the decoder then decides).
    """
    if data.startswith(PNG_MAGIC) and data[12:16] == b"IHDR":
        width, height = struct.unpack(">II", data[16:24])
        return width, height
    if data.startswith(JPEG_SOI):
        return _jpeg_size(data)
    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as im:
                return im.size
    except Image.DecompressionBombError:
        return (2**31 - 1, 1)  # beyond any cap; Pillow refuses to even state it
    except Exception:  # not an image Pillow knows: let OpenCV try and say why
        return None


def to_rgb8(raw: np.ndarray) -> tuple[np.ndarray | None, str]:
    """Convert an OpenCV-decoded array (BGR order) to RGB uint8.

    Args:
        raw: ``[H, W]`` or ``[H, W, C]`` with C in {1, 3, 4}, uint8 or uint16 (float is rejected).

    Returns:
        ``(rgb [H, W, 3] uint8 or None, reason)``.
    """
    notes = []
    if raw.dtype == np.uint16:
        raw = (raw.astype(np.float32) / 257.0 + 0.5).astype(np.uint8)
        notes.append("converted 16-bit to 8-bit")
    elif raw.dtype != np.uint8:
        return None, f"unsupported pixel type {raw.dtype}"
    if raw.ndim == 2 or (raw.ndim == 3 and raw.shape[2] == 1):
        rgb = cv2.cvtColor(raw.reshape(raw.shape[:2]), cv2.COLOR_GRAY2RGB)
        notes.append("converted grayscale to RGB")
    elif raw.ndim == 3 and raw.shape[2] == 3:
        rgb = cv2.cvtColor(raw, cv2.COLOR_BGR2RGB)
    elif raw.ndim == 3 and raw.shape[2] == 4:
        alpha = raw[:, :, 3:4].astype(np.float32) / 255.0
        bgr = raw[:, :, :3].astype(np.float32) * alpha + 255.0 * (1.0 - alpha)
        rgb = cv2.cvtColor((bgr + 0.5).astype(np.uint8), cv2.COLOR_BGR2RGB)
        notes.append("converted RGBA to RGB over white")
    else:
        return None, f"unsupported channel layout {raw.shape}"
    return rgb, "; ".join(notes)


def decode_image(data: bytes | None, min_side: int = 16, max_pixels: int = DEFAULT_MAX_PIXELS) -> Decoded:
    """Decode image bytes (any format OpenCV reads) into RGB uint8, with a status and reason.

    Args:
        data: File content, or None when the file could not be read.
        min_side: Smallest accepted width and height in pixels.
        max_pixels: Largest accepted width x height, checked on the header before decoding.

    Returns:
        A ``Decoded``; never raises for bad content.
    """
    if data is None:
        return _reject("unreadable file")
    if len(data) == 0:
        return _reject("empty file")
    truncated = truncation_reason(data)
    if truncated:
        return _reject(truncated)
    size = header_size(data)
    if size is not None and size[0] * size[1] > max_pixels:
        width, height = size
        return _reject(f"image too large ({width}x{height} = {width * height / 1e6:.0f} MP > "
                       f"{max_pixels / 1e6:g} MP max_pixels; use a tiled reader for whole slides)", width, height)
    buf = np.frombuffer(data, dtype=np.uint8)
    try:
        raw = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED | cv2.IMREAD_IGNORE_ORIENTATION)
    except cv2.error as exc:
        return _reject(f"decoder error: {str(exc).strip().splitlines()[-1][:120]}")
    if raw is None or raw.size == 0:
        return _reject("not a decodable image")
    height, width = raw.shape[:2]
    if min(height, width) < min_side:
        return _reject(f"image too small ({width}x{height} < {min_side} px)", width, height)
    rgb, reason = to_rgb8(raw)
    if rgb is None:
        return _reject(reason, width, height)
    return Decoded(rgb, "ok", reason, width, height)
