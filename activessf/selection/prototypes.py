"""Class prototypes: K-means centres of the feature space (paper Sec. "Active Sample Selection")."""

from __future__ import annotations

import numpy as np
from sklearn.cluster import KMeans
from sklearn.preprocessing import normalize


def prepare(features: np.ndarray, metric: str) -> np.ndarray:
    """Features in the space the metric works in: unchanged, or L2-normalised for cosine.

    Args:
        features: ``[N, D]``.
        metric: ``euclidean`` or ``cosine``.

    Returns:
        ``[N, D]`` float array (a new array for cosine).
    """
    features = np.asarray(features)
    if features.ndim != 2:
        raise ValueError(f"expected features [N, D], got shape {features.shape}")
    if metric == "cosine":
        # sklearn rejects zero-row input; an empty shard is still a valid (empty) selection.
        return normalize(features, norm="l2") if len(features) else features.astype(np.float64)
    if metric != "euclidean":
        raise ValueError(f"unknown metric {metric!r}")
    return features


def fit_prototypes(
    features: np.ndarray,
    k: int,
    n_init: int = 10,
    seed: int = 0,
    metric: str = "euclidean",
    max_iter: int = 300,
) -> tuple[np.ndarray, np.ndarray]:
    """K-means (k-means++ seeding, ``n_init`` seeded restarts) on the features.

    For ``cosine`` the features are L2-normalised first, so K-means on the unit sphere groups by
    direction; cosine distance ignores the centres' norms, so they are returned as fitted.

    Args:
        features: ``[N, D]``, N >= k.
        k: Number of prototypes.
        n_init: Restarts; the lowest inertia wins.
        seed: ``random_state`` of K-means.
        metric: ``euclidean`` or ``cosine``.
        max_iter: Lloyd iterations per restart.

    Returns:
        ``centres`` ``[K, D]`` float64 and ``labels`` ``[N]`` int64 (nearest centre of each row).
    """
    x = prepare(features, metric)
    if len(x) < k:
        raise ValueError(f"need at least k={k} feature rows to fit prototypes, got {len(x)}")
    km = KMeans(n_clusters=k, init="k-means++", n_init=n_init, max_iter=max_iter, random_state=seed)
    # float64 so centres and later distances do not depend on the input dtype.
    km.fit(x.astype(np.float64, copy=False))
    return km.cluster_centers_, km.labels_.astype(np.int64)
