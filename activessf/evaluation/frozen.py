"""Cheap probes on frozen encoder features over the saved folds (scikit-learn only).

Logistic regression (standardised features) or cosine kNN, trained on each fold's training
rows and scored on its test rows, giving the same ``metrics.json`` report as fine-tuning, so
sweeps can rank encoders without training them.
"""

from __future__ import annotations

from typing import Any, Literal, Sequence

import numpy as np
import pyarrow as pa
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from activessf.evaluation.folds import fold_indices, folds_digest, num_folds
from activessf.evaluation.metrics import fold_metrics, run_report


def make_probe(kind: Literal["logreg", "knn"], k: int = 20, c: float = 1.0, seed: int = 0):
    """An unfitted scikit-learn classifier with ``predict_proba``."""
    if kind == "logreg":
        return make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=2000, random_state=seed))
    if kind == "knn":
        # Cosine distance + distance weighting, the usual kNN probe of self-supervised features.
        return KNeighborsClassifier(n_neighbors=k, metric="cosine", weights="distance")
    raise ValueError(f"unknown probe {kind!r}")


def _full_proba(model, x: np.ndarray, n_classes: int) -> np.ndarray:
    """``[N, K]`` probabilities, zero for classes the fold's training rows lacked."""
    out = np.zeros((len(x), n_classes))
    out[:, model.classes_] = model.predict_proba(x)
    return out


def _align(features: np.ndarray, ids: list[str], fold_ids: list[str]) -> np.ndarray:
    """Rows of ``features`` reordered to ``fold_ids`` (extra feature rows are ignored)."""
    row = {i: r for r, i in enumerate(ids)}
    missing = [i for i in fold_ids if i not in row]
    if missing:
        raise ValueError(f"{len(missing)} folded items have no features, e.g. {missing[:3]}")
    return features[[row[i] for i in fold_ids]]


def read_features(path: str) -> tuple[list[str], np.ndarray]:
    """``id`` list ``[N]`` and ``feature`` matrix ``[N, D]`` of a features stage output.

    Args:
        path: Feature stage folder or its ``features.parquet``.
    """
    from activessf.io import fs as afs

    path = path if path.endswith(".parquet") else afs.join(path, "features.parquet")
    table = afs.read_table(path, ["id", "feature"])
    col = table["feature"].combine_chunks()
    feats = col.flatten().to_numpy(zero_copy_only=False).reshape(table.num_rows, -1)
    return table["id"].to_pylist(), feats


def frozen_eval(
    features: np.ndarray,
    ids: Sequence[str],
    folds: pa.Table,
    kind: Literal["logreg", "knn"] = "logreg",
    k: int = 20,
    c: float = 1.0,
    seed: int = 0,
) -> dict[str, Any]:
    """Probe frozen features on every fold.

    Args:
        features: ``[N, D]`` features, row i belongs to ``ids[i]``.
        ids: ``[N]`` item ids; every id of ``folds`` must be among them (others are ignored).
        folds: Assignment from ``folds.make_folds`` / ``read_folds`` (labels are taken from it).
        kind: ``logreg`` or ``knn``.
        k: Neighbours of the kNN probe (capped at the training size).
        c: Inverse L2 strength of the logistic regression.
        seed: Solver seed.

    Returns:
        The run report (``metrics.run_report``) with ``method`` = ``frozen-<kind>``.
    """
    x = _align(np.asarray(features, np.float64), [str(i) for i in ids], folds["id"].to_pylist())
    labels = folds["label"].to_pylist()
    classes = sorted(set(labels))
    y = np.asarray([classes.index(lab) for lab in labels])
    results = []
    for fold in range(num_folds(folds)):
        train, test = fold_indices(folds, fold)
        probe = make_probe(kind, min(k, len(train)), c, seed).fit(x[train], y[train])
        m = fold_metrics(y[test], _full_proba(probe, x[test], len(classes)), classes)
        results.append(m | {"fold": fold})
    return run_report(results, classes, f"frozen-{kind}", {"folds_digest": folds_digest(folds)})
