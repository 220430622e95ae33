"""Query strategies on small arrays whose right answer is known."""

import numpy as np
import pytest

from activessf.active.config import QueryConfig
from activessf.active.strategies import (
    entropy_uncertainty,
    k_center_greedy,
    margin_uncertainty,
    prototype_order,
    rank,
    rarity,
    uncertainty_order,
)
from activessf.config import ConfigError

PROBS = np.array([[0.9, 0.05, 0.05], [0.5, 0.45, 0.05], [0.34, 0.33, 0.33], [0.6, 0.2, 0.2]])


def test_margin_and_entropy():
    assert margin_uncertainty(PROBS) == pytest.approx([0.15, 0.95, 0.99, 0.6])
    e = entropy_uncertainty(PROBS)
    assert e[2] == pytest.approx(1.0, abs=1e-3) and e[0] < e[3] < e[2]
    assert entropy_uncertainty(np.array([[1.0, 0.0, 0.0]]))[0] == pytest.approx(0.0, abs=1e-9)


def test_uncertainty_order_most_uncertain_first():
    assert uncertainty_order(PROBS, 3).index.tolist() == [2, 1, 3]
    # Entropy sees the spread of the whole row: (0.6, 0.2, 0.2) is less sure than (0.5, 0.45, 0.05).
    assert uncertainty_order(PROBS, 2, "entropy").index.tolist() == [2, 3]


def test_rarity_weights_rare_classes():
    counts = np.array([100, 50, 0])
    assert rarity(np.eye(3), counts) == pytest.approx([0.0, 0.5, 1.0])


def test_k_center_greedy_picks_the_uncovered_corners():
    x = np.array([[0, 0], [0.1, 0], [10, 0], [10, 0.1], [0, 10]], float)
    r = k_center_greedy(x, np.array([[0.0, 0.0]]), 2)
    # Farthest from the labeled point first ((0,10) and (10,0.1) tie at ~10: (10,0.1) is farther).
    assert r.index.tolist() == [3, 4]
    assert r.score[0] == pytest.approx(np.hypot(10, 0.1))
    # Without labeled centres the first pick is the lowest index, then the farthest from it.
    assert k_center_greedy(x, np.zeros((0, 2)), 2).index.tolist() == [0, 3]


def test_weighted_k_center_prefers_weight_times_distance():
    x = np.array([[10, 0], [5, 0]], float)
    r = k_center_greedy(x, np.array([[0.0, 0.0]]), 1, weight=np.array([0.1, 1.0]))
    assert r.index.tolist() == [1]


def _clusters():
    """Labeled: a big cluster at (0,0) (20 rows) and a rare one at (10,10) (3 rows); pool near each."""
    rng = np.random.default_rng(0)
    big = rng.normal(0, 1, (20, 2))
    rare = np.array([[10, 10], [11, 10], [10, 11]], float)
    pool = np.array([[0.05, 0.0], [10.4, 10.4], [10.2, 10.3], [50, 50], [0.5, -0.3]])
    return np.vstack([big, rare]), pool


def test_prototype_rule_rare_cluster_first():
    labeled, pool = _clusters()
    r = prototype_order(pool, labeled, 5, k=2, alpha=1.0, seed=0)
    # The rare cluster's threshold is its UB (eq. 8 with n_i << n_max): both nearby cells are
    # candidates, the closest first. The big cluster's threshold is its LB, which no pool cell
    # here is within; non-candidates follow, the rare cluster's ((50, 50)) before the big one's,
    # each cluster's closest first.
    assert r.index.tolist() == [1, 2, 3, 0, 4]
    assert (r.score[:2] <= 1.0).all() and (r.score[2:] > 1.0).all()


def test_rank_never_proposes_unavailable_and_maps_back():
    rng = np.random.default_rng(1)
    probs = rng.dirichlet(np.ones(3), 40)
    emb = rng.normal(size=(40, 4))
    lab = rng.normal(size=(10, 4))
    available = np.ones(40, bool)
    available[::2] = False
    for strategy in ("default", "uncertainty", "prototype", "diversity", "random"):
        cfg = QueryConfig(strategy=strategy, k=3)
        r = rank(probs, emb, lab, np.array([5, 3, 2]), available, 8, cfg)
        assert len(r.index) == 8 and len(set(r.index.tolist())) == 8, strategy
        assert available[r.index].all(), strategy
    # Uncertainty through rank equals the plain order on the available rows.
    r = rank(probs, emb, lab, np.array([5, 3, 2]), available, 3, QueryConfig(strategy="uncertainty"))
    odd = np.flatnonzero(available)
    assert r.index.tolist() == odd[uncertainty_order(probs[odd], 3).index].tolist()


def test_random_is_seeded():
    probs, emb = np.full((30, 2), 0.5), np.eye(30)[:, :4]
    a = rank(probs, emb, emb[:3], np.array([1, 1]), np.ones(30, bool), 5, QueryConfig(strategy="random", seed=3))
    b = rank(probs, emb, emb[:3], np.array([1, 1]), np.ones(30, bool), 5, QueryConfig(strategy="random", seed=3))
    c = rank(probs, emb, emb[:3], np.array([1, 1]), np.ones(30, bool), 5, QueryConfig(strategy="random", seed=4))
    assert a.index.tolist() == b.index.tolist() != c.index.tolist()


def test_default_favours_rare_predictions_and_spreads():
    # Four equally uncertain cells: two predicted between the two rare classes (1, 2), two between
    # the common class 0 and class 1. The rare pair wins; the two rare cells are far apart.
    probs = np.array([[0.5, 0.5, 0], [0.5, 0.5, 0], [0, 0.5, 0.5], [0, 0.5, 0.5]])
    emb = np.array([[1, 0, 0], [1, 0.01, 0], [0, 1, 0], [0, 0, 1]], float)
    lab = np.array([[1, 1, 1]], float)
    r = rank(probs, emb, lab, np.array([100, 10, 1]), np.ones(4, bool), 2, QueryConfig())
    assert sorted(r.index.tolist()) == [2, 3]
    r0 = rank(probs, emb, lab, np.array([100, 10, 1]), np.ones(4, bool), 2, QueryConfig(rare_boost=0.0))
    # Without the rare weight, diversity alone keeps one of the near-duplicate pair 0/1 at most.
    assert not {0, 1} <= set(r0.index.tolist())


def test_config_rejects_unknown_strategy():
    with pytest.raises(ConfigError, match="query.strategy"):
        QueryConfig(strategy="bald")


def test_default_without_uncertainty_or_rarity_is_diversity():
    rng = np.random.default_rng(2)
    probs, emb, lab = rng.dirichlet(np.ones(3), 30), rng.normal(size=(30, 5)), rng.normal(size=(6, 5))
    args = (probs, emb, lab, np.array([5, 3, 2]), np.ones(30, bool), 7)
    flat = rank(*args, QueryConfig(uncertainty_floor=1.0, rare_boost=0.0, pool_factor=100))
    assert flat.index.tolist() == rank(*args, QueryConfig(strategy="diversity")).index.tolist()
    assert rank(*args, QueryConfig()).index.tolist() != flat.index.tolist()


def test_cells_asked_before_count_as_covered():
    # Pool directions: two near-duplicates at e1 (row 0 was queried last round and answered, or
    # "not a target cell"), one at e2, one at e3. The labeled set covers none of them.
    emb = np.array([[1, 0, 0], [1, 0.05, 0], [0, 1, 0], [0, 0.9, 0.1]], float)
    probs, lab, counts = np.full((4, 2), 0.5), np.array([[-1.0, -1.0, -1.0]]), np.array([5, 5])
    available = np.array([False, True, True, True])
    for strategy in ("diversity", "default"):
        cfg = QueryConfig(strategy=strategy)
        blind = rank(probs, emb, lab, counts, available, 2, cfg)
        seen = rank(probs, emb, lab, counts, available, 2, cfg, covered=~available)
        # Without the log, row 1 (a copy of what was just asked) is still "uncovered" and taken.
        assert 1 in blind.index.tolist(), strategy
        assert sorted(seen.index.tolist()) == [2, 3], strategy
    # The prototype rule fits its prototypes on the labeled set only: the log does not move them.
    cfg = QueryConfig(strategy="prototype", k=1)
    assert (rank(probs, emb, lab, counts, available, 3, cfg).index.tolist()
            == rank(probs, emb, lab, counts, available, 3, cfg, covered=~available).index.tolist())
