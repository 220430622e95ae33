"""Eq. 8 on hand-built clusters whose distances are known exactly."""

import numpy as np
import pytest

from activessf.selection import cluster_thresholds, density_threshold

CENTRES = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
# Cluster 0: 4 members at distances 1, 2, 3, 4 (n_max = 4).
# Cluster 1: 2 members at distances 1, 3.
# Cluster 2: 1 member at distance 2.
MEMBERS = np.array(
    [[1, 0], [0, 2], [-3, 0], [0, -4], [11, 0], [10, 3], [0, 12]], dtype=np.float64
)
LABELS = np.array([0, 0, 0, 0, 1, 1, 2])


def stats(alpha, **kw):
    return cluster_thresholds(MEMBERS, CENTRES, LABELS, alpha=alpha, **kw)


def test_bounds_and_sizes():
    s = stats(1.0)
    np.testing.assert_array_equal(s.size, [4, 2, 1])
    np.testing.assert_allclose(s.lb, [1, 1, 2])
    np.testing.assert_allclose(s.ub, [4, 3, 2])


@pytest.mark.parametrize(
    "alpha, expected",
    [
        # cluster 1: 1 + (3 - 1) * (1 - 2/4) ** alpha
        (1.0, [1.0, 2.0, 2.0]),
        (0.5, [1.0, 1.0 + 2.0 * np.sqrt(0.5), 2.0]),
        (2.0, [1.0, 1.5, 2.0]),
        # 0 ** 0 == 1: every cluster, the largest included, gets UB.
        (0.0, [4.0, 3.0, 2.0]),
    ],
)
def test_eq8_thresholds(alpha, expected):
    np.testing.assert_allclose(stats(alpha).threshold, expected)


def test_largest_cluster_threshold_is_lb_and_single_member_has_lb_equal_ub():
    for alpha in (0.25, 1.0, 3.0):
        s = stats(alpha)
        assert s.threshold[0] == s.lb[0] == 1.0  # n_i = n_max
        assert s.lb[2] == s.ub[2] == s.threshold[2] == 2.0  # single member


def test_quantile_bounds_replace_min_and_max():
    s = stats(1.0, lb_quantile=0.5, ub_quantile=0.5)
    # Cluster 0 distances 1, 2, 3, 4: median 2.5 (linear interpolation).
    assert s.lb[0] == pytest.approx(2.5) and s.ub[0] == pytest.approx(2.5)
    s = stats(1.0, lb_quantile=0.0, ub_quantile=1.0)
    np.testing.assert_allclose(s.lb, stats(1.0).lb)
    np.testing.assert_allclose(s.ub, stats(1.0).ub)


def test_empty_cluster_gets_nan_and_others_unchanged():
    centres = np.vstack([CENTRES, [[100.0, 100.0]]])
    s = cluster_thresholds(MEMBERS, centres, LABELS, alpha=1.0)
    assert s.size[3] == 0 and np.isnan(s.lb[3]) and np.isnan(s.threshold[3])
    np.testing.assert_allclose(s.threshold[:3], [1.0, 2.0, 2.0])


def test_invalid_inputs():
    with pytest.raises(ValueError, match="alpha"):
        density_threshold(np.ones(2), np.ones(2), np.array([1, 2]), alpha=-1.0)
    with pytest.raises(ValueError, match="labels"):
        cluster_thresholds(MEMBERS, CENTRES, np.array([0, 0, 0, 0, 1, 1, 5]), alpha=1.0)
