"""Where ``bench_active_learning.py`` and ``bench_active_finetune.py`` read their inputs.

Two layouts hold the same things (frozen features of the labeled and pool crops, the pool's region
stage, the feature backbone that made the features):

- a ``bench_selection.py`` folder (``--sel``): ``src_labeled/feat_labeled``, ``src_labeled/feat_pool``,
  ``regions_pool``, ``src_labeled/backbone/final/model.safetensors``;
- an ``activessf run`` folder (``--run``): ``features_labeled``, ``features_pool``, ``regions_pool``,
  ``feature_backbone/final/model.safetensors``. Read only: the benchmarks never write into it.

A scarce-label start (``--cap-per-class``) keeps a seeded subset of at most N labeled crops per
class, the same subset on every test split.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class Sources:
    feat_labeled: Path
    feat_pool: Path
    regions_pool: Path
    backbone: Path


def sources(sel: str | None, run: str | None) -> Sources:
    """The input folders of a ``bench_selection.py`` folder ``sel`` or, when given, an activessf run ``run``."""
    if run:
        r = Path(run)
        return Sources(r / "features_labeled", r / "features_pool", r / "regions_pool",
                       r / "feature_backbone" / "final" / "model.safetensors")
    s = Path(sel)
    return Sources(s / "src_labeled" / "feat_labeled", s / "src_labeled" / "feat_pool", s / "regions_pool",
                   s / "src_labeled" / "backbone" / "final" / "model.safetensors")


def default_out(sel: str | None, run: str | None, cap: int | None, name: str) -> Path:
    """``<sel>/<name>.json``; for a run (read only) or a capped start: ``benchmarks/out/<name>_<tag>.json``."""
    if not run and cap is None:
        return Path(sel) / f"{name}.json"
    tag = (Path(run).name if run else Path(sel).name) + (f"_cap{cap}" if cap is not None else "")
    return Path(__file__).resolve().parent / "out" / f"{name}_{tag}.json"


def cap_rows(labels: list[str], cap: int | None, seed: int) -> np.ndarray:
    """Sorted row indices of a seeded subset with at most ``cap`` rows per class (every row when ``cap`` is None)."""
    if cap is None:
        return np.arange(len(labels))
    rng = np.random.default_rng(seed)
    labels_arr = np.asarray(labels)
    keep = [rng.permutation(np.flatnonzero(labels_arr == c))[:cap] for c in sorted(set(labels))]
    return np.sort(np.concatenate(keep))
