import numpy as np
import pytest

from activessf.regions.merge import merge_centres_ward, ward_init, weighted_lloyd


def test_ward_init_merges_the_cheapest_pair_by_weight():
    pts = np.array([[0.0, 0, 0], [10, 0, 0], [200, 0, 0], [210, 0, 0]])
    # Heavy points stay nearly put: the pair with the tiny weight is merged first.
    out = ward_init(pts, np.array([100, 100, 1, 1]), 3)
    assert sorted(out[:, 0].tolist()) == pytest.approx([0.0, 10.0, 205.0])


def test_weighted_lloyd_means_are_count_weighted():
    pts = np.array([[0.0, 0, 0], [10, 0, 0], [200, 0, 0], [210, 0, 0]])
    c, lab = weighted_lloyd(pts, np.array([3, 1, 1, 1]), np.array([[1.0, 0, 0], [190, 0, 0]]), 30)
    assert c[lab[0], 0] == pytest.approx(2.5)
    assert c[lab[2], 0] == pytest.approx(205.0)


def test_merge_centres_ward_is_deterministic_and_maps_to_nearest():
    rng = np.random.default_rng(0)
    centres = rng.random((20, 3)) * 255
    counts = rng.integers(0, 5000, 20)
    merged, mapping = merge_centres_ward(centres, counts, 10, 50)
    again, mapping2 = merge_centres_ward(centres, counts, 10, 50)
    assert merged.shape == (10, 3) and np.array_equal(merged, again) and np.array_equal(mapping, mapping2)
    d = np.square(centres[:, None] - merged[None].astype(np.float64)).sum(2)
    assert np.array_equal(mapping, d.argmin(1))
