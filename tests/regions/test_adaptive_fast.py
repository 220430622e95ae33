"""The ``default`` preset's fast paths equal what they replace, and its bccd recall holds."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from scipy import ndimage as ndi

import activessf.regions.adaptive_grow as grow
from activessf.regions.adaptive import cell_masks, find_regions_default, stained_objects
from activessf.regions.adaptive_colour import (
    StainModel,
    nuclear_stain_mask,
    optical_density,
    red_cell_mask,
    stain_components,
    typical_rbc_density,
)
from activessf.regions.adaptive_scale import euclidean_disk, fill_holes, opening_areas, rbc_diameter
from activessf.regions.config import DefaultCRFParams
from tests.regions.test_adaptive import iou, voc_wbc


def disks_mask(seed: int, shape=(180, 220), n: int = 25) -> np.ndarray:
    rng = np.random.default_rng(seed)
    mask = np.zeros(shape, np.uint8)
    for _ in range(n):
        centre = (int(rng.integers(0, shape[1])), int(rng.integers(0, shape[0])))
        cv2.circle(mask, centre, int(rng.integers(4, 30)), 1, -1)
    return mask


def test_optical_density_lookup_equals_formula():
    rgb = np.random.default_rng(0).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    expected = -np.log((rgb.astype(np.float32) + 1.0) / 256.0)
    np.testing.assert_array_equal(optical_density(rgb), expected)


def test_stain_components_equal_projection_and_perpendicular_length():
    rng = np.random.default_rng(1)
    od = rng.uniform(0, 2, (40, 50, 3)).astype(np.float32)
    direction = np.array([0.2, 0.7, 0.5])
    model = StainModel(white=np.array([0.05, 0.1, 0.08], np.float32),
                       rbc_dir=(direction / np.linalg.norm(direction)).astype(np.float32))
    eosin, other = stain_components(od, model)
    rel = od.astype(np.float64) - model.white
    along = rel @ model.rbc_dir.astype(np.float64)
    perp = np.linalg.norm(rel - along[..., None] * model.rbc_dir, axis=-1)
    np.testing.assert_allclose(eosin, along, atol=1e-5)
    np.testing.assert_allclose(other, perp, atol=1e-5)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fill_holes_equals_ndimage(seed):
    ring = disks_mask(seed) - cv2.erode(disks_mask(seed), np.ones((5, 5), np.uint8))
    assert ring.any()
    np.testing.assert_array_equal(fill_holes(ring) > 0, ndi.binary_fill_holes(ring))


@pytest.mark.parametrize("seed", [3, 4])
def test_opening_areas_small_radii_equal_morphological_opening(seed):
    mask = disks_mask(seed)
    radii = np.array([1.0, 1.5, 2.2, 3.0, 4.5, 6.0])  # all dilated by the exact disk
    expected = [np.count_nonzero(cv2.morphologyEx(mask, cv2.MORPH_OPEN, euclidean_disk(r))) for r in radii]
    np.testing.assert_array_equal(opening_areas(mask, radii), expected)


def test_opening_areas_large_radii_within_two_percent_of_exact_opening():
    mask = disks_mask(5, shape=(300, 300), n=12)
    radii = np.array([9.0, 14.0, 20.0])  # chamfer distance transform
    exact = np.array([np.count_nonzero(cv2.morphologyEx(mask, cv2.MORPH_OPEN, euclidean_disk(r))) for r in radii])
    np.testing.assert_allclose(opening_areas(mask, radii), exact, rtol=0.02)


def pipeline_until_cells(rgb: np.ndarray, params: DefaultCRFParams):
    """The preset's intermediate maps of one image, up to ``cell_masks``' inputs."""
    from activessf.regions.adaptive_colour import fit_stain_model
    from activessf.regions.common import denoise

    blurred = denoise(rgb, params.blur_ksize, 0)
    eosin, other = stain_components(optical_density(blurred), fit_stain_model(blurred, params, 0))
    rbc_od = typical_rbc_density(eosin, other, params)
    stain = nuclear_stain_mask(eosin, other, rbc_od, params)
    red = red_cell_mask(eosin, stain, rbc_od)
    d = rbc_diameter(red, stain, params)
    labels, objects = stained_objects(stain, d, params)
    return blurred, labels, objects, eosin, other, red, d


@pytest.mark.parametrize("stem", ["BloodImage_00003", "BloodImage_00030", "BloodImage_00120"])
def test_watershed_window_gives_the_whole_image_cells(shared_data, stem, monkeypatch):
    rgb = cv2.imread(str(shared_data / "bccd" / "JPEGImages" / f"{stem}.jpg"))[..., ::-1].copy()
    params = DefaultCRFParams()
    args = pipeline_until_cells(rgb, params)
    assert any(o.kind == "nucleated" for o in args[2])
    windowed = cell_masks(*args, params)
    monkeypatch.setattr(grow, "nucleus_window", lambda *a: (slice(None), slice(None)))
    whole = cell_masks(*args, params)
    nucleated = [o.label for o in args[2] if o.kind == "nucleated"]
    np.testing.assert_array_equal(np.isin(windowed, nucleated) * windowed, np.isin(whole, nucleated) * whole)
    assert np.isin(windowed, nucleated).sum() > 1000  # real cells were compared


def test_bccd_recall_and_false_regions_on_every_ninth_smear(shared_data):
    """41 smears (every 9th of bccd), 40 annotated WBCs: before and after the speed work the
    preset matched 40 of them at IoU >= 0.5 with 1 false nucleated region."""
    paths = sorted((shared_data / "bccd" / "JPEGImages").glob("*.jpg"))[::9]
    params = DefaultCRFParams(keep_kinds=["nucleated"])
    hits = total = false = 0
    for path in paths:
        rgb = cv2.imread(str(path))[..., ::-1].copy()
        found = [(r.x, r.y, r.x + r.w, r.y + r.h) for r in find_regions_default(rgb, params, seed=0)]
        truth = voc_wbc(shared_data / "bccd" / "Annotations" / f"{path.stem}.xml")
        pairs = sorted(((iou(b, g), i, j) for i, b in enumerate(found) for j, g in enumerate(truth)), reverse=True)
        used_found, used_truth = set(), set()
        for value, i, j in pairs:
            if value >= 0.5 and i not in used_found and j not in used_truth:
                used_found.add(i)
                used_truth.add(j)
        hits, total, false = hits + len(used_truth), total + len(truth), false + len(found) - len(used_found)
    assert (len(paths), total) == (41, 40)
    assert hits / total >= 0.95
    assert false <= 2
