"""Fine-tuning outputs: per-fold predictions and metrics, the run's metrics.json and figure.

Layout of a run folder: ``fold_<k>/predictions.parquet`` (id, label, predicted, probabilities),
``fold_<k>/metrics.json`` (its metrics + training history + the recipe's fingerprint; written
last, so it marks the fold complete for that recipe), ``metrics.json`` (per-fold and mean/std, see ``evaluation.metrics``),
``confusion_matrix.png``; with ``train.final_fit``, ``final/model.safetensors`` (the model
trained on every labeled crop) and ``final/final.json`` (classes, config, history; written last).
"""

from __future__ import annotations

import json
import os
from typing import Any, Sequence

import numpy as np
import pyarrow as pa

from activessf.evaluation.compare import plot_confusions
from activessf.evaluation.metrics import fold_metrics, run_report
from activessf.finetune.freshness import recorded_fingerprint
from activessf.finetune.inputs import FINAL, FoldInputs, FoldRun
from activessf.io import fs as afs
from activessf.io.atomic import (
    atomic_write_bytes,
    atomic_write_table,
    atomic_write_text,
)


def _fold_dir(output: str, fold: int) -> str:
    return os.path.join(output, f"fold_{fold}")


def fold_done(output: str, fold: int, fingerprint: str) -> bool:
    """Whether fold ``fold``'s outputs are complete for this recipe (``freshness``)."""
    return recorded_fingerprint(os.path.join(_fold_dir(output, fold), "metrics.json")) == fingerprint


def predictions_table(ids: Sequence[str], y: np.ndarray, proba: np.ndarray, classes: Sequence[str], fold: int) -> pa.Table:
    """``[M]`` rows: id, label, predicted (class names), probabilities (``[K]`` list), fold."""
    pred = proba.argmax(axis=1) if len(proba) else np.zeros(0, np.int64)
    return pa.table({
        "id": list(ids), "label": [classes[i] for i in y], "predicted": [classes[i] for i in pred],
        "probabilities": pa.array(proba.astype(np.float32).tolist(), pa.list_(pa.float32())),
        "fold": pa.array([fold] * len(ids), pa.int32()),
    })


def write_fold(output: str, inputs: FoldInputs, run: FoldRun, method: str) -> dict[str, Any]:
    """Predictions and metrics of one fold (test rows that failed to decode are counted, not scored).

    Args:
        output: Run folder.
        inputs: The fold's rows.
        run: Its finished run (``proba`` ``[M, K]`` of the ``kept`` ``[M]`` test rows).
        method: Display name.

    Returns:
        The fold's metrics (``metrics.fold_metrics`` plus ``fold``, ``undecodable``, ``history``).
    """
    fold, classes, kept = inputs.fold, inputs.classes, np.asarray(run.kept, np.int64)
    ids = [inputs.test_ids[i] for i in kept]
    y = np.asarray(inputs.test_y, np.int64)[kept]
    folder = _fold_dir(output, fold)
    atomic_write_table(os.path.join(folder, "predictions.parquet"), predictions_table(ids, y, run.proba, classes, fold))
    m = fold_metrics(y, run.proba, classes, inputs.scored_apart) | {
        "fold": fold, "method": method, "undecodable": len(inputs.test_ids) - len(kept), "history": run.history,
        "checkpoint": run.checkpoint, "fingerprint": inputs.fingerprint}
    atomic_write_text(os.path.join(folder, "metrics.json"), json.dumps(m, indent=1))
    return m


def load_fold(output: str, fold: int) -> dict[str, Any]:
    """A completed fold's metrics (without its training history)."""
    m = json.loads(afs.read_bytes(afs.join(_fold_dir(output, fold), "metrics.json")))  # local or s3://
    m.pop("history", None)
    return m


def write_run(output: str, folds: Sequence[dict], classes: Sequence[str], method: str, extra: dict) -> dict[str, Any]:
    """``metrics.json`` (per fold + mean/std) and ``confusion_matrix.png`` of the run.

    Returns:
        ``metrics`` and ``confusion`` paths and the ``report`` itself.
    """
    report = run_report(folds, classes, method, extra)
    paths = {"metrics": os.path.join(output, "metrics.json"), "confusion": os.path.join(output, "confusion_matrix.png")}
    atomic_write_text(paths["metrics"], json.dumps(report, indent=1))
    tables = {"classes": list(classes), "methods": [method], "runs": [report]}
    atomic_write_bytes(paths["confusion"], plot_confusions(tables))
    return paths | {"report": report}


def final_done(output: str, fingerprint: str) -> bool:
    """Whether the final fit's outputs are complete for this recipe (``freshness``)."""
    return recorded_fingerprint(os.path.join(output, FINAL, "final.json")) == fingerprint


def write_final(output: str, run: FoldRun, classes: Sequence[str], cfg: Any, fingerprint: str | None = None) -> str:
    """The final model's weights (safetensors) and its record; returns the weights path.

    Args:
        output: Run folder.
        run: The final fit (its ``model`` state dict and ``history``).
        classes: Class names in output order.
        cfg: The ``FinetuneConfig`` it was trained with.
        fingerprint: ``freshness.finetune_fingerprint`` of the recipe (``final_done`` checks it).
    """
    from safetensors.torch import save

    from activessf.config import to_dict

    folder = os.path.join(output, FINAL)
    # Clones: safetensors refuses tensors that share storage (tied weights, views).
    tensors = {k: v.detach().cpu().contiguous().clone() for k, v in run.model.items()}
    weights = os.path.join(folder, "model.safetensors")
    atomic_write_bytes(weights, save(tensors))
    record = {"classes": list(classes), "config": to_dict(cfg), "history": run.history,
              "trained_on": "all labeled crops", "checkpoint": run.checkpoint, "fingerprint": fingerprint}
    atomic_write_text(os.path.join(folder, "final.json"), json.dumps(record, indent=1, default=str))
    return weights
