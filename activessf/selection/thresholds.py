"""Density-aware per-cluster distance thresholds (paper eq. 8).

For cluster i with n_i members, LB_i / UB_i the smallest / largest member-to-centre distance and
n_max the size of the largest cluster::

    threshold_i = LB_i + (UB_i - LB_i) * (1 - n_i / n_max) ** alpha

So the largest cluster keeps only rows as close as its closest member (threshold = LB), and the
smaller (rarer) a cluster, the closer its threshold moves to UB: rare classes admit more samples.

Edge cases, chosen and tested:
- ``alpha = 0``: ``0.0 ** 0 == 1`` (numpy and IEEE pow agree), so every threshold is UB,
  including the largest cluster's. Selection is then density-blind.
- A single-member cluster has LB = UB = that member's distance, so threshold = LB whatever alpha.
- An empty cluster (K-means on fewer distinct points than k) gets NaN LB/UB/threshold; a NaN
  threshold compares false, so it never selects anything.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from activessf.selection.distances import own_centre_distance
from activessf.selection.prototypes import prepare


@dataclass
class ClusterStats:
    """Per-cluster statistics of the prototype fit.

    Attributes:
        size: ``[K]`` int64 members n_i.
        lb: ``[K]`` float64 LB_i (NaN when empty).
        ub: ``[K]`` float64 UB_i (NaN when empty).
        threshold: ``[K]`` float64 eq. 8 (NaN when empty).
    """

    size: np.ndarray
    lb: np.ndarray
    ub: np.ndarray
    threshold: np.ndarray

    @property
    def k(self) -> int:
        """Number of clusters."""
        return len(self.size)


def density_threshold(lb: np.ndarray, ub: np.ndarray, size: np.ndarray, alpha: float) -> np.ndarray:
    """Eq. 8 on per-cluster arrays.

    Args:
        lb: ``[K]`` lower bounds.
        ub: ``[K]`` upper bounds.
        size: ``[K]`` cluster sizes (at least one > 0).
        alpha: Exponent >= 0.

    Returns:
        ``[K]`` thresholds (NaN where ``lb``/``ub`` are NaN).
    """
    if alpha < 0:
        raise ValueError(f"alpha must be >= 0, got {alpha}")
    size = np.asarray(size, dtype=np.float64)
    n_max = size.max()
    if n_max <= 0:
        raise ValueError("every cluster is empty")
    return lb + (ub - lb) * np.power(1.0 - size / n_max, alpha)


def cluster_thresholds(
    features: np.ndarray,
    centres: np.ndarray,
    labels: np.ndarray,
    alpha: float,
    lb_quantile: float | None = None,
    ub_quantile: float | None = None,
    metric: str = "euclidean",
    batch_size: int = 16384,
) -> ClusterStats:
    """LB, UB and the eq. 8 threshold of every cluster from its members.

    Args:
        features: ``[N, D]`` the rows the prototypes were fitted on.
        centres: ``[K, D]`` from ``fit_prototypes``.
        labels: ``[N]`` cluster of each row.
        alpha: Eq. 8 exponent (>= 0).
        lb_quantile: LB = this quantile of member distances; None = minimum (the paper).
        ub_quantile: UB = this quantile of member distances; None = maximum (the paper).
        metric: ``euclidean`` or ``cosine`` (as used for ``fit_prototypes``).
        batch_size: Rows per distance chunk.

    Returns:
        The per-cluster ``ClusterStats``.
    """
    labels = np.asarray(labels, dtype=np.int64)
    k = len(centres)
    if len(labels) != len(features) or (len(labels) and (labels.min() < 0 or labels.max() >= k)):
        raise ValueError("labels must be [N] with values in [0, K)")
    dist = own_centre_distance(prepare(features, metric), centres, labels, metric, batch_size)
    size = np.bincount(labels, minlength=k).astype(np.int64)
    lb = np.full(k, np.nan)
    ub = np.full(k, np.nan)
    for i in np.flatnonzero(size):
        member = dist[labels == i]
        lb[i] = member.min() if lb_quantile is None else np.quantile(member, lb_quantile)
        ub[i] = member.max() if ub_quantile is None else np.quantile(member, ub_quantile)
    return ClusterStats(size=size, lb=lb, ub=ub, threshold=density_threshold(lb, ub, size, alpha))


def quota_weights(size: np.ndarray, alpha: float) -> np.ndarray:
    """Per-prototype share of a budget: ``(n_max / n_i) ** alpha``, 0 for an empty prototype.

    The balanced rule's counterpart of eq. 8: the rarer a class is among the labeled crops, the
    more of its pool look-alikes pretraining gets (alpha = 0: equal quotas).

    Args:
        size: ``[K]`` labeled rows per prototype.
        alpha: Exponent >= 0.

    Returns:
        ``[K]`` float64 weights, 1 for the largest prototype.
    """
    size = np.asarray(size, dtype=np.float64)
    if alpha < 0 or size.max(initial=0) <= 0:
        raise ValueError(f"need alpha >= 0 and a non-empty prototype, got alpha={alpha}, sizes={size}")
    out = np.zeros(len(size))
    out[size > 0] = np.power(size.max() / size[size > 0], alpha)
    return out
