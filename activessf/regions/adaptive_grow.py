"""Growing nuclei to their cells for the ``default`` CRF preset (a marker-controlled watershed).

The watershed only floods pixels near a stained object (``grow_margin_d``); every other pixel
is an outside seed. A flood cannot cross seed pixels, so each connected part of the near
region is flooded on its own, from the seeds inside it. Only the parts holding a nucleus are
needed, so all the work runs in a box around them (grown by the smoothing and erosion reach):
the same nucleated cells as over the whole image, at the cost of the cells' area instead of
the image's.
"""

from __future__ import annotations

import cv2
import numpy as np

from activessf.regions.adaptive_scale import beyond, disk, within
from activessf.regions.config import DefaultCRFParams


Box = tuple[int, int, int, int]


def nucleus_window(boxes: list[Box], nucleated: list[bool], margin: float, reach: int, shape) -> tuple[slice, slice]:
    """A box of the image holding every near-region part with a nucleus, grown by ``reach``.

    Near regions of two objects can only touch when their stained pixels are closer than
    twice the margin (plus the chamfer distance's ~2% and a pixel), so objects chained to a
    nucleus by box gaps below that bound hold every such part; their boxes, grown by the
    margin, bound it.

    Args:
        boxes: ``(x, y, w, h)`` of every object's stained pixels.
        nucleated: Per object, whether it is nucleated (at least one is).
        margin: The near-region radius in pixels.
        reach: Pixels added on every side beyond the near region (clipped to the image).
        shape: ``(H, W)`` of the image.

    Returns:
        ``(rows, cols)`` slices of the image.
    """
    b = np.array(boxes, np.float64).reshape(-1, 4)
    x0, y0, x1, y1 = b[:, 0], b[:, 1], b[:, 0] + b[:, 2], b[:, 1] + b[:, 3]
    gap_x = np.maximum(0.0, np.maximum(x0[:, None], x0[None]) - np.minimum(x1[:, None], x1[None]))
    gap_y = np.maximum(0.0, np.maximum(y0[:, None], y0[None]) - np.minimum(y1[:, None], y1[None]))
    linked = np.hypot(gap_x, gap_y) <= 2.1 * margin + 3
    chained = np.array(nucleated, bool)
    while True:
        grown = chained | linked[chained].any(axis=0)
        if np.array_equal(grown, chained):
            break
        chained = grown
    pad = int(np.ceil(1.05 * margin)) + 2 + reach
    rows, cols = shape[:2]
    top, left = max(0, int(y0[chained].min()) - pad), max(0, int(x0[chained].min()) - pad)
    bottom, right = min(rows, int(y1[chained].max()) + pad), min(cols, int(x1[chained].max()) + pad)
    return slice(top, bottom), slice(left, right)


def grow_nuclei(
    rgb: np.ndarray,
    stained: np.ndarray,
    boxes: list[Box],
    nucleated: list[bool],
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
        boxes: ``(x, y, w, h)`` of every object's stained pixels.
        nucleated: Per object, whether it is nucleated (at least one is); only their cells
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
    sigma = max(0.5, params.edge_sigma_d * d)
    # cv2's uint8 Gaussian reaches 3 sigma; the watershed reads one neighbour; the erosion
    # below reaches strand_radius_d * d (chamfer distance, ~2% long).
    reach = int(np.ceil(3 * sigma + 1.05 * params.strand_radius_d * d)) + 3
    win = nucleus_window(boxes, nucleated, params.grow_margin_d * d, reach, stained.shape)
    eosin, other, stained = eosin[win], other[win], stained[win]
    # Within the window the near region can only lack pixels of parts without a nucleus.
    near = within(stained > 0, params.grow_margin_d * d)
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
    return win, np.where(joined[parts] & (body > 0), cells, stained).astype(np.int32, copy=False)
