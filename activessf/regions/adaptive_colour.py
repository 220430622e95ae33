"""Colour model of one smear for the ``default`` CRF preset: which pixels are background,
red cell, or nuclear stain, without naming a hue.

Colours are handled as optical density (OD, Beer-Lambert: ``-log(I / I_white)``). In OD every
red-cell pixel points the same way whatever its thickness (only the length changes), and a
pixel holding two dyes is the sum of their vectors. Once the red-cell (eosin) direction is
known, the OD component *perpendicular* to it measures how much of any other dye a pixel
holds: the nuclear stain (azure, methylene blue, haematoxylin), whichever hue it has.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from activessf.regions.common import fit_colour_kmeans, sample_pixels
from activessf.regions.config import DefaultCRFParams


@dataclass(frozen=True)
class StainModel:
    """Where background and red cells sit in OD space.

    Attributes:
        white: OD of the background (the brightest sizeable colour cluster), ``[3]``.
        rbc_dir: Unit OD direction of the red-cell (eosin) colour, ``[3]``.
    """

    white: np.ndarray
    rbc_dir: np.ndarray


# OD of every uint8 level: a per-pixel log becomes one table lookup (cv2.LUT keeps float32).
_OD_TABLE = -np.log((np.arange(256, dtype=np.float32) + 1.0) / 256.0)


def optical_density(rgb: np.ndarray) -> np.ndarray:
    """Absolute optical density of colours.

    Args:
        rgb: ``[..., 3]`` colours, uint8 or float in 0-255.

    Returns:
        ``[..., 3]`` float32, ``-log((I + 1) / 256)``; 0 for white.
    """
    rgb = np.asarray(rgb)
    if rgb.dtype == np.uint8 and rgb.ndim == 3:
        return cv2.LUT(rgb, _OD_TABLE)
    return -np.log((np.asarray(rgb, np.float32) + 1.0) / 256.0)


def fit_stain_model(rgb: np.ndarray, params: DefaultCRFParams, seed: int) -> StainModel:
    """Cluster the image's colours in OD; read the background and red-cell colours off them.

    Background: the brightest cluster holding at least ``min_cluster_frac`` of the pixels.
    Red cells: of the stained clusters' dye directions, the one shared (within
    ``rbc_cone_deg``) by the most stained pixels, refined to those pixels' mean direction. Red
    cells cover more of any smear than nuclei do, and every red-cell pixel, pale or dense, has
    the same direction, so this is their dye; counting pixels by direction, not by colour,
    keeps a pale field whose red cells split over several clusters from losing to one dense
    nucleus.

    Args:
        rgb: Denoised image ``[H, W, 3]`` uint8.
        params: Preset parameters.
        seed: Seed of the pixel sample and of K-means.

    Returns:
        The image's stain model.
    """
    points = optical_density(sample_pixels(rgb, params.fit_pixels, seed))
    k = min(params.k_colors, len(points))
    # eps in OD units: about one grey level near the background.
    centres, labels = fit_colour_kmeans(points, k, params.kmeans_iters, seed, eps=0.005)
    share = np.bincount(labels, minlength=k) / len(points)
    # A tiny cluster can be specular glints on red cells: too few pixels to be the background.
    sizeable = np.flatnonzero(share >= params.min_cluster_frac)
    white = centres[sizeable[np.argmin(centres[sizeable].sum(axis=1))]].astype(np.float32)
    rel_points = points - white
    norms = np.linalg.norm(rel_points, axis=1)
    dirs = rel_points[norms > params.od_floor] / norms[norms > params.od_floor, None]
    rel_centres = centres - white
    cnorm = np.linalg.norm(rel_centres, axis=1)
    candidates = rel_centres[cnorm > params.od_floor] / cnorm[cnorm > params.od_floor, None]
    if len(dirs) == 0 or len(candidates) == 0:
        # A blank field: any direction will do, nothing will pass the stain test anyway.
        return StainModel(white=white, rbc_dir=np.full(3, 1 / np.sqrt(3), np.float32))
    cos_cone = np.cos(np.radians(params.rbc_cone_deg))
    support = (dirs @ candidates.T) > cos_cone
    members = dirs[support[:, int(np.argmax(support.sum(axis=0)))]]
    rbc_dir = members.mean(axis=0)
    return StainModel(white=white, rbc_dir=(rbc_dir / np.linalg.norm(rbc_dir)).astype(np.float32))


def stain_components(od: np.ndarray, model: StainModel) -> tuple[np.ndarray, np.ndarray]:
    """Split each pixel's OD (relative to the background) into red-cell dye and other dye.

    Args:
        od: Absolute OD ``[H, W, 3]``.
        model: The image's stain model.

    Returns:
        ``(eosin, other)``, each ``[H, W]`` float32: the OD length along the red-cell
        direction, and the OD length perpendicular to it (nuclear stain).
    """
    # Coordinates in an orthonormal basis (red-cell direction, two perpendiculars), each one
    # cv2.transform pass (offset = -white in that basis); then the perpendicular length.
    basis = _orthonormal_basis(model.rbc_dir.astype(np.float64))
    affine = np.hstack([basis, -(basis @ model.white.astype(np.float64))[:, None]]).astype(np.float32)
    image = np.ascontiguousarray(od, np.float32)
    image = image if image.ndim == 3 else image.reshape(-1, 1, 3)
    # Three one-row transforms cost less than one three-row transform plus a channel split.
    along, p1, p2 = (cv2.transform(image, affine[i : i + 1]) for i in range(3))
    shape = od.shape[:-1]
    return along.reshape(shape), cv2.magnitude(p1, p2).reshape(shape)


def _orthonormal_basis(direction: np.ndarray) -> np.ndarray:
    """``[3, 3]`` rows: the unit ``direction``, then two unit vectors perpendicular to it and each other."""
    u = direction / np.linalg.norm(direction)
    helper = np.eye(3)[int(np.argmin(np.abs(u)))]  # the axis least parallel to u
    v = np.cross(u, helper)
    v /= np.linalg.norm(v)
    return np.stack([u, v, np.cross(u, v)])


def otsu_threshold(values: np.ndarray, bins: int = 256) -> float:
    """Otsu's two-class threshold of a 1-D sample.

    Args:
        values: ``[N]`` float values.
        bins: Histogram resolution.

    Returns:
        The threshold, in the units of ``values``.
    """
    values = np.asarray(values, np.float32).ravel()
    lo, hi = float(values.min(initial=0.0)), float(values.max(initial=0.0))
    if hi - lo < 1e-6:
        return hi
    q = np.round((values - lo) / (hi - lo) * (bins - 1)).astype(np.uint8)
    t, _ = cv2.threshold(q.reshape(-1, 1), 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    return lo + (t + 0.5) / (bins - 1) * (hi - lo)


def typical_rbc_density(eosin: np.ndarray, other: np.ndarray, params: DefaultCRFParams) -> float:
    """Median eosin OD of the pixels with the red-cell dye direction (0.0 if none).

    Args:
        eosin, other: ``[H, W]`` dye components from ``stain_components``.
        params: Preset parameters (``od_floor``, ``rbc_cone_deg``).
    """
    # The direction test alone picks red cells: eosinophil granules are denser than any red
    # cell and would drag a plain Otsu split up to them.
    typical = (other < np.tan(np.radians(params.rbc_cone_deg)) * eosin) & (eosin > params.od_floor)
    return float(np.median(eosin[typical])) if typical.any() else 0.0


def nuclear_stain_mask(eosin: np.ndarray, other: np.ndarray, rbc_od: float, params: DefaultCRFParams) -> np.ndarray:
    """Pixels holding non-eosin dye, or denser than red cells can be.

    Args:
        eosin, other: ``[H, W]`` dye components from ``stain_components``.
        rbc_od: Typical red-cell eosin OD.
        params: Preset parameters (``od_floor``, ``stain_noise_factor``, ``dense_factor``).

    Returns:
        ``[H, W]`` bool.
    """
    total = cv2.magnitude(eosin, other)
    stained = total > params.od_floor
    if stained.sum() < 16:
        return np.zeros_like(stained)
    values = other[stained]
    # Otsu splits stained pixels into red-cell-like and nuclear; the noise floor stops it from
    # splitting red-cell noise in two when a field holds no nucleus at all.
    threshold = max(otsu_threshold(values), params.stain_noise_factor * float(np.median(values)))
    # A very dark nucleus absorbs every channel and its OD turns towards the red cells' own
    # direction; it still stands out by density, which no (stack of two) red cell(s) reaches.
    dense = total > params.dense_factor * rbc_od if rbc_od > 0 else np.zeros_like(stained)
    return (other > threshold) | dense


def red_cell_mask(eosin: np.ndarray, stain: np.ndarray, rbc_od: float) -> np.ndarray:
    """Red-cell pixels: denser in eosin than half a typical red cell, outside the stain mask.

    Args:
        eosin: ``[H, W]`` OD along the red-cell direction.
        stain: ``[H, W]`` bool nuclear-stain mask.
        rbc_od: Typical red-cell eosin OD; half of it is the midpoint between background and red cell.

    Returns:
        ``[H, W]`` bool.
    """
    return (eosin > 0.5 * rbc_od) & ~stain
