"""REFERENCE ONLY - a literal, unoptimised transcription of the published CRF (Zhuang et al. 2025).

The product never imports this file. It exists so that ``activessf/regions/paper.py`` (the fast
``paper`` preset) can be checked against - and timed against - the method as written:

1. per-channel min-max stretch to 0-255;
2. 3x3 Gaussian blur, sigma 1.5;
3. scikit-learn ``KMeans(20)`` fitted on EVERY pixel;
4. ``KMeans(10)`` on the 20 centres, weighted by their pixel counts; every pixel takes the colour
   of its merged centre;
5. the whole quantised image converted to HSV (OpenCV scale);
6. stain mask = purple OR deep-blue (``cv2.inRange``);
7. 8-connected regions, kept when the box is >= 70x70 px and the fill rate >= 0.7.

All constants are read from ``PaperCRFParams`` so both implementations see the same numbers.
``fit_pixels``, ``kmeans_iters``, ``kmeans_eps`` and ``lut_bits`` are devices of the fast preset
and are deliberately ignored here: scikit-learn runs with its defaults (k-means++, up to 300
iterations), as a straightforward implementation of the paper would, except two knobs:

* ``n_init`` - restarts of the all-pixel ``KMeans(20)`` (default 1, sklearn's "auto" for
  k-means++). ``STABLE_N_INIT`` (10) is the fidelity reference of ``bench_regions.py``: on 40
  pbc11 images it lifts the seed-to-seed stain-mask IoU from ~0.79 to ~0.88 (0.93 with the
  Ward merge) at ~9x the time.
* ``merge_init`` - init of the merge ``KMeans(10)``: ``"ward"`` seeds it with
  ``activessf.regions.merge.ward_init`` (deterministic; the paper preset does the same),
  ``"kmeans++"`` is sklearn's seeded default.
"""

from __future__ import annotations

import cv2
import numpy as np
from sklearn.cluster import KMeans

from activessf.regions.config import PaperCRFParams
from activessf.regions.merge import ward_init
from activessf.regions.types import Region

STABLE_N_INIT = 10


def literal_quantise(
    rgb: np.ndarray, params: PaperCRFParams, seed: int, n_init: int = 1, merge_init: str | None = None
) -> np.ndarray:
    """Normalise, blur and two-stage K-means quantise, the literal way.

    Args:
        rgb: Image ``[H, W, 3]`` uint8, RGB order.
        params: Paper CRF parameters.
        seed: ``random_state`` of both scikit-learn K-means fits.
        n_init: Restarts of the first-stage ``KMeans(20)``.
        merge_init: ``"ward"`` or ``"kmeans++"``; None follows ``params.merge_init``.

    Returns:
        Quantised image ``[H, W, 3]`` uint8 (each pixel holds its merged centre's colour).
    """
    img = rgb.astype(np.float64)
    if params.normalize:
        lo = img.min(axis=(0, 1))
        hi = img.max(axis=(0, 1))
        span = np.where(hi > lo, hi - lo, 1.0)
        stretched = np.where(hi > lo, (img - lo) * (255.0 / span), img)
        img = np.clip(np.rint(stretched), 0, 255)
    smooth = cv2.GaussianBlur(img.astype(np.uint8), (params.blur_ksize, params.blur_ksize), params.blur_sigma)
    pixels = smooth.reshape(-1, 3).astype(np.float64)

    first = KMeans(params.k_first, n_init=n_init, random_state=seed).fit(pixels)
    counts = np.bincount(first.labels_, minlength=params.k_first)
    if (merge_init or params.merge_init) == "ward":
        init = ward_init(first.cluster_centers_, counts, params.k_merged)
        second = KMeans(params.k_merged, init=init, n_init=1, random_state=seed)
    else:
        second = KMeans(params.k_merged, n_init=1, random_state=seed)
    second.fit(first.cluster_centers_, sample_weight=counts)

    merged_label = second.labels_[first.labels_]
    colours = np.clip(np.rint(second.cluster_centers_), 0, 255).astype(np.uint8)
    return colours[merged_label].reshape(smooth.shape)


def hsv_stain_mask(quantised: np.ndarray, params: PaperCRFParams) -> np.ndarray:
    """Purple OR deep-blue mask from the HSV of a whole (quantised) image.

    Args:
        quantised: Image ``[H, W, 3]`` uint8, RGB order.
        params: Paper CRF parameters (HSV bounds on OpenCV's scale).

    Returns:
        ``[H, W]`` bool.
    """
    hsv = cv2.cvtColor(quantised, cv2.COLOR_RGB2HSV)
    purple = cv2.inRange(hsv, np.array(params.purple_lower), np.array(params.purple_upper))
    blue = cv2.inRange(hsv, np.array(params.blue_lower), np.array(params.blue_upper))
    return (purple | blue) > 0


def mask_from_palette(
    smooth: np.ndarray, centres: np.ndarray, mapping: np.ndarray, merged: np.ndarray, params: PaperCRFParams
) -> np.ndarray:
    """Stain mask for a GIVEN palette, computed literally (no lookup tables).

    Every pixel goes to its exactly nearest first-stage centre (float64 distances), takes its
    merged centre's colour, and the whole quantised image is converted to HSV. Fed the palette
    the fast preset fitted, this isolates the fast preset's assignment/HSV shortcuts from the
    (seed-dependent) K-means fit.

    Args:
        smooth: Preprocessed image ``[H, W, 3]`` uint8.
        centres: ``[k_first, 3]`` first-stage centres.
        mapping: ``[k_first]`` merged-cluster index of each first-stage centre.
        merged: ``[k_merged, 3]`` merged centres.
        params: Paper CRF parameters.

    Returns:
        ``[H, W]`` bool.
    """
    pixels = smooth.reshape(-1, 1, 3).astype(np.float64)
    nearest = ((pixels - centres.astype(np.float64)[None]) ** 2).sum(axis=2).argmin(axis=1)
    colours = np.clip(np.rint(merged), 0, 255).astype(np.uint8)
    return hsv_stain_mask(colours[mapping[nearest]].reshape(smooth.shape), params)


def literal_stain_mask(rgb: np.ndarray, params: PaperCRFParams, seed: int, n_init: int = 1) -> np.ndarray:
    """Stain mask from the HSV of the full quantised image.

    Args:
        rgb: Image ``[H, W, 3]`` uint8, RGB order.
        params: Paper CRF parameters.
        seed: Random seed for the K-means fits.
        n_init: Restarts of the first-stage K-means.

    Returns:
        ``[H, W]`` bool.
    """
    return hsv_stain_mask(literal_quantise(rgb, params, seed, n_init), params)


def literal_regions(mask: np.ndarray, params: PaperCRFParams) -> list[Region]:
    """Box-size and fill-rate filter over 8-connected regions, one region at a time.

    Args:
        mask: ``[H, W]`` bool stain mask.
        params: Paper CRF parameters.

    Returns:
        Kept regions in label order.
    """
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    kept = []
    for label in range(1, n):
        x, y, w, h, _ = (int(v) for v in stats[label])
        area = int((labels[y : y + h, x : x + w] == label).sum())
        fill = area / (w * h)
        if w >= params.min_box_w and h >= params.min_box_h and fill >= params.min_fill_rate:
            kept.append(Region(x, y, w, h, area, fill))
    return kept


def literal_find_regions(
    rgb: np.ndarray, params: PaperCRFParams, seed: int, n_init: int = 1
) -> tuple[np.ndarray, list[Region]]:
    """The literal CRF end to end.

    Args:
        rgb: Image ``[H, W, 3]`` uint8, RGB order.
        params: Paper CRF parameters.
        seed: Random seed for the K-means fits.
        n_init: Restarts of the first-stage K-means.

    Returns:
        ``(mask [H, W] bool, kept regions)``.
    """
    mask = literal_stain_mask(rgb, params, seed, n_init)
    return mask, literal_regions(mask, params)
