import cv2
import numpy as np
import pytest

from activessf.io.decode import decode_image
from activessf.regions.common import nearest_centre
from activessf.regions.config import PaperCRFParams
from activessf.regions.paper import (
    find_regions_paper,
    fit_palette,
    paper_stain_mask,
    preprocess,
    stain_of_colours,
)

PURPLE = (90, 40, 140)  # OpenCV HSV (135, 182, 140): inside the purple range
PINK = (240, 200, 210)  # HSV (173, 43, 240): red-cell pink, outside both ranges
# Pinned so a later change of the config defaults does not silently change these outcomes.
PARAMS = PaperCRFParams(fit_pixels=1024)


def _smear(disks: list[tuple[int, int, int, int]]) -> np.ndarray:
    """Pink 300x400 background with black and white anchors (so the min-max stretch is a no-op)."""
    img = np.full((300, 400, 3), PINK, np.uint8)
    img[:4, :4] = 0
    img[-4:, -4:] = 255
    for cx, cy, outer, inner in disks:
        cv2.circle(img, (cx, cy), outer, PURPLE, thickness=-1)
        if inner:
            cv2.circle(img, (cx, cy), inner, PINK, thickness=-1)
    return img


def _real(shared_data, name: str) -> np.ndarray:
    return decode_image((shared_data / "pbc11" / "unlabeled" / name).read_bytes()).image


def test_stain_of_colours_follows_the_published_hsv_ranges():
    white, blue, green = (250, 250, 250), (30, 90, 200), (40, 160, 40)
    orange, black = (230, 150, 60), (0, 0, 0)
    colours = np.array([PURPLE, PINK, white, blue, green, orange, black])
    # Blue (H 109) and green (H 60) fall inside the published purple band (H 30-140, S >= 100).
    assert stain_of_colours(colours, PARAMS).tolist() == [True, False, False, True, True, False, False]


def test_big_purple_disk_is_kept_small_disk_and_thin_ring_are_not():
    img = _smear([(80, 80, 50, 0), (80, 230, 25, 0), (280, 150, 50, 42)])
    mask = paper_stain_mask(img, PARAMS, seed=0)
    assert mask.shape == (300, 400) and mask.dtype == np.bool_
    assert mask[80, 80] and mask[230, 80] and mask[150, 280 + 46] and not mask[150, 280]
    regions = find_regions_paper(img, PARAMS, seed=0)
    assert len(regions) == 1
    r = regions[0]
    assert abs(r.x - 30) <= 2 and abs(r.y - 30) <= 2 and abs(r.w - 101) <= 4 and abs(r.h - 101) <= 4
    assert r.fill_rate == pytest.approx(np.pi / 4, abs=0.03)
    assert r.kind == "cell"


def test_background_only_image_has_no_regions():
    img = _smear([])
    assert not paper_stain_mask(img, PARAMS, seed=0).any()
    assert find_regions_paper(img, PARAMS, seed=0) == []


def test_same_seed_gives_the_same_mask_and_regions(shared_data):
    img = _real(shared_data, "u00029.jpg")
    a, b = paper_stain_mask(img, PARAMS, 2), paper_stain_mask(img, PARAMS, 2)
    assert np.array_equal(a, b)
    assert find_regions_paper(img, PARAMS, 2) == find_regions_paper(img, PARAMS, 2)


def test_mask_equals_hsv_of_the_fully_quantised_image(shared_data):
    """Given the fitted palette, the lookup-table mask is the literal mask, pixel for pixel."""
    for name in ("u00000.jpg", "u00029.jpg"):
        img = _real(shared_data, name)
        smooth = preprocess(img, PARAMS)
        centres, mapping, merged = fit_palette(smooth, PARAMS, seed=1)
        colours = np.clip(np.rint(merged), 0, 255).astype(np.uint8)
        quantised = colours[mapping[nearest_centre(smooth.reshape(-1, 3), centres)]].reshape(smooth.shape)
        hsv = cv2.cvtColor(quantised, cv2.COLOR_RGB2HSV)
        purple = cv2.inRange(hsv, np.array(PARAMS.purple_lower), np.array(PARAMS.purple_upper))
        blue = cv2.inRange(hsv, np.array(PARAMS.blue_lower), np.array(PARAMS.blue_upper))
        assert np.array_equal(paper_stain_mask(img, PARAMS, seed=1), (purple | blue) > 0)


def test_real_nucleus_is_found_and_kept_regions_obey_the_rules(shared_data):
    img = _real(shared_data, "u00029.jpg")  # one compact nucleus near the centre of a 360x363 image
    mask = paper_stain_mask(img, PARAMS, seed=2)
    assert 0.01 < mask.mean() < 0.2
    regions = find_regions_paper(img, PARAMS, seed=2)
    assert len(regions) == 1
    r = regions[0]
    assert r.w >= 70 and r.h >= 70 and r.fill_rate >= 0.7
    assert 100 < r.x + r.w / 2 < 260 and 100 < r.y + r.h / 2 < 260
    assert mask[r.y : r.y + r.h, r.x : r.x + r.w].sum() >= r.area


def test_lobed_nucleus_is_rejected_by_the_fill_rule(shared_data):
    # u00000's stained regions are lobes with fill rates ~0.2-0.3: the published rule keeps none.
    img = _real(shared_data, "u00000.jpg")
    assert paper_stain_mask(img, PARAMS, seed=0).sum() > 1000
    assert find_regions_paper(img, PARAMS, seed=0) == []
