"""The ``default`` CRF preset: synthetic smears (scale and stain adaptivity) and real images."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import cv2
import numpy as np
import pytest

from activessf.config import ConfigError
from activessf.regions.adaptive import find_regions_default
from activessf.regions.adaptive_colour import fit_stain_model, optical_density, stain_components
from activessf.regions.adaptive_scale import rbc_diameter
from activessf.regions.config import DefaultCRFParams

BACKGROUND = (236, 230, 226)
RBC = (214, 150, 158)
PALLOR = (226, 196, 198)
NUCLEUS = (112, 60, 160)
CYTOPLASM = (212, 196, 224)


def smear(d: int = 40, nucleus=NUCLEUS, seed: int = 0, wbc: bool = True, platelet: bool = True):
    """A synthetic smear: pale background, pink red cells of diameter ``d``, one neutrophil-like
    white cell (three-lobed nucleus in lilac cytoplasm, cell diameter 1.8 d) and one platelet.

    Returns:
        ``(rgb [H, W, 3] uint8, wbc_box (x0, y0, x1, y1), platelet_centre (x, y))``.
    """
    rng = np.random.default_rng(seed)
    h, w = 8 * d, 10 * d
    img = np.zeros((h, w, 3), np.uint8)
    img[:] = BACKGROUND
    cx, cy, r_cell = int(5 * d), int(4 * d), int(0.9 * d)
    px, py = int(1.2 * d), int(6.8 * d)
    placed = [(cx, cy, r_cell + d // 2), (px, py, d // 2)]
    for _ in range(400):
        x, y = int(rng.integers(d // 2, w - d // 2)), int(rng.integers(d // 2, h - d // 2))
        if all((x - a) ** 2 + (y - b) ** 2 > (d // 2 + r + 2) ** 2 for a, b, r in placed):
            cv2.circle(img, (x, y), d // 2, RBC, -1, cv2.LINE_AA)
            cv2.circle(img, (x, y), d // 5, PALLOR, -1, cv2.LINE_AA)
            placed.append((x, y, d // 2))
    if wbc:
        cv2.circle(img, (cx, cy), r_cell, CYTOPLASM, -1, cv2.LINE_AA)
        for dx, dy in ((-0.35, -0.15), (0.0, 0.25), (0.35, -0.1)):
            cv2.circle(img, (cx + int(dx * d), cy + int(dy * d)), int(0.25 * d), nucleus, -1, cv2.LINE_AA)
    if platelet:
        cv2.circle(img, (px, py), max(2, int(0.15 * d)), nucleus, -1, cv2.LINE_AA)
    noise = rng.normal(0, 3, img.shape)
    img = np.clip(cv2.GaussianBlur(img, (0, 0), 0.03 * d) + noise, 0, 255).astype(np.uint8)
    return img, (cx - r_cell, cy - r_cell, cx + r_cell, cy + r_cell), (px, py)


def iou(a, b) -> float:
    iw = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def boxes(regions, kind: str):
    return [(r.x, r.y, r.x + r.w, r.y + r.h) for r in regions if r.kind == kind]


def hue_rotate(rgb: np.ndarray, degrees: float) -> np.ndarray:
    hsv = cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV)
    hsv[..., 0] = ((hsv[..., 0].astype(int) + int(degrees / 2)) % 180).astype(np.uint8)
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)


@pytest.mark.parametrize("diameter", [16, 40, 90])
def test_rbc_diameter_of_touching_and_overlapping_disks(diameter):
    rng = np.random.default_rng(diameter)
    mask = np.zeros((12 * diameter, 16 * diameter), np.uint8)
    for _ in range(60):
        centre = (int(rng.integers(0, mask.shape[1])), int(rng.integers(0, mask.shape[0])))
        cv2.circle(mask, centre, diameter // 2, 1, -1)
    d = rbc_diameter(mask > 0, np.zeros(mask.shape, bool), DefaultCRFParams())
    assert abs(d - diameter) <= 0.15 * diameter


def test_red_cells_carry_no_other_dye_whatever_their_density():
    img, _, _ = smear()
    model = fit_stain_model(img, DefaultCRFParams(), seed=0)
    colours = np.array([[RBC, PALLOR, NUCLEUS]], np.uint8)
    eosin, other = stain_components(optical_density(colours), model)
    # Red cell and its pale centre: eosin only; the nucleus: mostly the other dye.
    assert other[0, 0] < 0.2 * eosin[0, 0] and other[0, 1] < 0.2 * eosin[0, 1]
    assert other[0, 2] > eosin[0, 2] * 0.5 and other[0, 2] > 5 * other[0, 0]


def test_synthetic_white_cell_and_platelet_are_found_and_told_apart():
    img, wbc_box, (px, py) = smear()
    regions = find_regions_default(img, DefaultCRFParams(), seed=0)
    nucleated, platelets = boxes(regions, "nucleated"), boxes(regions, "platelet")
    assert len(nucleated) == 1 and iou(nucleated[0], wbc_box) >= 0.6
    # The three lobes are one cell, and the box covers the cytoplasm, not just the lobes.
    assert nucleated[0][2] - nucleated[0][0] >= 0.9 * (wbc_box[2] - wbc_box[0])
    assert any(b[0] <= px <= b[2] and b[1] <= py <= b[3] for b in platelets)


@pytest.mark.parametrize("factor", [0.5, 2.0])
def test_scale_adaptive_same_scene_resized(factor):
    img, wbc_box, _ = smear(d=40)
    interpolation = cv2.INTER_AREA if factor < 1 else cv2.INTER_LINEAR
    big = cv2.resize(img, None, fx=factor, fy=factor, interpolation=interpolation)
    nucleated = boxes(find_regions_default(big, DefaultCRFParams(), seed=0), "nucleated")
    assert len(nucleated) == 1
    assert iou(nucleated[0], tuple(v * factor for v in wbc_box)) >= 0.6


@pytest.mark.parametrize("nucleus", [(60, 80, 170), (150, 40, 120)], ids=["deep-blue", "magenta"])
def test_stain_adaptive_other_nuclear_hue(nucleus):
    img, wbc_box, _ = smear(nucleus=nucleus)
    nucleated = boxes(find_regions_default(img, DefaultCRFParams(), seed=0), "nucleated")
    assert len(nucleated) == 1 and iou(nucleated[0], wbc_box) >= 0.6


@pytest.mark.parametrize("degrees", [-30, 30])
def test_stain_adaptive_whole_image_hue_rotation(degrees):
    img, wbc_box, _ = smear()
    nucleated = boxes(find_regions_default(hue_rotate(img, degrees), DefaultCRFParams(), seed=0), "nucleated")
    assert len(nucleated) == 1 and iou(nucleated[0], wbc_box) >= 0.6


def test_red_cells_only_give_no_nucleated_region():
    img, _, _ = smear(wbc=False, platelet=False)
    assert boxes(find_regions_default(img, DefaultCRFParams(), seed=0), "nucleated") == []


def test_keep_kinds_and_determinism():
    img, _, _ = smear(seed=3)
    both = find_regions_default(img, DefaultCRFParams(), seed=5)
    assert both == find_regions_default(img, DefaultCRFParams(), seed=5)
    only = find_regions_default(img, DefaultCRFParams(keep_kinds=["nucleated"]), seed=5)
    assert {r.kind for r in both} == {"nucleated", "platelet"}
    assert only == [r for r in both if r.kind == "nucleated"]


def test_blank_image_gives_nothing():
    assert find_regions_default(np.full((120, 160, 3), 230, np.uint8), DefaultCRFParams(), seed=0) == []


def test_params_are_validated():
    with pytest.raises(ConfigError, match="keep_kinds"):
        DefaultCRFParams(keep_kinds=["wbc"])
    with pytest.raises(ConfigError, match="min_nucleated_d"):
        DefaultCRFParams(min_platelet_d=0.8, min_nucleated_d=0.6)


def voc_wbc(path):
    out = []
    for obj in ET.parse(path).getroot().iter("object"):
        if obj.find("name").text == "WBC":
            b = obj.find("bndbox")
            out.append(tuple(float(b.find(k).text) for k in ("xmin", "ymin", "xmax", "ymax")))
    return out


@pytest.mark.parametrize("stem", ["BloodImage_00000", "BloodImage_00016", "BloodImage_00099", "BloodImage_00200",
                                  "BloodImage_00300"])
def test_real_bccd_white_cell_matched(shared_data, stem):
    bgr = cv2.imread(str(shared_data / "bccd" / "JPEGImages" / f"{stem}.jpg"))
    regions = find_regions_default(bgr[..., ::-1].copy(), DefaultCRFParams(keep_kinds=["nucleated"]), seed=0)
    gt = voc_wbc(shared_data / "bccd" / "Annotations" / f"{stem}.xml")
    found = boxes(regions, "nucleated")
    assert all(max((iou(b, g) for b in found), default=0) >= 0.5 for g in gt)
    assert len(found) <= len(gt) + 1


@pytest.mark.parametrize("cls", ["SNE", "LY", "EO", "ERB", "PLATELET"])
def test_real_pbc11_central_cell(shared_data, cls):
    path = min((shared_data / "pbc11" / "labeled" / cls).glob("*.jpg"))
    rgb = cv2.imread(str(path))[..., ::-1].copy()
    h, w = rgb.shape[:2]
    regions = find_regions_default(rgb, DefaultCRFParams(), seed=0)
    central = [r for r in regions if r.x <= w / 2 <= r.x + r.w and r.y <= h / 2 <= r.y + r.h]
    assert central
    # Kinds are by size: this PLATELET image holds a giant platelet, as big as a nucleus.
    if cls != "PLATELET":
        assert central[0].kind == "nucleated"
