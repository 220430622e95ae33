"""Compare fine-tuning runs evaluated on the same folds: tables (Markdown, JSON) and figures.

Table II style: mean +- std of each metric per method; ``*`` marks a method whose per-fold
scores differ from the reference (first) run's by a paired t-test (``scipy.stats.ttest_rel``,
folds matched by index) with p < 0.05. Table I style: per-class PR-AUC (mean over folds).
"""

from __future__ import annotations

import io
import json
import math
import os
from typing import Any, Sequence

import numpy as np
from scipy.stats import ttest_rel

from activessf.evaluation.metrics import SCALAR_METRICS
from activessf.io import fs as afs
from activessf.io.atomic import atomic_write_bytes, atomic_write_text

ALPHA = 0.05


def load_run(run_dir: str) -> dict[str, Any]:
    """A run's ``metrics.json`` (see ``metrics.run_report``), with ``path`` added."""
    report = json.loads(afs.read_bytes(afs.join(run_dir, "metrics.json")).decode("utf-8"))
    report["path"] = run_dir
    return report


def paired_pvalue(a: Sequence[float], b: Sequence[float]) -> float | None:
    """Two-sided paired t-test p-value; None when undefined (< 2 pairs, or constant differences)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if len(a) != len(b) or len(a) < 2 or np.allclose(a - b, (a - b)[0]):
        # Constant differences make the t statistic infinite or NaN: no test, no star.
        return None
    p = float(ttest_rel(a, b).pvalue)
    return None if math.isnan(p) else p


def _fold_scores(run: dict, metric: str) -> dict[int, float]:
    return {f["fold"]: f[metric] for f in run["folds"]}


def _check_paired(runs: Sequence[dict]) -> None:
    digests = {r.get("folds_digest") for r in runs}
    if len(digests) > 1:
        raise ValueError("runs were evaluated on different folds; paired comparison is invalid: "
                         + ", ".join(f"{r['path']}={r.get('folds_digest')}" for r in runs))
    classes = {tuple(r["classes"]) for r in runs}
    if len(classes) > 1:
        raise ValueError("runs have different class lists")


def compare(run_dirs: Sequence[str], names: Sequence[str] | None = None) -> dict[str, Any]:
    """Table II and Table I of the runs, the first being the reference of the t-tests.

    Args:
        run_dirs: Run output folders, each with a ``metrics.json``.
        names: Display names (default: each run's ``method``, made unique with its folder name).

    Returns:
        ``methods``, ``classes``, ``table2`` (rows: method, per metric mean/std/p/star),
        ``table1`` (rows: class, per method mean/std) and ``runs`` (the loaded reports).
    """
    runs = [load_run(d) for d in run_dirs]
    _check_paired(runs)
    labels = list(names) if names else [r.get("method") or os.path.basename(r["path"].rstrip("/")) for r in runs]
    if len(set(labels)) < len(labels):
        labels = [f"{m} ({os.path.basename(r['path'].rstrip('/'))})" for m, r in zip(labels, runs)]
    ref = runs[0]
    table2 = []
    for label, run in zip(labels, runs):
        row: dict[str, Any] = {"method": label}
        for m in SCALAR_METRICS:
            mine, base = _fold_scores(run, m), _fold_scores(ref, m)
            common = sorted(set(mine) & set(base))
            p = None if run is ref else paired_pvalue([mine[k] for k in common], [base[k] for k in common])
            s = run["summary"][m]
            row[m] = {"mean": s["mean"], "std": s["std"], "p": p, "star": p is not None and p < ALPHA}
        table2.append(row)
    classes = list(ref["classes"])
    table1 = [{"class": c, **{lab: run["summary"]["per_class_pr_auc"][c] for lab, run in zip(labels, runs)}}
              for c in classes]
    apart: dict[str, str] = {}
    for run in runs:
        apart.update(run.get("scored_apart") or {})
    return {"methods": labels, "classes": classes, "table2": table2, "table1": table1, "runs": runs,
            "scored_apart": dict(sorted(apart.items()))}


def _cell(stat: dict, star: bool = False) -> str:
    if stat.get("mean") is None:
        return "n/a"
    return f"{stat['mean']:.4f} ± {stat['std']:.4f}" + ("*" if star else "")


def to_markdown(tables: dict[str, Any]) -> str:
    """Both tables as Markdown (``*``: p < 0.05 vs the first method, paired t-test over folds)."""
    head = "| Method | " + " | ".join(SCALAR_METRICS) + " |"
    lines = ["## Table II: mean ± std over folds", "", head, "|" + "---|" * (len(SCALAR_METRICS) + 1)]
    for row in tables["table2"]:
        lines.append(f"| {row['method']} | " + " | ".join(_cell(row[m], row[m]["star"]) for m in SCALAR_METRICS) + " |")
    lines += ["", f"`*` p < {ALPHA} vs {tables['methods'][0]} (paired t-test on per-fold scores).", ""]
    lines += ["## Table I: per-class PR-AUC (mean ± std over folds)", ""]
    lines += ["| Class | " + " | ".join(tables["methods"]) + " |", "|" + "---|" * (len(tables["methods"]) + 1)]
    apart = tables.get("scored_apart") or {}
    for row in tables["table1"]:
        name = f"{row['class']} †" if row["class"] in apart else row["class"]
        lines.append(f"| {name} | " + " | ".join(_cell(row[m]) for m in tables["methods"]) + " |")
    if apart:
        lines += ["", "† scored apart, not in macro PR-AUC (fewer labeled images than folds, so each of its test "
                  "folds holds one image or none): " + "; ".join(f"{c}: {why}" for c, why in apart.items()) + "."]
    return "\n".join(lines) + "\n"


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    return buf.getvalue()


def plot_confusions(tables: dict[str, Any]) -> bytes:
    """Row-normalised confusion matrices (summed over folds), one panel per method, as PNG."""
    from matplotlib.figure import Figure

    classes, n = tables["classes"], len(tables["methods"])
    fig = Figure(figsize=(4.2 * n, 4.0))
    for i, (label, run) in enumerate(zip(tables["methods"], tables["runs"])):
        cm = np.asarray(run["summary"]["confusion_matrix"], np.float64)
        norm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
        ax = fig.add_subplot(1, n, i + 1)
        ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
        ax.set_xticks(range(len(classes)), classes, rotation=90, fontsize=7)
        ax.set_yticks(range(len(classes)), classes, fontsize=7)
        ax.set_title(label, fontsize=9)
        ax.set_xlabel("predicted")
        if i == 0:
            ax.set_ylabel("true")
    return _png(fig)


def plot_per_class(tables: dict[str, Any]) -> bytes:
    """Per-class PR-AUC grouped bars (mean, std over folds as error bar), one bar per method
    (the paper's Figure 3), as PNG."""
    from matplotlib.figure import Figure

    classes, methods = tables["classes"], tables["methods"]
    fig = Figure(figsize=(max(6.0, 0.7 * len(classes) * max(1, len(methods)) / 2 + 3), 3.8))
    ax = fig.add_subplot(1, 1, 1)
    width = 0.8 / len(methods)
    x = np.arange(len(classes))
    for j, m in enumerate(methods):
        means = [row[m]["mean"] if row[m]["mean"] is not None else 0.0 for row in tables["table1"]]
        stds = [row[m]["std"] if row[m]["std"] is not None else 0.0 for row in tables["table1"]]
        ax.bar(x + (j - (len(methods) - 1) / 2) * width, means, width, yerr=stds, capsize=2, label=m)
    ax.set_xticks(x, classes, rotation=45, fontsize=8)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("PR-AUC")
    ax.legend(fontsize=8)
    return _png(fig)


def write_comparison(run_dirs: Sequence[str], output: str, names: Sequence[str] | None = None) -> dict[str, str]:
    """Compare runs and write ``compare.md``, ``compare.json``, ``confusion_matrices.png``, ``per_class_pr_auc.png``.

    Returns:
        Written paths by role, plus ``markdown`` (the table text itself).
    """
    tables = compare(run_dirs, names)
    afs.makedirs(output)
    text = to_markdown(tables)
    public = {k: v for k, v in tables.items() if k != "runs"} | {"run_dirs": list(run_dirs)}
    paths = {"md": afs.join(output, "compare.md"), "json": afs.join(output, "compare.json"),
             "confusion": afs.join(output, "confusion_matrices.png"), "per_class": afs.join(output, "per_class_pr_auc.png")}
    atomic_write_text(paths["md"], text)
    atomic_write_text(paths["json"], json.dumps(public, indent=2))
    atomic_write_bytes(paths["confusion"], plot_confusions(tables))
    atomic_write_bytes(paths["per_class"], plot_per_class(tables))
    return paths | {"markdown": text}
