import cv2
import numpy as np
import pytest

from activessf.regions.common import (
    assign_colours,
    colour_keys,
    connected_regions,
    denoise,
    fit_colour_kmeans,
    merge_centres,
    nearest_centre,
    nearest_flag_mask,
    sample_pixels,
    stretch_contrast,
)


def _disk(size: int, radius: int) -> np.ndarray:
    mask = np.zeros((size, size), np.uint8)
    cv2.circle(mask, (size // 2, size // 2), radius, 1, thickness=-1)
    return mask


def test_stretch_maps_each_channel_to_full_range_and_keeps_constant_channel():
    rng = np.random.default_rng(0)
    img = rng.integers(40, 200, (30, 40, 3), dtype=np.uint8)
    img[..., 2] = 77
    out = stretch_contrast(img)
    assert out.dtype == np.uint8 and out.shape == img.shape
    for c in (0, 1):
        assert out[..., c].min() == 0 and out[..., c].max() == 255
        lo, hi = int(img[..., c].min()), int(img[..., c].max())
        expected = np.rint((img[..., c].astype(float) - lo) * 255 / (hi - lo))
        assert np.abs(out[..., c] - expected).max() <= 1
    assert (out[..., 2] == 77).all()


def test_denoise_spreads_an_impulse_and_keeps_shape():
    img = np.zeros((9, 9, 3), np.uint8)
    img[4, 4] = 255
    out = denoise(img, 3, 1.5)
    assert out.shape == img.shape and out.dtype == np.uint8
    assert 0 < out[4, 4, 0] < 255 and out[3, 3, 0] > 0 and out[0, 0, 0] == 0


def test_sample_pixels_is_seeded_and_zero_means_all():
    img = np.random.default_rng(1).integers(0, 256, (50, 60, 3), dtype=np.uint8)
    a, b, c = sample_pixels(img, 100, 7), sample_pixels(img, 100, 7), sample_pixels(img, 100, 8)
    assert a.shape == (100, 3) and a.dtype == np.float32
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert sample_pixels(img, 0, 0).shape == (3000, 3)
    assert sample_pixels(img, 10**6, 0).shape == (3000, 3)


def test_fit_colour_kmeans_finds_two_separated_colours_deterministically():
    rng = np.random.default_rng(2)
    pts = np.concatenate([rng.normal(30, 3, (300, 3)), rng.normal(200, 3, (100, 3))]).astype(np.float32)
    centres, labels = fit_colour_kmeans(pts, 2, 30, seed=3)
    assert sorted(np.rint(centres[:, 0]).tolist()) == pytest.approx([30, 200], abs=2)
    assert np.bincount(labels).tolist() in ([300, 100], [100, 300])
    again, _ = fit_colour_kmeans(pts, 2, 30, seed=3)
    assert np.array_equal(centres, again)


def test_merge_centres_is_count_weighted():
    centres = np.array([[0, 0, 0], [10, 0, 0], [200, 200, 200], [210, 200, 200]], np.float32)
    merged, mapping = merge_centres(centres, np.array([3, 1, 1, 1]), 2, 30, seed=0)
    assert mapping[0] == mapping[1] and mapping[2] == mapping[3] and mapping[0] != mapping[2]
    assert merged[mapping[0], 0] == pytest.approx(2.5)  # (3*0 + 1*10) / 4, not the plain mean 5
    assert merged[mapping[2], 0] == pytest.approx(205.0)


@pytest.mark.parametrize("bits", [3, 5, 6])
def test_colour_keys_pack_the_top_bits(bits):
    img = np.random.default_rng(3).integers(0, 256, (13, 17, 3), dtype=np.uint8)
    q = img.astype(np.int64) >> (8 - bits)
    expected = (q[..., 0] << (2 * bits)) | (q[..., 1] << bits) | q[..., 2]
    keys = colour_keys(img, bits)
    assert keys.shape == (13, 17) and np.array_equal(keys, expected)


@pytest.mark.parametrize("bits", [3, 5])
def test_nearest_flag_mask_equals_brute_force(bits):
    rng = np.random.default_rng(4)
    img = rng.integers(0, 256, (64, 80, 3), dtype=np.uint8)
    centres = rng.uniform(0, 255, (12, 3)).astype(np.float32)
    flags = rng.random(12) < 0.4
    brute = flags[nearest_centre(img.reshape(-1, 3), centres)].reshape(64, 80)
    assert np.array_equal(nearest_flag_mask(img, colour_keys(img, bits), centres, flags, bits), brute)


def test_nearest_flag_mask_with_all_flags_equal():
    img = np.random.default_rng(5).integers(0, 256, (8, 8, 3), dtype=np.uint8)
    centres = np.array([[0, 0, 0], [255, 255, 255]], np.float32)
    keys = colour_keys(img, 5)
    assert nearest_flag_mask(img, keys, centres, np.array([True, True]), 5).all()
    assert not nearest_flag_mask(img, keys, centres, np.array([False, False]), 5).any()


def test_assign_colours_labels_clear_cases_exactly():
    img = np.zeros((4, 4, 3), np.uint8)
    img[:2] = (250, 10, 10)
    img[2:] = (10, 10, 250)
    labels = assign_colours(img, np.array([[0, 0, 255], [255, 0, 0]], np.float32))
    assert (labels[:2] == 1).all() and (labels[2:] == 0).all()


def test_connected_regions_keeps_big_full_disk_only():
    mask = np.zeros((300, 400), np.uint8)
    mask[20:121, 20:121] = _disk(101, 50)  # 101x101 box, fill ~0.78
    mask[200:251, 20:71] = _disk(51, 25)  # too small
    ring = _disk(101, 50) - _disk(101, 40)  # big box, fill ~0.28
    mask[150:251, 250:351] = ring
    regions = connected_regions(mask.astype(bool), 70, 70, 0.7)
    assert len(regions) == 1
    r = regions[0]
    assert (r.x, r.y, r.w, r.h) == (20, 20, 101, 101)
    assert r.area == int(_disk(101, 50).sum())
    assert r.fill_rate == pytest.approx(r.area / (101 * 101)) and r.fill_rate >= 0.7
    assert len(connected_regions(mask, 70, 70, 0.2)) == 2  # the ring passes a laxer fill rule


def test_connected_regions_uses_8_connectivity_and_box_sides():
    diag = np.eye(80, dtype=np.uint8)  # one 8-connected diagonal line, 80x80 box
    regions = connected_regions(diag, 70, 70, 0.0)
    assert len(regions) == 1 and regions[0].area == 80
    wide = np.zeros((100, 200), np.uint8)
    wide[10:50, 10:190] = 1  # 180 wide, 40 high: fails min height
    assert connected_regions(wide, 70, 70, 0.7) == []
    assert len(connected_regions(wide, 70, 40, 0.7)) == 1
    assert connected_regions(np.zeros((20, 20), bool), 1, 1, 0.0) == []
