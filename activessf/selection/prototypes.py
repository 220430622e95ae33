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


def class_prototypes(features: np.ndarray, labels: list, metric: str = "euclidean") -> tuple[np.ndarray, np.ndarray, list[str]]:
    """One prototype per labeled class: the mean of its rows (in the metric's space).

    Labels are known for the labeled crops, so the class means stand for the classes exactly,
    where K-means (the paper) may merge two similar classes and split a varied one; no seed.

    Args:
        features: ``[N, D]`` labeled rows.
        labels: ``[N]`` class names (no None).
        metric: ``euclidean`` or ``cosine`` (rows L2-normalised before averaging).

    Returns:
        ``centres`` ``[C, D]`` float64, ``assignment`` ``[N]`` int64 (each row's own class, not its
        nearest centre) and the ``C`` sorted class names.
    """
    if any(lab is None for lab in labels):
        raise ValueError("class prototypes need a label on every labeled feature row")
    x = prepare(features, metric).astype(np.float64, copy=False)
    names = sorted(set(labels))
    assignment = np.searchsorted(names, np.asarray(labels, dtype=object).astype(str)).astype(np.int64)
    centres = np.stack([x[assignment == i].mean(axis=0) for i in range(len(names))])
    return centres, assignment, names
