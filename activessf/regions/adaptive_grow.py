"""Growing nuclei to their cells for the ``default`` CRF preset (a marker-controlled watershed).

The watershed only floods pixels near a stained object (``grow_margin_d``); every other pixel
is an outside seed. A flood cannot cross seed pixels, so each connected part of the near
region is flooded on its own, from the seeds inside it. Only the parts holding a nucleus are
needed, so all the work runs in their bounding box (grown by the smoothing and erosion reach):
the same labels as over the whole image, at the cost of the cells' area instead of the image's.
"""

from __future__ import annotations

import cv2
import numpy as np

from activessf.regions.adaptive_scale import beyond, disk, within
from activessf.regions.config import DefaultCRFParams


def nucleus_window(
    near: np.ndarray, stained: np.ndarray, nucleated: list[tuple[int, tuple[int, int, int, int]]], reach: int
) -> tuple[slice, slice]:
    """The box of the near-region parts that hold a nucleated object, grown by ``reach``.

    Args:
        near: ``[H, W]`` bool, pixels near any stained object.
        stained: ``[H, W]`` int32 object labels on their stained pixels.
        nucleated: ``(label, (x, y, w, h))`` of each nucleated object, its box of stained pixels.
        reach: Pixels added on every side (clipped to the image).

    Returns:
        ``(rows, cols)`` slices of the image.
    """
    # 8-connected parts: a superset of the watershed's 4-connected floods, and it also holds
    # every 8-connected body the later clean-up joins.
    _, parts, stats, _ = cv2.connectedComponentsWithStats(near.view(np.uint8), connectivity=8)
    wanted = np.zeros(len(stats), bool)
    # All stained pixels of one object lie in one part (they are closer than the margin).
    for label, (x, y, w, h) in nucleated:
        box = stained[y : y + h, x : x + w] == label
        wanted[parts[y : y + h, x : x + w].flat[int(np.argmax(box))]] = True
    x, y, w, h = (stats[wanted, i] for i in range(4))
    rows, cols = near.shape
    y0, x0 = max(0, int(y.min()) - reach), max(0, int(x.min()) - reach)
    y1, x1 = min(rows, int((y + h).max()) + reach), min(cols, int((x + w).max()) + reach)
    return slice(y0, y1), slice(x0, x1)


def grow_nuclei(
    rgb: np.ndarray,
    stained: np.ndarray,
    nucleated: list[tuple[int, tuple[int, int, int, int]]],
    eosin: np.ndarray,
    other: np.ndarray,
    red: np.ndarray,
    d: float,
    params: DefaultCRFParams,
) -> tuple[tuple[slice, slice], np.ndarray]:
    """Marker-controlled watershed of the cells around the stained objects.

    Seeds: each object's stained pixels dilated by ``seed_ring_d`` (past the nuclear edge, into
    the cytoplasm: a flood from the nucleus itself would stop at the nuclear edge, the cell's
    strongest); one outside label on background pixels, on red-cell cores and beyond
    ``grow_margin_d``. Each cell then extends to the strongest colour edge between its seed
    and the outside, i.e. the edge of its cytoplasm.

    Args:
        rgb: Denoised image ``[H, W, 3]`` uint8.
        stained: ``[H, W]`` int32 object labels on their stained pixels.
        nucleated: ``(label, box)`` of the nucleated objects (at least one); only their cells
            are final.
        eosin, other: ``[H, W]`` dye components.
        red: ``[H, W]`` bool red-cell mask.
        d: Red-cell diameter in pixels.
        params: Preset parameters.

    Returns:
        ``(window, labels)``: ``labels`` is the ``[h, w]`` int32 label image of ``window`` (a
        box of the image): cell labels (compact bodies joined to their seed), 0 elsewhere.
        The labels of nucleated objects are final; others may differ near the window edge.
    """
    near_full = within(stained > 0, params.grow_margin_d * d)
    sigma = max(0.5, params.edge_sigma_d * d)
    # cv2's uint8 Gaussian reaches 3 sigma; the watershed reads one neighbour; the erosion
    # below reaches strand_radius_d * d (chamfer distance, ~2% long).
    reach = int(np.ceil(3 * sigma + 1.05 * params.strand_radius_d * d)) + 3
    win = nucleus_window(near_full, stained, nucleated, reach)
    eosin, other = eosin[win], other[win]
    stained, near = stained[win], near_full[win]
    # Labels are small integers: uint16 dilation is exact and cheaper than float32.
    dtype = np.uint16 if stained.max(initial=0) < 1 << 16 else np.float32
    markers = cv2.dilate(stained.astype(dtype), disk(params.seed_ring_d * d)).astype(np.int32)
    cone = other < np.tan(np.radians(params.rbc_cone_deg)) * eosin
    red_core = beyond(red[win] & cone, params.strand_radius_d * d)
    background = cv2.magnitude(eosin, other) < params.background_od
    outside = int(stained.max()) + 1
    markers[((red_core | background) & (markers == 0)) | ~near] = outside
    # Smoothing at a fraction of d hides granules and chromatin, whose edges are not the cell's.
    smooth = cv2.GaussianBlur(np.ascontiguousarray(rgb[win]), (0, 0), sigma)
    cv2.watershed(np.ascontiguousarray(smooth[..., ::-1]), markers)
    cells = np.where((markers > 0) & (markers != outside) & near, markers, 0)
    # A cell body is compact: an opening cuts the thin strands a basin can leak along red-cell
    # rims, and only what stays joined to a stained object is kept.
    body = cv2.morphologyEx((cells > 0).astype(np.uint8), cv2.MORPH_OPEN, disk(params.strand_radius_d * d))
    _, parts = cv2.connectedComponents(body | (stained > 0).astype(np.uint8))
    joined = np.zeros(int(parts.max()) + 1, bool)
    joined[np.unique(parts[stained > 0])] = True
    return win, np.where(joined[parts] & (body > 0), cells, stained).astype(np.int32)
