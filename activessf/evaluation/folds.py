"""Stratified k-fold assignment, written once and reused by every method (paired comparisons).

Rule for rare classes: a class with fewer members than folds cannot appear in every fold's
test set. Its members are shuffled (seeded) and put one per fold in folds ``0..n-1``; the other
folds have none of that class in their test set, and the metrics exclude it there (see
``metrics.fold_metrics``). Every other class goes through ``sklearn`` ``StratifiedKFold``.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections import Counter
from typing import Sequence

import numpy as np
import pyarrow as pa
from sklearn.model_selection import StratifiedKFold

from activessf.io import fs as afs
from activessf.io.atomic import atomic_write_table

FOLDS_SCHEMA = pa.schema([("id", pa.string()), ("label", pa.string()), ("fold", pa.int32())])


def make_folds(ids: Sequence[str], labels: Sequence[str], n_folds: int = 5, seed: int = 0) -> pa.Table:
    """Assign each item to one test fold, stratified by label.

    Args:
        ids: ``[N]`` unique item ids.
        labels: ``[N]`` class names (no nulls).
        n_folds: Number of folds (>= 2).
        seed: Shuffling seed; the same inputs and seed always give the same folds.

    Returns:
        ``FOLDS_SCHEMA`` table (id, label, fold), in the input order.
    """
    ids, labels = [str(i) for i in ids], list(labels)
    if len(set(ids)) != len(ids):
        raise ValueError("item ids must be unique")
    if any(lab is None for lab in labels):
        raise ValueError("every item needs a label to build folds")
    if n_folds < 2:
        raise ValueError("n_folds must be >= 2")
    fold = np.full(len(ids), -1, np.int32)
    counts = Counter(labels)
    # Split in id order, not input order: region tables come in completion order, which varies.
    by_id = np.argsort(np.asarray(ids, dtype=object), kind="stable")
    y = np.asarray(labels, dtype=object)[by_id]
    common = np.flatnonzero([counts[lab] >= n_folds for lab in y])
    if len(common):
        skf = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)
        for k, (_, test) in enumerate(skf.split(np.zeros(len(common)), y[common].astype(str))):
            fold[by_id[common[test]]] = k
    rng = np.random.default_rng(seed)
    for lab in sorted(c for c, n in counts.items() if n < n_folds):
        members = rng.permutation(np.flatnonzero(y == lab))
        fold[by_id[members]] = np.arange(len(members), dtype=np.int32)
    return pa.table({"id": ids, "label": [str(lab) for lab in labels], "fold": fold}, schema=FOLDS_SCHEMA)


def scored_apart(folds: pa.Table, warn: str | None = None) -> dict[str, str]:
    """Classes with fewer labeled images than folds, each with the reason it is scored apart.

    Such a class is in at most a few test folds with one image each, so its per-fold PR-AUC is
    a coin toss (often 1.0); averaging it into macro PR-AUC would flatter or punish a method
    by chance.

    Args:
        folds: The fold assignment.
        warn: When given, print a warning naming the classes, prefixed with this stage name.

    Returns:
        Class name -> reason, in name order (empty when every class fills every fold).
    """
    n = num_folds(folds)
    counts = Counter(folds["label"].to_pylist())
    apart = {c: f"{k} labeled image{'s' if k != 1 else ''} < {n} folds: left out of macro PR-AUC"
             for c, k in sorted(counts.items()) if k < n}
    if apart and warn:
        print(f"{warn}: WARNING: {len(apart)} class(es) have fewer labeled images than folds and are scored apart "
              f"(per-class PR-AUC only, not in macro PR-AUC): {', '.join(apart)}", file=sys.stderr, flush=True)
    return apart


def folds_digest(folds: pa.Table) -> str:
    """Short hash of the (id, fold) assignment: equal digests mean paired runs."""
    pairs = sorted(zip(folds["id"].to_pylist(), folds["fold"].to_pylist()))
    return hashlib.sha256(json.dumps(pairs).encode()).hexdigest()[:16]


def write_folds(folds: pa.Table, path: str | os.PathLike) -> str:
    """Write the assignment as Parquet, atomically."""
    atomic_write_table(str(path), folds.cast(FOLDS_SCHEMA))
    return str(path)


def read_folds(path: str | os.PathLike) -> pa.Table:
    """Read a folds file written by :func:`write_folds`."""
    return afs.read_table(str(path)).select(FOLDS_SCHEMA.names).cast(FOLDS_SCHEMA)


def ensure_folds(
    path: str | os.PathLike, ids: Sequence[str], labels: Sequence[str], n_folds: int = 5, seed: int = 0
) -> pa.Table:
    """Reuse the folds file at ``path`` if it exists (checking it covers the items), else create it.

    Raises:
        ValueError: The existing file does not assign exactly these ids with these labels.
    """
    if afs.exists(str(path)):
        folds = read_folds(path)
        have = dict(zip(folds["id"].to_pylist(), folds["label"].to_pylist()))
        want = dict(zip([str(i) for i in ids], [str(lab) for lab in labels]))
        if have != want:
            missing, extra = len(set(want) - set(have)), len(set(have) - set(want))
            raise ValueError(f"{path}: folds do not match the labeled items ({missing} missing, {extra} extra, "
                             "or labels differ); give a new --folds path")
        return folds
    folds = make_folds(ids, labels, n_folds, seed)
    write_folds(folds, path)
    return folds


def fold_indices(folds: pa.Table, fold: int) -> tuple[np.ndarray, np.ndarray]:
    """Row indices ``(train, test)`` of ``folds`` for test fold ``fold``."""
    f = folds["fold"].to_numpy()
    return np.flatnonzero(f != fold), np.flatnonzero(f == fold)


def num_folds(folds: pa.Table) -> int:
    """Number of folds in an assignment."""
    return int(max(folds["fold"].to_pylist())) + 1
