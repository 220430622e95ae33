"""Primitives shared by the CRF presets: contrast stretch, blur, colour K-means, connected regions.

Colour assignment works on a quantised-RGB lookup table: every pixel's colour is binned to
``bits`` bits per channel, the nearest centre is computed once per *occupied* bin (a blurred
smear occupies ~1-2k of the 32k bins at 5 bits), and the image is labelled with one ``np.take``.
That is what makes "fit on a sample, assign every pixel" cheap.
"""

from __future__ import annotations

import cv2
import numpy as np

from activessf.regions.types import Region


def stretch_contrast(rgb: np.ndarray) -> np.ndarray:
    """Per-channel min-max stretch to the full 0-255 range (rounded to nearest).

    Args:
        rgb: Image ``[H, W, 3]`` uint8.

    Returns:
        ``[H, W, 3]`` uint8. A constant channel has no range to stretch and is left unchanged.
    """
    affine = np.zeros((3, 4), np.float64)
    for c in range(3):
        # Per-plane cv2 calls are ~30x faster than a numpy reduction over the [N, 3] view.
        lo, hi, _, _ = cv2.minMaxLoc(cv2.extractChannel(rgb, c))
        scale = 255.0 / (hi - lo) if hi > lo else 1.0
        affine[c, c], affine[c, 3] = scale, (-lo * scale if hi > lo else 0.0)
    # One diagonal cv2.transform = (v - lo) * scale per channel, with rounding and saturation.
    return cv2.transform(rgb, affine)


def denoise(rgb: np.ndarray, ksize: int, sigma: float) -> np.ndarray:
    """Gaussian blur that removes JPEG and sensor speckle before colour clustering.

    Args:
        rgb: Image ``[H, W, 3]`` uint8.
        ksize: Odd kernel side in pixels.
        sigma: Gaussian standard deviation in pixels.

    Returns:
        Blurred image ``[H, W, 3]`` uint8.
    """
    return cv2.GaussianBlur(rgb, (ksize, ksize), sigma)


def sample_pixels(rgb: np.ndarray, n: int, seed: int) -> np.ndarray:
    """A seeded uniform sample of pixel colours (without replacement).

    Args:
        rgb: Image ``[H, W, 3]`` uint8.
        n: Pixels to draw; ``0`` or ``n >= H*W`` returns every pixel.
        seed: Random seed; the same seed gives the same sample.

    Returns:
        ``[n, 3]`` float32 colours (the layout ``cv2.kmeans`` expects).
    """
    pixels = rgb.reshape(-1, 3)
    if n <= 0 or n >= len(pixels):
        return pixels.astype(np.float32)
    idx = np.random.default_rng(seed).choice(len(pixels), size=n, replace=False)
    return pixels[idx].astype(np.float32)


def fit_colour_kmeans(
    points: np.ndarray, k: int, iters: int, seed: int, eps: float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    """K-means (k-means++ init, one attempt) on colours with OpenCV, deterministic per seed.

    Args:
        points: ``[N, 3]`` float32 colours, ``N >= k``.
        k: Number of clusters.
        iters: Maximum Lloyd iterations.
        seed: Seeds OpenCV's (thread-local) RNG used by the k-means++ init.
        eps: Stop once no centre moves more than this many colour levels.

    Returns:
        ``(centres [k, 3] float32, labels [N] int32)``.
    """
    criteria = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, int(iters), float(eps))
    cv2.setRNGSeed(int(seed))
    _, labels, centres = cv2.kmeans(
        np.ascontiguousarray(points, np.float32), int(k), None, criteria, 1, cv2.KMEANS_PP_CENTERS
    )
    return centres, labels.ravel().astype(np.int32)


def merge_centres(
    centres: np.ndarray, counts: np.ndarray, k: int, iters: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Cluster ``centres`` into ``k`` groups, each centre weighted by its pixel count.

    ``cv2.kmeans`` has no sample weights, so each centre is repeated ``counts`` times, which is
    exactly count-weighted K-means; with counts from a few-thousand-pixel fit sample it is cheap.

    Args:
        centres: ``[K, 3]`` float32 first-stage centres.
        counts: ``[K]`` non-negative integer pixel counts (their sum must be >= ``k``).
        k: Number of merged clusters.
        iters: Maximum Lloyd iterations.
        seed: Random seed for the k-means++ init.

    Returns:
        ``(merged [k, 3] float32, mapping [K] int32)``: ``mapping[i]`` is the merged cluster
        of first-stage centre ``i`` (a centre with count 0 goes to its nearest merged centre).
    """
    repeated = np.repeat(centres.astype(np.float32), counts.astype(np.int64), axis=0)
    merged, _ = fit_colour_kmeans(repeated, k, iters, seed)
    return merged, nearest_centre(centres, merged)


def squared_distances(points: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """Squared Euclidean distances in float64, summed channel by channel.

    Args:
        points: ``[M, 3]`` colours.
        centres: ``[K, 3]`` colours.

    Returns:
        ``[M, K]`` float64.
    """
    p = points.astype(np.float64)
    c = centres.astype(np.float64)
    # Explicit per-channel terms: numpy reductions over a length-3 axis are ~10x slower.
    out = np.square(p[:, 0:1] - c[:, 0])
    out += np.square(p[:, 1:2] - c[:, 1])
    out += np.square(p[:, 2:3] - c[:, 2])
    return out


def nearest_centre(points: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """Index of the nearest centre for each point (first index on ties).

    Args:
        points: ``[M, 3]`` colours.
        centres: ``[K, 3]`` colours.

    Returns:
        ``[M]`` int32 indices into ``centres``.
    """
    return squared_distances(points, centres).argmin(axis=1).astype(np.int32)


def colour_keys(rgb: np.ndarray, bits: int) -> np.ndarray:
    """Quantised-RGB bin index of every pixel.

    Args:
        rgb: Image ``[H, W, 3]`` uint8.
        bits: Bits kept per channel (1-8).

    Returns:
        ``[H, W]`` keys in ``[0, 2**(3*bits))``: uint16 when ``bits <= 5``, else int32.
    """
    q = rgb >> (8 - bits)
    if 3 * bits <= 16:
        # A 1x3 cv2.transform packs the channels in one pass; numpy's strided per-channel
        # shifts cost ~4x more. uint16 keys also make the later np.take cheaper.
        weights = np.array([[float(1 << (2 * bits)), float(1 << bits), 1.0]])
        return cv2.transform(q.astype(np.uint16), weights)
    q32 = q.astype(np.int32)
    return (q32[..., 0] << (2 * bits)) | (q32[..., 1] << bits) | q32[..., 2]


def bin_colours(keys: np.ndarray, bits: int) -> np.ndarray:
    """RGB colour at the centre of each quantised bin.

    Args:
        keys: ``[M]`` bin indices from :func:`colour_keys`.
        bits: Bits per channel used for the keys.

    Returns:
        ``[M, 3]`` float32 colours.
    """
    mask = (1 << bits) - 1
    step = float(1 << (8 - bits))
    q = np.stack([(keys >> (2 * bits)) & mask, (keys >> bits) & mask, keys & mask], axis=1)
    return (q * step + (step - 1.0) / 2.0).astype(np.float32)


def occupied_bins(keys: np.ndarray, bits: int) -> np.ndarray:
    """Sorted indices of the colour bins that hold at least one pixel.

    Args:
        keys: ``[H, W]`` keys from :func:`colour_keys`.
        bits: Bits per channel used for the keys.

    Returns:
        ``[M]`` int64 bin indices.
    """
    n_bins = 1 << (3 * bits)
    if keys.dtype == np.uint16:
        # cv2.calcHist counts uint16 directly; np.bincount first widens every key to int64.
        return np.flatnonzero(cv2.calcHist([keys], [0], None, [n_bins], [0, n_bins]))
    return np.flatnonzero(np.bincount(keys.ravel(), minlength=n_bins))


def colour_label_table(keys: np.ndarray, centres: np.ndarray, bits: int) -> np.ndarray:
    """Nearest-centre label of every occupied quantised-RGB bin (unoccupied bins get 0).

    Approximate per pixel: a pixel gets the label of its bin's centre colour (at most
    ``2**(8-bits-1)`` levels away per channel). Use :func:`nearest_flag_mask` for an exact
    per-pixel yes/no answer.

    Args:
        keys: ``[H, W]`` keys from :func:`colour_keys`.
        centres: ``[K, 3]`` colours.
        bits: Bits per channel used for the keys.

    Returns:
        ``[2**(3*bits)]`` int32 table; ``np.take(table, keys)`` labels the image.
    """
    occupied = occupied_bins(keys, bits)
    table = np.zeros(1 << (3 * bits), np.int32)
    table[occupied] = nearest_centre(bin_colours(occupied, bits), centres)
    return table


def nearest_flag_mask(
    rgb: np.ndarray, keys: np.ndarray, centres: np.ndarray, flags: np.ndarray, bits: int
) -> np.ndarray:
    """``flags[nearest centre]`` for every pixel, exactly, at lookup-table speed.

    Each occupied colour bin is a cube of half-diagonal ``r``; by the triangle inequality every
    colour in it has the same answer as the cube centre when the nearest flagged and nearest
    unflagged centres differ in distance by more than ``2 r``. Those bins are answered by the
    table; pixels of the few boundary bins get exact per-pixel distances. The result equals a
    per-pixel nearest-centre assignment (only the flag is exact, not the centre index).

    Args:
        rgb: Image ``[H, W, 3]`` uint8 the keys were computed from.
        keys: ``[H, W]`` keys from :func:`colour_keys`.
        centres: ``[K, 3]`` colours.
        flags: ``[K]`` bool, the answer for each centre.
        bits: Bits per channel used for the keys.

    Returns:
        ``[H, W]`` bool.
    """
    flags = np.asarray(flags, bool)
    occupied = occupied_bins(keys, bits)
    bins = bin_colours(occupied, bits).astype(np.float64)
    c = centres.astype(np.float64)
    # Expanded form (one BLAS product): its rounding error is far below the slack added below.
    d2 = np.maximum((bins * bins).sum(axis=1, keepdims=True) - 2.0 * bins @ c.T + (c * c).sum(axis=1), 0.0)
    none = np.full(len(occupied), np.inf)
    d_true = np.sqrt(d2[:, flags].min(axis=1)) if flags.any() else none
    d_false = np.sqrt(d2[:, ~flags].min(axis=1)) if not flags.all() else none
    # Twice the half-diagonal of a bin cube, plus slack for float rounding.
    margin = 2.0 * ((1 << (8 - bits)) - 1) / 2.0 * np.sqrt(3.0) + 1e-3
    code = np.zeros(1 << (3 * bits), np.uint8)  # 0 = False, 1 = True, 2 = decide per pixel
    code[occupied] = np.where(d_true + margin < d_false, 1, np.where(d_false + margin < d_true, 0, 2))
    per_pixel = np.take(code, keys)
    mask = per_pixel == 1
    boundary = np.flatnonzero(per_pixel == 2)
    if boundary.size:
        mask.flat[boundary] = flags[nearest_centre(rgb.reshape(-1, 3)[boundary], centres)]
    return mask


def assign_colours(rgb: np.ndarray, centres: np.ndarray, bits: int = 5) -> np.ndarray:
    """Label every pixel with its nearest centre, via the quantised-RGB lookup table.

    Args:
        rgb: Image ``[H, W, 3]`` uint8.
        centres: ``[K, 3]`` colours.
        bits: Bits per channel of the lookup table (5 = 32k bins, error <= 4 levels/channel).

    Returns:
        ``[H, W]`` int32 labels into ``centres``.
    """
    keys = colour_keys(rgb, bits)
    return np.take(colour_label_table(keys, centres, bits), keys)


def connected_regions(mask: np.ndarray, min_w: int, min_h: int, min_fill: float) -> list[Region]:
    """8-connected regions of ``mask`` whose box is large and well filled.

    Args:
        mask: ``[H, W]`` bool or uint8; nonzero is foreground.
        min_w: Minimum bounding-box width in pixels.
        min_h: Minimum bounding-box height in pixels.
        min_fill: Minimum ``region pixels / box pixels``.

    Returns:
        Kept regions in label order (row-major scan order of their first pixel).
    """
    m = mask.view(np.uint8) if mask.dtype == np.bool_ else mask.astype(np.uint8, copy=False)
    # 16-bit labels roughly triple the speed; usable while the most 8-connected components an
    # image can hold (one per 2x2 block) fits in uint16.
    max_labels = ((m.shape[0] + 1) // 2) * ((m.shape[1] + 1) // 2) + 1
    ltype = cv2.CV_16U if max_labels < (1 << 16) else cv2.CV_32S
    _, _, stats, _ = cv2.connectedComponentsWithStats(m, connectivity=8, ltype=ltype)
    x, y, w, h, area = (stats[1:, i].astype(np.int64) for i in range(5))
    fill = area / np.maximum(w * h, 1)
    keep = np.flatnonzero((w >= min_w) & (h >= min_h) & (fill >= min_fill))
    return [
        Region(int(x[i]), int(y[i]), int(w[i]), int(h[i]), int(area[i]), float(fill[i])) for i in keep
    ]
