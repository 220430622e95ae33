"""What selection did, per cluster: a JSON-ready summary and a contact sheet of selected crops."""

from __future__ import annotations

import io
import math
import os
from typing import Any

import cv2
import numpy as np

from activessf.selection.select import SelectionResult
from activessf.selection.thresholds import ClusterStats


def _num(value: float) -> float | None:
    # JSON has no NaN; an empty cluster's bounds become null.
    value = float(value)
    return None if math.isnan(value) else value


def selection_report(stats: ClusterStats, result: SelectionResult, alpha: float, k: int) -> dict[str, Any]:
    """Plain-python summary (JSON-serialisable) of thresholds and selection counts.

    Args:
        stats: From ``cluster_thresholds``.
        result: From ``select``.
        alpha: Eq. 8 exponent used.
        k: Number of prototypes.

    Returns:
        ``{alpha, k, n_rows, n_candidates, n_selected, clusters: [{cluster, size, lb, ub,
        threshold, n_assigned, n_candidates, n_selected}, ...]}``.
    """
    n_clusters = stats.k
    assigned = np.bincount(result.cluster, minlength=n_clusters)
    candidates = np.bincount(result.cluster[result.candidate], minlength=n_clusters)
    selected = np.bincount(result.cluster[result.selected], minlength=n_clusters)
    clusters = [
        {
            "cluster": i,
            "size": int(stats.size[i]),
            "lb": _num(stats.lb[i]),
            "ub": _num(stats.ub[i]),
            "threshold": _num(stats.threshold[i]),
            "n_assigned": int(assigned[i]),
            "n_candidates": int(candidates[i]),
            "n_selected": int(selected[i]),
        }
        for i in range(n_clusters)
    ]
    return {
        "alpha": float(alpha),
        "k": int(k),
        "n_rows": int(len(result.cluster)),
        "n_candidates": int(result.candidate.sum()),
        "n_selected": int(result.selected.sum()),
        "clusters": clusters,
    }


def _row_strip(crops: list[np.ndarray], per_row: int, thumb: int) -> np.ndarray:
    strip = np.full((thumb, per_row * thumb, 3), 255, dtype=np.uint8)
    for j, crop in enumerate(crops[:per_row]):
        crop = np.asarray(crop, dtype=np.uint8)
        interp = cv2.INTER_AREA if max(crop.shape[:2]) > thumb else cv2.INTER_LINEAR
        strip[:, j * thumb : (j + 1) * thumb] = cv2.resize(crop, (thumb, thumb), interpolation=interp)
    return strip


def selection_contact_sheet(
    crops_by_cluster: dict[int, list[np.ndarray]],
    path: str | os.PathLike,
    per_row: int = 8,
    thumb: int = 96,
    totals: dict[int, int] | None = None,
) -> None:
    """Write a PNG with one labelled row of selected crops per cluster (first ``per_row`` each).

    Args:
        crops_by_cluster: Cluster id -> crops ``[H, W, 3]`` uint8 RGB (any sizes).
        path: Output PNG (written atomically; local or object store).
        per_row: Crops shown per cluster.
        thumb: Side of each thumbnail in pixels.
        totals: Cluster id -> number selected in all (the title shows it; default: crops given).
    """
    # A bare Figure renders with Agg and touches no pyplot state (safe in workers and notebooks).
    from matplotlib.figure import Figure

    from activessf.io.atomic import atomic_write_bytes

    ids = sorted(crops_by_cluster)
    n_rows = max(1, len(ids))
    fig = Figure(figsize=(per_row * thumb / 72, n_rows * (thumb + 20) / 72))
    axes = fig.subplots(n_rows, 1, squeeze=False)
    for ax, cid in zip(axes[:, 0], ids):
        crops = crops_by_cluster[cid]
        ax.imshow(_row_strip(crops, per_row, thumb))
        total = len(crops) if totals is None else totals.get(cid, len(crops))
        ax.set_title(f"cluster {cid}: {total} selected (closest {min(len(crops), per_row)} shown)", fontsize=9, loc="left")
        ax.axis("off")
    if not ids:
        axes[0, 0].axis("off")
        axes[0, 0].set_title("no rows selected", fontsize=9)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=72, bbox_inches="tight")
    atomic_write_bytes(path, buf.getvalue())
