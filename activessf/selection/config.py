"""Config of Active Sample Selection: the class-balanced default and the paper's eqs. 8-9.

``rule: balanced`` (default; measured in ``benchmarks/RESULTS.md``): one prototype per labeled
class (the mean feature of its labeled crops), a relevance gate (a pool crop is a candidate when it
is no farther from its nearest class prototype than ``gate_quantile`` of that class's own labeled
crops are), then a quota per class that favours the classes rare in the labeled set
(``(n_max / n_i) ** alpha``) filled closest-first up to ``budget`` (or ``budget_fraction`` of the
pool). ``rule: paper``: K-means prototypes and the density-aware thresholds of eqs. 8-9, every
candidate kept unless ``budget`` caps it. The paper's rule keeps what is close to a prototype,
and the classes the features separate least (the immature granulocytes) sit farthest from theirs,
so it does not balance the pretraining set; the quota does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from activessf.config import require


@dataclass
class SelectionConfig:
    """Prototypes, candidates and how many of them are kept.

    Attributes:
        rule: ``balanced`` (class prototypes, gate, rarity-weighted quota) or ``paper`` (K-means
            prototypes, eqs. 8-9); see the module docstring.
        k: Number of K-means prototypes of ``rule: paper`` (the paper uses one per class: 11 for
            PBC); ``balanced`` has one prototype per labeled class and ignores it.
        alpha: How strongly rare prototypes are favoured. ``paper``: exponent of eq. 8 (the paper
            is inconsistent: its algorithm box uses 0.5, its implementation details say 1; we
            default to 1); alpha = 0 gives threshold = UB for every cluster; larger alpha pulls
            small clusters' thresholds towards UB relative to big ones. ``balanced``: a class's
            quota is proportional to ``(n_max / n_i) ** alpha`` (0 = equal quotas).
        gate_quantile: ``balanced``: a crop is a candidate when its distance to its class
            prototype is at most this quantile of that class's labeled crops' distances.
        budget_fraction: ``balanced`` without ``budget``: keep this fraction of the pool's crops.
        n_init: K-means restarts (k-means++ seeding); the best inertia wins.
        seed: Seed of the K-means restarts; same seed, same prototypes.
        metric: Distance for clustering, thresholds and assignment; ``cosine`` L2-normalises the
            features before K-means and uses ``1 - cos``.
        budget: Keep at most this many candidates, spread over prototypes by their quotas
            (closest relative to its prototype's threshold first); None: every candidate
            (``paper``) or ``budget_fraction`` of the pool (``balanced``).
        lb_quantile: ``paper``: LB_i = this quantile of member distances instead of the minimum.
        ub_quantile: ``paper``: UB_i = this quantile of member distances instead of the maximum.
        batch_size: Rows per distance chunk; peak extra memory ~ batch_size * D * 8 bytes.
        max_iter: K-means iterations per restart.
    """

    rule: Literal["balanced", "paper"] = "balanced"
    k: int = 11
    alpha: float = 1.0
    gate_quantile: float = 0.95
    budget_fraction: float = 0.4
    n_init: int = 10
    seed: int = 0
    metric: Literal["euclidean", "cosine"] = "euclidean"
    budget: int | None = None
    lb_quantile: float | None = None
    ub_quantile: float | None = None
    batch_size: int = 16384
    max_iter: int = 300

    def __post_init__(self) -> None:
        require(self.rule in ("balanced", "paper"), "selection.rule", "must be balanced or paper")
        require(self.k >= 1, "selection.k", "must be >= 1")
        require(0.0 < self.gate_quantile <= 1.0, "selection.gate_quantile", "must be in (0, 1]")
        require(0.0 < self.budget_fraction <= 1.0, "selection.budget_fraction", "must be in (0, 1]")
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
