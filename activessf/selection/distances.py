"""Row-to-prototype distances in bounded-memory chunks, shared by eq. 8 and eq. 9.

Both equations read distances from this one function so a training member sitting exactly on
LB or UB compares equal to itself when the same row is later scored as a candidate.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np
from scipy.spatial.distance import cdist


def centre_distances(features: np.ndarray, centres: np.ndarray, metric: str) -> np.ndarray:
    """Exact distances of every row to every centre.

    Args:
        features: ``[M, D]``.
        centres: ``[K, D]``.
        metric: ``euclidean`` or ``cosine`` (``1 - cos``, scale-invariant).

    Returns:
        ``[M, K]`` float64.
    """
    if metric not in ("euclidean", "cosine"):
        raise ValueError(f"unknown metric {metric!r}")
    # cdist computes (x - c) directly in float64; the |x|^2 - 2xc + |c|^2 shortcut loses
    # precision for the near-duplicate rows that define LB.
    return cdist(np.asarray(features, dtype=np.float64), np.asarray(centres, dtype=np.float64), metric=metric)


def chunks(n: int, batch_size: int) -> Iterator[slice]:
    """Consecutive row slices of at most ``batch_size`` covering ``range(n)``."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    for start in range(0, n, batch_size):
        yield slice(start, min(n, start + batch_size))


def own_centre_distance(
    features: np.ndarray, centres: np.ndarray, labels: np.ndarray, metric: str, batch_size: int = 16384
) -> np.ndarray:
    """Distance of each row to its own centre ``centres[labels[i]]``.

    Args:
        features: ``[N, D]``.
        centres: ``[K, D]``.
        labels: ``[N]`` cluster index of each row.
        metric: ``euclidean`` or ``cosine``.
        batch_size: Rows per chunk.

    Returns:
        ``[N]`` float64.
    """
    labels = np.asarray(labels, dtype=np.int64)
    out = np.empty(len(features), dtype=np.float64)
    for sl in chunks(len(features), batch_size):
        d = centre_distances(features[sl], centres, metric)
        out[sl] = d[np.arange(len(d)), labels[sl]]
    return out
