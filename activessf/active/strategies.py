"""Query strategies: scored pool cells -> the order in which to ask for their labels (pure numpy).

Every strategy takes the pool's probabilities ``[N, K]`` and embedding ``[N, D]`` (the final
model's penultimate features), the labeled set's embedding and class counts, and a mask of the
cells that may be proposed (already labeled and already queried cells are masked out by the
caller), and returns at most ``budget`` pool indices, first to label first, with a score each.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from activessf.active.config import QueryConfig
from activessf.selection.distances import chunks
from activessf.selection.prototypes import fit_prototypes
from activessf.selection.select import assign_nearest
from activessf.selection.thresholds import cluster_thresholds


@dataclass
class Ranking:
    """A strategy's answer: ``index`` ``[B]`` pool rows in query order, ``score`` ``[B]`` float64."""

    index: np.ndarray
    score: np.ndarray


def margin_uncertainty(probs: np.ndarray) -> np.ndarray:
    """``1 - (p_top1 - p_top2)`` per row of ``[N, K]`` probabilities: 1 = a tie, 0 = certain."""
    if probs.shape[1] < 2:
        return np.zeros(len(probs))
    top = np.sort(probs, axis=1)[:, -2:]
    return 1.0 - (top[:, 1] - top[:, 0]).astype(np.float64)


def entropy_uncertainty(probs: np.ndarray) -> np.ndarray:
    """Shannon entropy of each row of ``[N, K]`` probabilities over ``log K``: 1 = uniform, 0 = one-hot."""
    p = np.clip(probs.astype(np.float64), 1e-12, 1.0)
    return -(p * np.log(p)).sum(axis=1) / np.log(max(probs.shape[1], 2))


def rarity(probs: np.ndarray, class_counts: np.ndarray) -> np.ndarray:
    """Expected rareness of each row's class: ``sum_c p_c (1 - n_c / n_max)``, in [0, 1].

    Args:
        probs: ``[N, K]`` probabilities.
        class_counts: ``[K]`` labeled cells per class (the commonest class weighs 0, an absent one 1).
    """
    counts = np.asarray(class_counts, np.float64)
    return probs.astype(np.float64) @ (1.0 - counts / max(counts.max(), 1.0))


def _min_dist(x: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """Euclidean distance of every row of ``x`` ``[N, D]`` to its nearest row of ``centres`` ``[C, D]``."""
    out = np.full(len(x), np.inf)
    if len(centres) == 0:
        return out
    c2 = (centres.astype(np.float64) ** 2).sum(1)
    for sl in chunks(len(x), 4096):
        xs = x[sl].astype(np.float64)
        d2 = (xs ** 2).sum(1)[:, None] - 2 * xs @ centres.T.astype(np.float64) + c2[None]
        out[sl] = np.sqrt(np.maximum(d2.min(1), 0.0))
    return out


def k_center_greedy(x: np.ndarray, centres: np.ndarray, budget: int, weight: np.ndarray | None = None) -> Ranking:
    """Greedy k-center (Sener & Savarese 2018): each pick is the row farthest from everything chosen.

    With ``weight``, each pick maximises ``weight * distance`` instead (uncertainty spread out:
    a far but certain cell loses to a near but uncertain one). Ties go to the lower index.

    Args:
        x: ``[N, D]`` candidate rows.
        centres: ``[C, D]`` rows already covered (the labeled set); may be empty.
        budget: Rows to pick (at most N).
        weight: ``[N]`` non-negative weights, or None.

    Returns:
        Picks in order, each scored by its (weighted) distance when picked (``weight`` alone when
        nothing was covered yet).
    """
    mind = _min_dist(x, centres)
    w = np.ones(len(x)) if weight is None else np.asarray(weight, np.float64)
    taken = np.zeros(len(x), bool)
    index, score = [], []
    for _ in range(min(budget, len(x))):
        gain = np.where(taken, -np.inf, np.where(np.isinf(mind), w * 1e300, w * mind))
        i = int(np.argmax(gain))
        index.append(i)
        score.append(float(w[i] if np.isinf(mind[i]) else gain[i]))
        taken[i] = True
        mind = np.minimum(mind, np.linalg.norm(x - x[i], axis=1))
    return Ranking(np.asarray(index, np.int64), np.asarray(score))


def uncertainty_order(probs: np.ndarray, budget: int, kind: str = "margin") -> Ranking:
    """The ``budget`` most uncertain rows, most uncertain first (ties: lower index)."""
    u = margin_uncertainty(probs) if kind == "margin" else entropy_uncertainty(probs)
    order = np.lexsort((np.arange(len(u)), -u))[:budget]
    return Ranking(order.astype(np.int64), u[order])


def random_order(n: int, budget: int, seed: int) -> Ranking:
    """A seeded random ``budget`` of ``n`` rows, scored 0."""
    order = np.random.default_rng(seed).permutation(n)[:budget]
    return Ranking(order.astype(np.int64), np.zeros(len(order)))


def prototype_order(x: np.ndarray, labeled_x: np.ndarray, budget: int, k: int, alpha: float, seed: int) -> Ranking:
    """ActiveSSF's density-aware rule as a query order: eq. 8-9 candidates, rare clusters first.

    Prototypes are K-means centres of the labeled embedding; eq. 8 gives small (rare) clusters
    wide thresholds. Candidates (eq. 9) go round-robin over clusters, smallest cluster first in
    each round and the closest (distance / threshold) first within a cluster; when the
    candidates run out, the other rows follow by that ratio.

    Args:
        x: ``[N, D]`` pool rows; labeled_x: ``[L, D]`` labeled rows (L >= k).
        budget: Rows to return. k: Prototypes. alpha: Eq. 8 exponent. seed: K-means seed.

    Returns:
        Picks in order, scored by ``distance / threshold`` (<= 1 for eq. 9 candidates).
    """
    centres, labels = fit_prototypes(labeled_x, k, n_init=4, seed=seed)
    stats = cluster_thresholds(labeled_x, centres, labels, alpha)
    cluster, distance = assign_nearest(x, centres)
    thr = np.nan_to_num(stats.threshold[cluster], nan=0.0)
    ratio = np.divide(distance, thr, out=np.full(len(x), np.inf), where=thr > 0)
    ratio = np.where((distance == 0) & (thr == 0), 0.0, ratio)
    candidate = ratio <= 1.0
    # Rank of each candidate inside its cluster (closest first), then rounds over clusters.
    rank = np.zeros(len(x), np.int64)
    for c in np.unique(cluster[candidate]):
        members = np.flatnonzero(candidate & (cluster == c))
        rank[members[np.lexsort((members, ratio[members]))]] = np.arange(len(members))
    rare_first = stats.size[cluster]
    idx = np.arange(len(x))
    order = np.lexsort((idx, ratio, rare_first, np.where(candidate, rank, np.iinfo(np.int64).max), ~candidate))
    order = order[:budget]
    return Ranking(order.astype(np.int64), ratio[order])


def default_order(probs: np.ndarray, x: np.ndarray, labeled_x: np.ndarray, class_counts: np.ndarray,
                  budget: int, cfg: QueryConfig) -> Ranking:
    """Uncertainty x rare-class weight, spread out by weighted k-center greedy.

    score = u * (1 + rare_boost * rarity): the uncertain cells, more so those that may belong
    to a rare class. The ``pool_factor * budget`` best go to k-center greedy (weights = score,
    centres = the labeled set), so a batch is not ``budget`` copies of one confusing cell type.

    Returns:
        Picks in order, scored by ``score * distance`` when picked.
    """
    u = margin_uncertainty(probs) if cfg.uncertainty == "margin" else entropy_uncertainty(probs)
    u = cfg.uncertainty_floor + (1.0 - cfg.uncertainty_floor) * u
    s = u * (1.0 + cfg.rare_boost * rarity(probs, class_counts))
    top = np.lexsort((np.arange(len(s)), -s))[: cfg.pool_factor * budget]
    picked = k_center_greedy(x[top], labeled_x, budget, s[top])
    return Ranking(top[picked.index].astype(np.int64), picked.score)


def rank(probs: np.ndarray, emb: np.ndarray, labeled_emb: np.ndarray, class_counts: np.ndarray,
         available: np.ndarray, budget: int, cfg: QueryConfig, covered: np.ndarray | None = None) -> Ranking:
    """Run ``cfg.strategy`` on the rows ``available`` may propose; indices are into the whole pool.

    Args:
        probs: ``[N, K]`` pool probabilities. emb: ``[N, D]`` pool embedding.
        labeled_emb: ``[L, D]`` labeled embedding. class_counts: ``[K]`` labeled cells per class.
        available: ``[N]`` bool, False for already labeled or queried cells.
        budget: Cells to propose. cfg: Query config.
        covered: ``[N]`` bool, pool rows asked about before (answered or not, "not a target
            cell" included); k-center treats them as covered like the labeled set, so a new
            batch does not crowd the last one's neighbourhood. None = none.
    """
    pos = np.flatnonzero(available)
    p, x = probs[pos], _unit(emb[pos])
    lab = _unit(labeled_emb)
    seen = lab if covered is None else np.vstack([lab, _unit(emb[np.asarray(covered, bool)])])
    s = cfg.strategy
    if s == "uncertainty":
        r = uncertainty_order(p, budget, cfg.uncertainty)
    elif s == "random":
        r = random_order(len(pos), budget, cfg.seed)
    elif s == "diversity":
        r = k_center_greedy(x, seen, budget)
    elif s == "prototype":
        r = prototype_order(x, lab, budget, min(cfg.k or len(class_counts), len(lab)), cfg.alpha, cfg.seed)
    else:
        r = default_order(p, x, seen, class_counts, budget, cfg)
    return Ranking(pos[r.index], r.score)


def _unit(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (distances then compare directions, whatever the feature scale)."""
    x = np.asarray(x, np.float64)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
