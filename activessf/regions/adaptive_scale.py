"""Scale of one smear for the ``default`` CRF preset: the red-cell diameter ``d``.

Red cells are the one population every smear has, with a size fixed by biology (about 7.5 um),
so measuring them gives the image's magnification. Measured two ways on a shrunk, hole-filled
red-cell mask: the granulometric mode (the disk radius whose openings remove the most area,
robust to touching cells) and, where enough lie alone, the median size of whole isolated red
cells (which measures red cells only). Morphology runs through distance transforms, so its cost
does not grow with the radius.
"""

from __future__ import annotations

import functools

import cv2
import numpy as np

from activessf.regions.config import DefaultCRFParams


def disk(radius: float) -> np.ndarray:
    """Elliptic structuring element of the given radius (at least 3x3)."""
    r = max(1, round(radius))
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))


def within(mask: np.ndarray, radius: float) -> np.ndarray:
    """Dilation by a Euclidean disk, via a distance transform (cost independent of the radius).

    Args:
        mask: ``[H, W]`` bool or uint8.
        radius: Disk radius in pixels.

    Returns:
        ``[H, W]`` bool, the pixels within ``radius`` of ``mask``.
    """
    if not np.any(mask):
        return np.zeros(mask.shape, bool)
    outside = (np.asarray(mask) == 0).astype(np.uint8)
    return cv2.distanceTransform(outside, cv2.DIST_L2, cv2.DIST_MASK_5) <= radius


def beyond(mask: np.ndarray, radius: float) -> np.ndarray:
    """Erosion by a Euclidean disk: the mask pixels farther than ``radius`` from its outside.

    Args:
        mask: ``[H, W]`` bool or uint8.
        radius: Disk radius in pixels.

    Returns:
        ``[H, W]`` bool.
    """
    inside = (np.asarray(mask) != 0).astype(np.uint8)
    return cv2.distanceTransform(inside, cv2.DIST_L2, cv2.DIST_MASK_5) > radius


@functools.lru_cache(maxsize=512)
def euclidean_disk(radius: float) -> np.ndarray:
    """The pixels within ``radius`` of the centre, ``[2R+1, 2R+1]`` uint8 with ``R = floor(radius)``.

    Cached: the granulometry asks for the same radii on every image of a size. Read-only.
    """
    r = int(np.floor(radius))
    y, x = np.mgrid[-r : r + 1, -r : r + 1]
    kernel = (x * x + y * y <= radius * radius).astype(np.uint8)
    kernel.flags.writeable = False
    return kernel


def opening_areas(mask: np.ndarray, radii: np.ndarray, max_kernel: int = 200) -> np.ndarray:
    """Area left after opening ``mask`` by a Euclidean disk of each radius.

    Opening by a disk of radius r = the points within r of a pixel whose distance to the
    background exceeds r (the "core", from one exact distance transform). Only the core's box
    grown by r can hold them. Small radii: a dilation of the core by the exact disk (its cost
    grows with the disk's pixels). Larger radii: a 5x5 chamfer distance transform from the
    core (fixed cost per pixel; within ~2% of Euclidean, Borgefors 1986, far below the ~15%
    between successive radii of the granulometry).

    Args:
        mask: ``[H, W]`` uint8, nonzero = object.
        radii: ``[R]`` radii in pixels.
        max_kernel: Largest disk (in pixels of its bounding square x 0.8) dilated exactly.

    Returns:
        ``[R]`` float64 object areas in pixels.
    """
    inside = cv2.distanceTransform(mask, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    h, w = mask.shape
    areas = np.zeros(len(radii))
    for i, r in enumerate(radii):
        core = cv2.compare(inside, float(r), cv2.CMP_GT)  # 255 on the core
        x, y, cw, ch = cv2.boundingRect(core)
        if cw == 0:
            break
        m = int(1.03 * r) + 2  # the chamfer distance may read up to ~2% short
        x0, y0, x1, y1 = max(0, x - m), max(0, y - m), min(w, x + cw + m), min(h, y + ch + m)
        box = core[y0:y1, x0:x1]
        if (2 * r + 1) ** 2 * 0.8 <= max_kernel:  # a disk fills ~pi/4 of its square
            kernel = euclidean_disk(float(r))
            areas[i] = cv2.countNonZero(cv2.dilate(box, kernel, borderType=cv2.BORDER_CONSTANT, borderValue=0))
        else:
            to_core = cv2.distanceTransform(cv2.bitwise_not(box), cv2.DIST_L2, cv2.DIST_MASK_5)
            areas[i] = cv2.countNonZero(cv2.compare(to_core, float(r), cv2.CMP_LE))
    return areas


def shrink(mask: np.ndarray, params: DefaultCRFParams) -> tuple[np.ndarray, float]:
    """``mask`` resized to about ``params.scale_pixels`` pixels (never enlarged), and the factor.

    ``mask`` is ``[H, W]`` or ``[H, W, C]`` (C masks shrunk in one pass); the result is bool.
    """
    h, w = mask.shape[:2]
    f = max(1.0, float(np.sqrt(h * w / params.scale_pixels)))
    size = (max(1, round(w / f)), max(1, round(h / f)))
    return cv2.resize(mask.astype(np.float32), size, interpolation=cv2.INTER_AREA) > 0.5, f


def fill_cells(mask: np.ndarray) -> np.ndarray:
    """Close gaps of a few pixels, then fill holes: a red cell's pale centre becomes part of it.

    Used on shrunk masks only, where a pixel is a fixed fraction of the field, not of a cell.

    Args:
        mask: ``[H, W]`` bool.

    Returns:
        ``[H, W]`` uint8.
    """
    # The pale centre often leaks out through a gap in the rim, and an open ring is not filled.
    closed = cv2.morphologyEx(mask.astype(np.uint8), cv2.MORPH_CLOSE, disk(2))
    return fill_holes(closed)


def fill_holes(mask: np.ndarray) -> np.ndarray:
    """``mask`` with its holes filled (as ``ndimage.binary_fill_holes``, at flood-fill speed).

    A hole is background not 4-connected to the image border: the background is flooded from
    a one-pixel frame, and what the flood leaves unreached is object or hole.

    Args:
        mask: ``[H, W]`` bool or uint8.

    Returns:
        ``[H, W]`` uint8, 1 on the object and its holes.
    """
    framed = cv2.copyMakeBorder((np.asarray(mask) != 0).view(np.uint8), 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=0)
    cv2.floodFill(framed, None, (0, 0), 2, flags=4)
    return (framed[1:-1, 1:-1] != 2).view(np.uint8)


def isolated_diameters(red: np.ndarray, stain: np.ndarray, min_solidity: float) -> np.ndarray:
    """Equivalent diameters of the objects that look like one whole red cell.

    Whole means: convex (solidity at least ``min_solidity``, so no clump of overlapping cells),
    not cut by the image border, holding no nuclear stain.

    Args:
        red: ``[H, W]`` uint8 filled red-cell mask.
        stain: ``[H, W]`` bool nuclear-stain mask, same size.
        min_solidity: Area over convex-hull area needed.

    Returns:
        ``[N]`` diameters in pixels of ``red``.
    """
    h, w = red.shape
    contours, _ = cv2.findContours(red, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    out = []
    for c in contours:
        x, y, cw, ch = cv2.boundingRect(c)
        area = cv2.contourArea(c)
        # Objects of a few pixels are noise at the shrunk resolution.
        if x == 0 or y == 0 or x + cw >= w or y + ch >= h or area < 16:
            continue
        if area < min_solidity * cv2.contourArea(cv2.convexHull(c)):
            continue
        box = np.zeros((ch, cw), np.uint8)
        cv2.drawContours(box, [c - [x, y]], -1, 1, -1)
        if (stain[y : y + ch, x : x + cw] & (box > 0)).any():
            continue
        out.append(np.sqrt(4.0 * area / np.pi))
    return np.array(out)


def granulometry_diameter(mask: np.ndarray, params: DefaultCRFParams) -> float:
    """Dominant object diameter of a filled mask: where openings lose most area per unit radius.

    Args:
        mask: ``[H, W]`` uint8 filled cell mask.
        params: Preset parameters (``scale_steps``).

    Returns:
        Diameter in pixels of ``mask``; 0.0 when it is empty.
    """
    if not mask.any():
        return 0.0
    radii = np.geomspace(1.0, max(2.0, min(mask.shape) / 3.0), params.scale_steps)
    areas = opening_areas(mask, radii)
    # What the first opening (radius 1) removes is pixel noise and is not counted.
    loss = np.convolve(-np.diff(areas) / np.diff(radii), [0.25, 0.5, 0.25], mode="same")
    if not loss.any():
        return 0.0
    # A disk of radius R survives every opening by r < R and none by r > R: the loss peaks at R.
    i = int(np.argmax(loss))
    return float(radii[i] + radii[i + 1])


def rbc_diameter(red: np.ndarray, stain: np.ndarray, params: DefaultCRFParams) -> float:
    """The red-cell diameter ``d`` of a smear, in pixels.

    Measured on a copy shrunk to about ``params.scale_pixels`` pixels (a size does not need
    full resolution), pale centres filled. First the granulometric mode of all cells (white
    cells included, as solid objects rather than speckled rings): red cells outnumber
    everything else on a smear. Then, where at least ``params.min_isolated`` red cells lie
    alone and whole within a factor 2 of the mode, their median equivalent diameter, which
    measures red cells only.

    Args:
        red: ``[H, W]`` bool red-cell mask.
        stain: ``[H, W]`` bool nuclear-stain mask.
        params: Preset parameters.

    Returns:
        Diameter in original-image pixels; 0.0 when there are no cells.
    """
    small, f = shrink(np.dstack([red, stain]), params)
    small_red, small_stain = small[..., 0], small[..., 1]
    mode = granulometry_diameter(fill_cells(small_red | small_stain), params)
    isolated = isolated_diameters(fill_cells(small_red), small_stain, params.min_solidity)
    # Lone cells within a factor 2 of the mode: fragments and debris are smaller, and the mode
    # itself can sit on a white cell or a clump when red cells are few or crowded.
    isolated = isolated[(isolated >= mode / 2) & (isolated <= 2 * mode)]
    if len(isolated) >= params.min_isolated:
        return float(np.median(isolated) * f)
    return mode * f
