"""Config of density-aware Active Sample Selection (paper eqs. 8-9)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from activessf.config import require


@dataclass
class SelectionConfig:
    """Prototype clustering and the per-cluster distance thresholds.

    Attributes:
        k: Number of K-means prototypes (the paper uses one per class: 11 for PBC).
        alpha: Exponent of eq. 8. The paper is inconsistent: its algorithm box uses 0.5, its
            implementation details say 1; we default to 1. alpha = 0 gives threshold = UB for every
            cluster; larger alpha pulls small clusters' thresholds towards UB relative to big ones.
        n_init: K-means restarts (k-means++ seeding); the best inertia wins.
        seed: Seed of the K-means restarts; same seed, same prototypes.
        metric: Distance for clustering, thresholds and assignment; ``cosine`` L2-normalises the
            features before K-means and uses ``1 - cos``.
        budget: Keep at most this many candidates, spread over clusters round-robin (closest
            relative to its cluster's threshold first); None keeps every candidate.
        lb_quantile: LB_i = this quantile of member distances instead of the minimum (sweeps).
        ub_quantile: UB_i = this quantile of member distances instead of the maximum (sweeps).
        batch_size: Rows per distance chunk; peak extra memory ~ batch_size * D * 8 bytes.
        max_iter: K-means iterations per restart.
    """

    k: int = 11
    alpha: float = 1.0
    n_init: int = 10
    seed: int = 0
    metric: Literal["euclidean", "cosine"] = "euclidean"
    budget: int | None = None
    lb_quantile: float | None = None
    ub_quantile: float | None = None
    batch_size: int = 16384
    max_iter: int = 300

    def __post_init__(self) -> None:
        require(self.k >= 1, "selection.k", "must be >= 1")
        require(math.isfinite(self.alpha) and self.alpha >= 0.0, "selection.alpha",
                "must be finite and >= 0 (0 ** negative is infinite)")
        require(self.seed >= 0, "selection.seed", "must be >= 0")
        require(self.n_init >= 1, "selection.n_init", "must be >= 1")
        require(self.metric in ("euclidean", "cosine"), "selection.metric", "must be euclidean or cosine")
        if self.budget is not None:
            require(self.budget >= 0, "selection.budget", "must be >= 0")
        for name in ("lb_quantile", "ub_quantile"):
            q = getattr(self, name)
            if q is not None:
                require(0.0 <= q <= 1.0, f"selection.{name}", "must be in [0, 1]")
        lo = 0.0 if self.lb_quantile is None else self.lb_quantile
        hi = 1.0 if self.ub_quantile is None else self.ub_quantile
        require(lo <= hi, "selection.lb_quantile", "must be <= ub_quantile")
        require(self.batch_size >= 1, "selection.batch_size", "must be >= 1")
        require(self.max_iter >= 1, "selection.max_iter", "must be >= 1")
