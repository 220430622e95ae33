"""Config of ``activessf query`` (the ``query`` section of a YAML)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from activessf.config import require

STRATEGIES = ("default", "uncertainty", "prototype", "diversity", "random")


@dataclass
class QueryConfig:
    """Ranking pool cells for labeling, and the scoring pass that feeds it."""

    # default: uncertainty x rare-class weight, spread by k-center greedy; uncertainty: the
    # least sure first; prototype: ActiveSSF's eq. 8-9 rule, rare clusters first; diversity:
    # k-center greedy in the model's embedding; random: the baseline.
    strategy: Literal["default", "uncertainty", "prototype", "diversity", "random"] = "default"
    # margin: 1 - (p1 - p2); entropy: normalised Shannon entropy of the probabilities.
    uncertainty: Literal["margin", "entropy"] = "margin"
    # default: how strongly cells predicted as rare labeled classes are favoured (0 = not at all).
    rare_boost: float = 2.0
    # default: k-center greedy runs on the pool_factor x budget highest-scored cells.
    pool_factor: int = 10
    # default: the uncertainty weight is floor + (1 - floor) x uncertainty, so with a floor > 0
    # a confidently predicted but uncovered cell can still be picked.
    uncertainty_floor: float = 0.0
    # prototype: prototypes (K-means on the labeled embedding; null = number of classes) and eq. 8 alpha.
    k: int | None = None
    alpha: float = 1.0
    seed: int = 0
    # Scoring pass: crops per model call, classifier actors (null = one per GPU, else one), threads each.
    batch_size: int = 64
    concurrency: int | None = None
    threads: int = 1
    use_gpu: Literal["auto", "true", "false"] = "auto"
    # Crops per row of queries.png.
    sheet_cols: int = 10

    def __post_init__(self) -> None:
        require(self.strategy in STRATEGIES, "query.strategy", f"one of {', '.join(STRATEGIES)}")
        require(self.rare_boost >= 0, "query.rare_boost", "must be >= 0")
        require(self.pool_factor >= 1, "query.pool_factor", "must be >= 1")
        require(0.0 <= self.uncertainty_floor <= 1.0, "query.uncertainty_floor", "must be in [0, 1]")
        require(self.k is None or self.k >= 1, "query.k", "must be >= 1 or null")
        require(self.alpha >= 0, "query.alpha", "must be >= 0")
        require(self.seed >= 0, "query.seed", "must be >= 0")
        require(self.batch_size >= 1, "query.batch_size", "must be >= 1")
        require(self.concurrency is None or self.concurrency >= 1, "query.concurrency", "must be >= 1 or null")
        require(self.threads >= 1, "query.threads", "must be >= 1")
        require(self.sheet_cols >= 1, "query.sheet_cols", "must be >= 1")
