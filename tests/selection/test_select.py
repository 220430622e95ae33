"""Eq. 9, chunking, the budget, cosine distances and determinism."""

import numpy as np
import pytest

from activessf.selection import (
    assign_nearest,
    budget_order,
    cluster_thresholds,
    fit_prototypes,
    select,
)
from tests.selection.test_thresholds import CENTRES, LABELS, MEMBERS

# Thresholds for alpha = 1 are [1, 2, 2] (see test_thresholds).
CANDIDATES = np.array(
    [[0, 0.5], [0, 1.5], [12, 0], [10, 2.5], [0, 8], [5, 5.1]], dtype=np.float64
)


def test_eq9_hand_computed():
    thr = cluster_thresholds(MEMBERS, CENTRES, LABELS, alpha=1.0).threshold
    r = select(CANDIDATES, CENTRES, thr)
    np.testing.assert_array_equal(r.cluster, [0, 0, 1, 1, 2, 2])
    np.testing.assert_allclose(r.distance, [0.5, 1.5, 2.0, 2.5, 2.0, np.hypot(5, 4.9)])
    np.testing.assert_allclose(r.threshold, [1, 1, 2, 2, 2, 2])
    # Distance exactly equal to the threshold is kept (<=).
    np.testing.assert_array_equal(r.selected, [True, False, True, False, True, False])
    np.testing.assert_array_equal(r.candidate, r.selected)


def test_alpha_zero_widens_every_cluster_to_ub():
    thr = cluster_thresholds(MEMBERS, CENTRES, LABELS, alpha=0.0).threshold
    r = select(CANDIDATES, CENTRES, thr)
    np.testing.assert_array_equal(r.selected, [True, True, True, True, True, False])


def test_training_members_on_the_bounds_select_themselves():
    s = cluster_thresholds(MEMBERS, CENTRES, LABELS, alpha=1.0)
    r = select(MEMBERS, CENTRES, s.threshold)
    # Each cluster's closest member sits at LB <= threshold.
    for i in range(3):
        closest = np.flatnonzero(LABELS == i)[np.argmin(r.distance[LABELS == i])]
        assert r.selected[closest]


def test_empty_cluster_nan_threshold_selects_nothing():
    centres = np.vstack([CENTRES, [[100.0, 100.0]]])
    s = cluster_thresholds(MEMBERS, centres, LABELS, alpha=1.0)
    r = select(np.array([[100.0, 100.0]]), centres, s.threshold)
    assert r.cluster[0] == 3 and r.distance[0] == 0.0 and not r.selected[0]


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_chunked_equals_unchunked(metric):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(1003, 16)).astype(np.float32)
    c = rng.normal(size=(5, 16))
    whole = assign_nearest(x, c, metric, batch_size=10**6)
    for bs in (1, 7, 256):
        part = assign_nearest(x, c, metric, batch_size=bs)
        np.testing.assert_array_equal(part[0], whole[0])
        np.testing.assert_array_equal(part[1], whole[1])


def test_budget_spreads_over_clusters_closest_first():
    centres = np.array([[0.0], [100.0], [200.0]])
    thr = np.array([10.0, 10.0, 10.0])
    # Cluster 0: 6 candidates, cluster 1: 3, cluster 2: 1, plus one non-candidate.
    x = np.array([[5], [1], [4], [2], [6], [3], [103], [101], [109], [200], [150]], dtype=float)
    r = select(x, centres, thr, budget=6)
    assert r.candidate.sum() == 10 and r.selected.sum() == 6
    assert np.bincount(r.cluster[r.selected], minlength=3).tolist() == [3, 2, 1]
    # Round robin: rounds {1, 101, 200}, {2, 103}, then cluster 0's third closest (3).
    assert sorted(x[r.selected, 0].tolist()) == [1, 2, 3, 101, 103, 200]
    assert select(x, centres, thr, budget=100).selected.sum() == 10
    assert select(x, centres, thr, budget=0).selected.sum() == 0


def test_budget_order_ranks_relative_to_threshold_and_breaks_ties_by_index():
    order = budget_order(np.array([0, 0, 1, 1]), np.array([0.5, 0.1, 0.5, 0.5]))
    # Round 0 holds each cluster's best: row 1 (0.1), row 2 (0.5; ties with row 3 by index).
    # Round 1: rows 0 and 3 both at 0.5, so index order.
    assert order.tolist() == [1, 2, 0, 3]


def test_permuting_rows_permutes_the_result():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(300, 8))
    c = rng.normal(size=(4, 8))
    thr = np.full(4, 3.5)
    perm = rng.permutation(300)
    a, b = select(x, c, thr), select(x[perm], c, thr)
    np.testing.assert_array_equal(a.selected[perm], b.selected)
    assert 0 < a.selected.sum() < 300


def blobs(seed=0):
    rng = np.random.default_rng(seed)
    means = np.array([[0, 0, 0], [8, 0, 0], [0, 8, 0]], dtype=float)
    sizes = [60, 25, 5]  # long-tailed
    x = np.vstack([rng.normal(m, 0.5, size=(n, 3)) for m, n in zip(means, sizes)])
    return x, np.repeat(np.arange(3), sizes)


def test_kmeans_recovers_blobs_and_is_seed_deterministic():
    x, truth = blobs()
    c1, l1 = fit_prototypes(x, k=3, n_init=3, seed=7)
    c2, l2 = fit_prototypes(x, k=3, n_init=3, seed=7)
    np.testing.assert_array_equal(c1, c2)
    np.testing.assert_array_equal(l1, l2)
    # Same partition as the generating blobs (up to relabelling).
    for t in range(3):
        assert len(set(l1[truth == t])) == 1
    assert len(set(l1)) == 3
    # Another seed may permute ids but finds the same partition.
    _, l3 = fit_prototypes(x, k=3, n_init=3, seed=8)
    for t in range(3):
        assert len(set(l3[truth == t])) == 1


def test_rare_blob_gets_the_widest_relative_threshold():
    x, truth = blobs()
    c, labels = fit_prototypes(x, k=3, n_init=3, seed=0)
    s = cluster_thresholds(x, c, labels, alpha=1.0)
    rare, big = labels[truth == 2][0], labels[truth == 0][0]
    assert s.threshold[big] == s.lb[big]
    rel = (s.threshold - s.lb) / (s.ub - s.lb)
    assert rel[rare] == pytest.approx(1 - 5 / 60)


def test_cosine_groups_by_direction_and_ignores_scale():
    rng = np.random.default_rng(0)
    # 32 rows near the x-axis, 8 near the y-axis, each with a random length.
    angles = np.concatenate([rng.uniform(0, 0.2, 32), rng.uniform(np.pi / 2 - 0.2, np.pi / 2, 8)])
    x = rng.uniform(1, 20, size=(40, 1)) * np.stack([np.cos(angles), np.sin(angles)], axis=1)
    c, labels = fit_prototypes(x, k=2, n_init=2, seed=0, metric="cosine")
    assert len(set(labels[:32])) == 1 and len(set(labels[32:])) == 1 and labels[0] != labels[-1]
    s = cluster_thresholds(x, c, labels, alpha=1.0, metric="cosine")
    small = labels[-1]
    # Along the small cluster's centre (distance 0), and at 45 degrees (between both).
    probe = np.array([3.0 * c[small], [1.0, 1.0]])
    r1 = select(probe, c, s.threshold, metric="cosine")
    r2 = select(probe * 50, c, s.threshold, metric="cosine")
    np.testing.assert_allclose(r1.distance, r2.distance, atol=1e-12)
    assert r1.cluster[0] == small and r1.distance[0] == pytest.approx(0.0, abs=1e-12)
    assert r1.selected.tolist() == [True, False]
    cu = c[r1.cluster[1]] / np.linalg.norm(c[r1.cluster[1]])
    assert r1.distance[1] == pytest.approx(1 - cu @ [1, 1] / np.sqrt(2))


def test_full_pipeline_same_seed_same_selection():
    x, _ = blobs()
    pool, _ = blobs(seed=3)
    pool = np.vstack([pool, np.random.default_rng(3).normal(pool, 0.3)])

    def run():
        c, labels = fit_prototypes(x, k=3, n_init=2, seed=5)
        s = cluster_thresholds(x, c, labels, alpha=0.5)
        return select(pool, c, s.threshold, budget=20)

    a, b = run(), run()
    np.testing.assert_array_equal(a.selected, b.selected)
    assert a.selected.sum() == 20


def test_empty_pool_and_bad_thresholds():
    r = select(np.zeros((0, 2)), CENTRES, np.ones(3))
    assert r.selected.shape == (0,)
    with pytest.raises(ValueError, match="thresholds"):
        select(CANDIDATES, CENTRES, np.ones(2))
    with pytest.raises(ValueError, match="at least k"):
        fit_prototypes(np.zeros((2, 2)), k=3)
