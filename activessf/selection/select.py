"""Pick unlabelled rows near a prototype (paper eq. 9), optionally capped by a budget.

A row x is a candidate when d(x, c_j) <= threshold_j for its nearest prototype c_j.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from activessf.selection.distances import centre_distances, chunks
from activessf.selection.prototypes import prepare


@dataclass
class SelectionResult:
    """Per-row outcome of selection.

    Attributes:
        cluster: ``[M]`` int64 nearest prototype.
        distance: ``[M]`` float64 distance to it.
        threshold: ``[M]`` float64 that prototype's threshold.
        candidate: ``[M]`` bool, ``distance <= threshold`` (eq. 9).
        selected: ``[M]`` bool, the candidates kept after the budget (= ``candidate`` without one).
    """

    cluster: np.ndarray
    distance: np.ndarray
    threshold: np.ndarray
    candidate: np.ndarray
    selected: np.ndarray


def assign_nearest(
    features: np.ndarray, centres: np.ndarray, metric: str = "euclidean", batch_size: int = 16384
) -> tuple[np.ndarray, np.ndarray]:
    """Nearest prototype of every row, ``batch_size`` rows at a time (memory bounded for any M).

    Args:
        features: ``[M, D]``.
        centres: ``[K, D]``.
        metric: ``euclidean`` or ``cosine``.
        batch_size: Rows per chunk.

    Returns:
        ``cluster`` ``[M]`` int64 (ties go to the lowest index) and ``distance`` ``[M]`` float64.
    """
    features = prepare(features, metric)
    cluster = np.empty(len(features), dtype=np.int64)
    distance = np.empty(len(features), dtype=np.float64)
    for sl in chunks(len(features), batch_size):
        d = centre_distances(features[sl], centres, metric)
        cluster[sl] = d.argmin(axis=1)
        distance[sl] = d[np.arange(len(d)), cluster[sl]]
    return cluster, distance


def budget_order(cluster: np.ndarray, ratio: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """Weighted round-robin over clusters: every cluster's best, then every cluster's second, ...

    A cluster's r-th row (0-based, closest first) is due at ``(r + 1) / weight``, so any prefix of
    the order holds each cluster in proportion to its weight until it runs out of candidates
    (its unused share then goes to the others). Equal weights give a plain round-robin. Within a
    round, rows closer relative to their threshold come first; remaining ties go to the lower
    row index, so the order is deterministic.

    Args:
        cluster: ``[C]`` cluster of each candidate.
        ratio: ``[C]`` distance / threshold of each candidate.
        weights: ``[K]`` > 0 per cluster (``quota_weights``); None = equal.

    Returns:
        ``[C]`` candidate positions in keep-first order.
    """
    idx = np.arange(len(cluster))
    by_cluster = np.lexsort((idx, ratio, cluster))
    sorted_cluster = cluster[by_cluster]
    starts = np.searchsorted(sorted_cluster, sorted_cluster, side="left")
    rank = np.empty(len(cluster), dtype=np.int64)
    rank[by_cluster] = np.arange(len(cluster)) - starts
    due = rank + 1.0 if weights is None else (rank + 1.0) / np.asarray(weights, dtype=np.float64)[cluster]
    return np.lexsort((idx, ratio, due))


def select(
    features: np.ndarray,
    centres: np.ndarray,
    thresholds: np.ndarray,
    metric: str = "euclidean",
    batch_size: int = 16384,
    budget: int | None = None,
) -> SelectionResult:
    """Eq. 9 on every row, then at most ``budget`` candidates spread over clusters.

    Args:
        features: ``[M, D]`` unlabelled rows.
        centres: ``[K, D]`` prototypes.
        thresholds: ``[K]`` from ``cluster_thresholds`` (NaN never selects).
        metric: ``euclidean`` or ``cosine``, as the prototypes were fitted.
        batch_size: Rows per distance chunk.
        budget: Cap on selected rows; None keeps every candidate. With a cap, clusters take turns
            (see ``budget_order``) so no class is starved by a dense one.

    Returns:
        ``SelectionResult``.
    """
    thresholds = np.asarray(thresholds, dtype=np.float64)
    if thresholds.shape != (len(centres),):
        raise ValueError(f"thresholds must be [K={len(centres)}], got shape {thresholds.shape}")
    cluster, distance = assign_nearest(features, centres, metric, batch_size)
    return decide(cluster, distance, thresholds, budget)


def decide(
    cluster: np.ndarray,
    distance: np.ndarray,
    thresholds: np.ndarray,
    budget: int | None = None,
    weights: np.ndarray | None = None,
) -> SelectionResult:
    """Eq. 9 and the optional budget on already-computed nearest prototypes.

    Split from ``select`` so a caller can stream features in chunks through ``assign_nearest``
    and decide once on the ``[M]`` distances, never holding ``[M, D]`` features.

    Args:
        cluster: ``[M]`` nearest prototype per row.
        distance: ``[M]`` distance to it.
        thresholds: ``[K]`` per-cluster thresholds (NaN never selects).
        budget: Cap on selected rows (see ``select``).
        weights: ``[K]`` per-cluster shares of the budget (see ``budget_order``); None = equal.

    Returns:
        ``SelectionResult``.
    """
    row_threshold = np.asarray(thresholds, dtype=np.float64)[cluster]
    candidate = distance <= row_threshold
    selected = candidate.copy()
    if budget is not None and candidate.sum() > budget:
        pos = np.flatnonzero(candidate)
        thr = row_threshold[pos]
        # A zero threshold only admits distance 0, which is as close as a row can be.
        ratio = np.divide(distance[pos], thr, out=np.zeros(len(pos)), where=thr > 0)
        keep = pos[budget_order(cluster[pos], ratio, weights)[:budget]]
        selected[:] = False
        selected[keep] = True
    return SelectionResult(cluster, distance, row_threshold, candidate, selected)
