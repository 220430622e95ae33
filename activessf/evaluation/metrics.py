"""Classification metrics per fold and their mean +- std across folds (scikit-learn).

A class absent from a fold's test set has no defined PR-AUC (no positives) or recall: in that fold
its per-class PR-AUC is ``None`` and it is left out of the fold's macro PR-AUC and macro F1
(both are averages over the classes present in the fold's test set). A class with fewer labeled
images than folds is scored apart: its PR-AUC is reported but not averaged into macro PR-AUC.
Across folds, a per-class value is averaged over the folds where it is defined.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    confusion_matrix,
    f1_score,
)

# Scalar metrics reported per fold and compared between methods (Table II).
SCALAR_METRICS = ("accuracy", "macro_pr_auc", "macro_f1")


def fold_metrics(
    y_true: Sequence[int], proba: np.ndarray, classes: Sequence[str], apart: dict[str, str] | None = None
) -> dict[str, Any]:
    """Metrics of one fold's test predictions.

    Args:
        y_true: ``[N]`` true class indices into ``classes``.
        proba: ``[N, K]`` predicted class probabilities (K = ``len(classes)``).
        classes: Class names, in column order.
        apart: Classes scored apart (name -> reason, see ``folds.scored_apart``): their PR-AUC is
            reported per class but left out of ``macro_pr_auc``.

    Returns:
        ``accuracy``, ``macro_pr_auc``, ``macro_f1`` (floats), ``per_class_pr_auc``
        (name -> float or None when absent), ``confusion_matrix`` (``[K, K]`` list, rows = true),
        ``n_test``, ``present`` (names of the classes in the test set) and ``scored_apart``.
    """
    y = np.asarray(y_true, dtype=np.int64)
    proba = np.asarray(proba, dtype=np.float64)
    k = len(classes)
    if proba.shape != (len(y), k):
        raise ValueError(f"proba has shape {proba.shape}, expected {(len(y), k)}")
    pred = proba.argmax(axis=1)
    present = sorted(set(y.tolist()))
    per_class: dict[str, float | None] = {}
    for c, name in enumerate(classes):
        # One-vs-rest average precision; undefined without positives, so None (not 0).
        per_class[name] = float(average_precision_score(y == c, proba[:, c])) if c in present else None
    apart = dict(apart or {})
    # A class seen once or twice in a test fold scores near 1.0 or 0.0 by chance: not averaged in.
    defined = [v for name, v in per_class.items() if v is not None and name not in apart]
    return {
        "accuracy": float(accuracy_score(y, pred)),
        "macro_pr_auc": float(np.mean(defined)) if defined else float("nan"),
        # labels=present: a class with no test items is excluded, as for PR-AUC.
        "macro_f1": float(f1_score(y, pred, labels=present, average="macro", zero_division=0)),
        "per_class_pr_auc": per_class,
        "confusion_matrix": confusion_matrix(y, pred, labels=list(range(k))).tolist(),
        "n_test": int(len(y)),
        "present": [classes[c] for c in present],
        "scored_apart": apart,
    }


def mean_std(values: Sequence[float | None]) -> dict[str, float | int | None]:
    """Mean and sample std (ddof=1; 0 for a single value) of the defined values.

    Returns:
        ``mean``, ``std`` (None when no value is defined) and ``n`` (values used).
    """
    v = np.asarray([x for x in values if x is not None and not np.isnan(x)], dtype=np.float64)
    if len(v) == 0:
        return {"mean": None, "std": None, "n": 0}
    std = float(v.std(ddof=1)) if len(v) > 1 else 0.0
    return {"mean": float(v.mean()), "std": std, "n": int(len(v))}


def summarize_folds(folds: Sequence[dict[str, Any]], classes: Sequence[str]) -> dict[str, Any]:
    """Mean +- std across folds of each scalar metric and per-class PR-AUC, summed confusion.

    Args:
        folds: Outputs of :func:`fold_metrics`, one per fold.
        classes: Class names.

    Returns:
        ``{metric: {mean, std, n}}`` for ``SCALAR_METRICS``, ``per_class_pr_auc``
        (name -> {mean, std, n}) and ``confusion_matrix`` (``[K, K]`` summed over folds).
    """
    out: dict[str, Any] = {m: mean_std([f[m] for f in folds]) for m in SCALAR_METRICS}
    out["per_class_pr_auc"] = {c: mean_std([f["per_class_pr_auc"][c] for f in folds]) for c in classes}
    k = len(classes)
    total = np.zeros((k, k), np.int64)
    for f in folds:
        total += np.asarray(f["confusion_matrix"], np.int64)
    out["confusion_matrix"] = total.tolist()
    return out


def run_report(
    fold_results: Sequence[dict[str, Any]], classes: Sequence[str], method: str, extra: dict | None = None
) -> dict[str, Any]:
    """The ``metrics.json`` of a run: per-fold metrics (each with its ``fold``) and the summary.

    Args:
        fold_results: :func:`fold_metrics` outputs, each with an added ``fold`` index.
        classes: Class names.
        method: Display name of the method.
        extra: More facts to store (folds digest, config, ...).
    """
    ordered = sorted(fold_results, key=lambda f: f["fold"])
    return {"method": method, "classes": list(classes), "folds": ordered,
            "summary": summarize_folds(ordered, classes), **(extra or {})}
