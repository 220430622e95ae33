"""The ``default`` CRF preset: cell regions on smears of any stain shade and magnification.

Same idea as the paper's CRF (denoise, colour clustering, stain mask, shape filter), with every
constant tied to the image instead of to one microscope:

1. Denoise with a small Gaussian (sensor noise is pixel-sized).
2. Colour model (``adaptive_colour``): K-means in optical density; the brightest sizeable
   cluster is the background, the dye direction most stained pixels share is the red cells'
   (they dominate every smear, and all their pixels share it whatever their thickness).
3. Stain mask: pixels holding dye *other than* the red cells' (OD perpendicular to the
   red-cell direction) above Otsu's threshold and the red cells' own noise, or denser than two
   stacked red cells. No hue is named, so a bluer, redder or shifted stain works the same.
4. Scale (``adaptive_scale``): the red-cell diameter ``d``; every length below is a multiple.
5. Stained parts within ``2 * group_radius_d`` are one object (the lobes of one nucleus).
   Objects are ``platelet`` (stain smaller than ``min_nucleated_d``, a platelet is ~0.3 d) or
   ``nucleated``; ``keep_kinds`` picks which are returned.
6. A nucleated object is grown to its cell: a marker-controlled watershed from its stain
   (dilated past the nuclear edge) against background and red-cell seeds, cut of thin leaks,
   within ``grow_margin_d``. A platelet's body is its closed, filled stain.
7. Shape filter: the region's fill rate.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from scipy import ndimage as ndi

from activessf.regions.adaptive_colour import (
    fit_stain_model,
    nuclear_stain_mask,
    optical_density,
    red_cell_mask,
    stain_components,
    typical_rbc_density,
)
from activessf.regions.adaptive_grow import grow_nuclei
from activessf.regions.adaptive_scale import disk, fill_holes, rbc_diameter, within
from activessf.regions.common import denoise
from activessf.regions.config import DefaultCRFParams
from activessf.regions.types import Region


@dataclass(frozen=True)
class StainedObject:
    """One group of stained pixels (a nucleus with its lobes, or a platelet).

    Attributes:
        label: Its label in the grouped label image.
        box: ``(x, y, w, h)`` of its stained pixels.
        area: Stained pixel count.
        kind: ``"nucleated"`` or ``"platelet"``.
    """

    label: int
    box: tuple[int, int, int, int]
    area: int
    kind: str


def find_regions_default(rgb: np.ndarray, params: DefaultCRFParams, seed: int) -> list[Region]:
    """Cell regions of one smear image.

    Args:
        rgb: Image ``[H, W, 3]`` uint8.
        params: Preset parameters.
        seed: Seed of the colour clustering; same seed, same regions.

    Returns:
        Kept regions in original-image pixels, one per cell, with ``kind`` set.
    """
    blurred = denoise(rgb, params.blur_ksize, 0)
    od = optical_density(blurred)
    model = fit_stain_model(blurred, params, seed)
    eosin, other = stain_components(od, model)
    rbc_od = typical_rbc_density(eosin, other, params)
    stain = nuclear_stain_mask(eosin, other, rbc_od, params)
    if not stain.any():
        return []
    red = red_cell_mask(eosin, stain, rbc_od)
    d = rbc_diameter(red, stain, params)
    if d <= 0:
        return []
    labels, objects = stained_objects(stain, d, params)
    wanted = [o for o in objects if o.kind in params.keep_kinds]
    for o in objects:
        if o.kind not in params.keep_kinds:  # gone from the label image: no seed, no cell
            x, y, w, h = o.box
            view = labels[y : y + h, x : x + w]
            view[view == o.label] = 0
    cells = cell_masks(blurred, labels, wanted, eosin, other, red, d, params)
    return [r for r in cell_regions(wanted, cells) if r.fill_rate >= params.min_fill_rate]


def stained_objects(stain: np.ndarray, d: float, params: DefaultCRFParams) -> tuple[np.ndarray, list[StainedObject]]:
    """Group stained pixels into objects and name each object's kind.

    Args:
        stain: ``[H, W]`` bool nuclear-stain mask.
        d: Red-cell diameter in pixels.
        params: Preset parameters (``speck_radius_d``, ``group_radius_d``, ``min_platelet_d``,
            ``min_nucleated_d``).

    Returns:
        ``(labels, objects)``: ``objects`` lists the objects big enough to keep; ``labels``
        ``[H, W]`` int32 holds each of them's label on its stained pixels (0 elsewhere).
    """
    clean = stain.astype(np.uint8)
    if params.speck_radius_d * d >= 1:
        clean = cv2.morphologyEx(clean, cv2.MORPH_OPEN, disk(params.speck_radius_d * d))
    grouped = within(clean, params.group_radius_d * d).astype(np.uint8)
    _, labels = cv2.connectedComponents(grouped, connectivity=8)
    labels *= clean  # labels on stained pixels only
    objects = []
    for label, sl in enumerate(ndi.find_objects(labels), start=1):
        if sl is None:
            continue
        own = labels[sl] == label
        area = int(np.count_nonzero(own))
        eq_diameter = np.sqrt(4.0 * area / np.pi) / d
        if eq_diameter < params.min_platelet_d:
            labels[sl][own] = 0  # too small to keep: gone from the label image too
            continue
        kind = "nucleated" if eq_diameter >= params.min_nucleated_d else "platelet"
        box = (sl[1].start, sl[0].start, sl[1].stop - sl[1].start, sl[0].stop - sl[0].start)
        objects.append(StainedObject(label=label, box=box, area=area, kind=kind))
    return labels, objects


def cell_masks(
    rgb: np.ndarray,
    labels: np.ndarray,
    objects: list[StainedObject],
    eosin: np.ndarray,
    other: np.ndarray,
    red: np.ndarray,
    d: float,
    params: DefaultCRFParams,
) -> np.ndarray:
    """Each object's cell: nuclei grown to their cytoplasm, platelets filled in.

    Args:
        rgb: Denoised image ``[H, W, 3]`` uint8.
        labels: ``[H, W]`` labels of ``objects`` on their stained pixels, 0 elsewhere.
        objects: Objects to return cells for.
        eosin, other: ``[H, W]`` dye components.
        red: ``[H, W]`` bool red-cell mask.
        d: Red-cell diameter in pixels.
        params: Preset parameters.

    Returns:
        ``[H, W]`` int32: each object's label on its cell pixels, 0 elsewhere.
    """
    stained = labels
    cells = stained.copy()
    nucleated = [o.label for o in objects if o.kind == "nucleated"]
    if params.grow_margin_d > 0 and nucleated:
        boxes, kinds = [o.box for o in objects], [o.kind == "nucleated" for o in objects]
        win, grown = grow_nuclei(rgb, stained, boxes, kinds, eosin, other, red, d, params)
        is_nucleated = np.zeros(max(int(grown.max()), max(nucleated)) + 1, bool)
        is_nucleated[nucleated] = True
        cells[win] = np.where(is_nucleated[grown], grown, cells[win])
    # A platelet is granular: its stained pixels are speckled; its body is their closed hull.
    kernel = disk(params.strand_radius_d * d)
    pad = kernel.shape[0]
    for obj in objects:
        if obj.kind == "platelet":
            x, y, w, h = obj.box
            own = (stained[y : y + h, x : x + w] == obj.label).astype(np.uint8)
            # Zero padding, so that the closing cannot grow the body along its box edges.
            own = cv2.copyMakeBorder(own, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=0)
            body = fill_holes(cv2.morphologyEx(own, cv2.MORPH_CLOSE, kernel))[pad:-pad, pad:-pad] > 0
            view = cells[y : y + h, x : x + w]
            view[body & (view == 0)] = obj.label
    return cells


def cell_regions(objects: list[StainedObject], cells: np.ndarray) -> list[Region]:
    """The box of each object's cell pixels.

    Args:
        objects: The stained objects (each has cell pixels: at least its own stain).
        cells: ``[H, W]`` int32 cell labels from ``cell_masks``.

    Returns:
        One region per object that has cell pixels, in order; its fill rate is cell pixels
        over box pixels.
    """
    # One pass finds every label's box; each area is then counted inside its box only.
    slices = ndi.find_objects(cells)
    regions = []
    for obj in objects:
        if obj.label > len(slices) or slices[obj.label - 1] is None:
            continue
        rows, cols = slices[obj.label - 1]
        area = int(np.count_nonzero(cells[rows, cols] == obj.label))
        y, x, h, w = rows.start, cols.start, rows.stop - rows.start, cols.stop - cols.start
        regions.append(Region(x=x, y=y, w=w, h=h, area=area, fill_rate=area / float(w * h), kind=obj.kind))
    return regions
