"""The select stage (driver side): prototypes, thresholds and selection written to disk.

selection.parquet, one row per unlabeled crop:
    id, path: as in the unlabeled ``features.parquet``.
    cluster (int32): nearest prototype; distance (float64) to it; threshold (float64) of it.
    candidate (bool): distance <= threshold (eq. 9); selected (bool): kept after the budget.
"""

from __future__ import annotations

import io
import json
import sys

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from activessf import console
from activessf.config import ConfigError, to_dict
from activessf.features.config import RANDOM_WARNING
from activessf.features.stage import read_features
from activessf.io import fs as afs
from activessf.io.atomic import atomic_write_bytes, atomic_write_table
from activessf.io.decode import decode_image
from activessf.io.markers import begin_stage, files_stamp, fingerprint, read_marker, write_marker
from activessf.io.sources import InputError
from activessf.selection.config import SelectionConfig
from activessf.selection.negatives import exclude_negatives, negatives_stamp
from activessf.selection.prototypes import class_prototypes, fit_prototypes
from activessf.selection.report import selection_contact_sheet, selection_report
from activessf.selection.select import SelectionResult, assign_nearest, decide
from activessf.selection.thresholds import cluster_thresholds, quota_weights


def features_path(source: str) -> str:
    """Accept a feature stage folder or a ``features.parquet`` path."""
    return source if source.endswith(".parquet") else afs.join(source, "features.parquet")


def stream_assign(path: str, centres: np.ndarray, cfg: SelectionConfig) -> tuple[pa.Table, np.ndarray, np.ndarray]:
    """Nearest prototype of every unlabeled row, reading ``cfg.batch_size`` rows at a time.

    Returns:
        (``id``/``path`` table ``[M]``, cluster ``[M]`` int64, distance ``[M]`` float64).
    """
    fs, inner = afs.resolve(path)
    parquet = pq.ParquetFile(fs.open_input_file(inner))
    ids, clusters, distances = [], [], []
    for batch in parquet.iter_batches(batch_size=cfg.batch_size, columns=["id", "path", "feature"]):
        col = batch.column("feature")
        feats = col.flatten().to_numpy(zero_copy_only=False).reshape(len(batch), col.type.list_size)
        c, d = assign_nearest(feats.astype(np.float32, copy=False), centres, cfg.metric, cfg.batch_size)
        ids.append(pa.table({"id": batch.column("id"), "path": batch.column("path")}))
        clusters.append(c)
        distances.append(d)
    if not ids:
        return pa.table({"id": pa.array([], pa.string()), "path": pa.array([], pa.string())}), np.zeros(0, np.int64), np.zeros(0)
    # By id: the feature stage writes rows in completion order, and the budget breaks ties by row.
    table = pa.concat_tables(ids)
    order = pc.sort_indices(table, [("id", "ascending")]).to_numpy()
    return table.take(order), np.concatenate(clusters)[order], np.concatenate(distances)[order]


def cluster_label_mix(labels: list, assignment: np.ndarray, k: int) -> list[dict]:
    """Per prototype, how many labeled rows of each class it holds (what the cluster stands for)."""
    mix = [dict() for _ in range(k)]
    for lab, c in zip(labels, assignment):
        key = "unlabeled" if lab is None else str(lab)
        mix[int(c)][key] = mix[int(c)].get(key, 0) + 1
    return [dict(sorted(m.items(), key=lambda kv: -kv[1])) for m in mix]


def run_select(labeled: str, unlabeled: str, out_dir: str, cfg: SelectionConfig, force: bool = False,
               negatives: str | None = None) -> dict | None:
    """Fit prototypes on labeled features, select unlabeled rows, write every output.

    Args:
        labeled: Feature stage folder (or ``features.parquet``) of the labeled crops.
        unlabeled: Same, of the unlabeled crops.
        out_dir: Output folder.
        cfg: Selection config.
        force: Rerun even when complete.
        negatives: A label import's ``negatives.csv``: those pool crops, and the crops nearer to
            one of them than to their prototype and every labeled crop, are never selected.

    Returns:
        The report dict, or None when skipped as complete.
    """
    lab_path, unl_path = features_path(labeled), features_path(unlabeled)
    fp = fingerprint("select", to_dict(cfg), lab_path, unl_path, _stamp(lab_path), _stamp(unl_path),
                     *([negatives_stamp(negatives)] if negatives else []))
    lab_table, lab_feats, lab_meta = read_features(lab_path)
    check_same_embedding(lab_meta, _read_meta(unl_path), lab_path, unl_path)
    labels = lab_table["label"].to_pylist()
    check_labeled_rows(cfg, labels)
    if not begin_stage("select", out_dir, fp, cfg, force):
        return None
    centres, assignment, stats, weights, names = fit_rule(lab_feats, labels, cfg)
    ids, cluster, distance = stream_assign(unl_path, centres, cfg)
    drop, neg_report = exclude_negatives(unl_path, ids["id"].to_pylist(), distance, lab_feats, negatives,
                                         cfg.metric, cfg.batch_size)
    result = decide(cluster, np.where(drop, np.inf, distance), stats.threshold, rule_budget(cfg, len(ids)), weights)
    result.distance = distance
    _write_selection(out_dir, ids, result)
    buf = io.BytesIO()
    np.save(buf, centres.astype(np.float32))
    atomic_write_bytes(afs.join(out_dir, "prototypes.npy"), buf.getvalue())
    report = selection_report(stats, result, cfg.alpha, len(centres))
    report["rule"] = cfg.rule
    if neg_report:
        report["negatives"] = neg_report
    for i, (row, mix) in enumerate(zip(report["clusters"], cluster_label_mix(labels, assignment, len(centres)))):
        row["labeled_mix"] = mix
        if names:
            row["class"] = names[i]
    if random_features(lab_meta):
        report["warning"] = RANDOM_WARNING
        print(f"{'!' * 100}\nselect: {RANDOM_WARNING}\n{'!' * 100}", file=sys.stderr, flush=True)
    atomic_write_bytes(afs.join(out_dir, "report.json"), json.dumps(report, indent=2, allow_nan=False).encode())
    _contact_sheet(out_dir, ids, result)
    write_marker(out_dir, "select", fp, {k: report[k] for k in ("n_rows", "n_candidates", "n_selected")})
    console.detail(f"select: {report['n_selected']} of {report['n_rows']} unlabeled crops selected "
                   f"({report['n_candidates']} within thresholds; rule {cfg.rule}, {len(centres)} prototypes, "
                   f"alpha={cfg.alpha})")
    return report


def check_labeled_rows(cfg: SelectionConfig, labels: list) -> None:
    """Refuse, before any work, labeled features the rule cannot fit prototypes on.

    Raises:
        ConfigError: Naming the field (``selection.k`` or ``selection.rule``).
    """
    if cfg.rule == "paper" and cfg.k > len(labels):
        raise ConfigError(f"selection.k: {cfg.k} prototypes need at least {cfg.k} labeled rows, got {len(labels)}")
    if cfg.rule == "balanced" and (not labels or any(lab is None for lab in labels)):
        raise ConfigError("selection.rule: balanced builds one prototype per labeled class and needs a label on "
                          "every labeled feature row (extract the labeled crops with their labels, or use rule: paper)")


def fit_rule(lab_feats: np.ndarray, labels: list, cfg: SelectionConfig) -> tuple:
    """Prototypes and per-prototype thresholds and budget shares of ``cfg.rule``.

    Returns:
        (``centres`` ``[K, D]``, ``assignment`` ``[N]`` of the labeled rows, ``ClusterStats``,
        per-prototype budget ``weights`` ``[K]`` or None (plain round-robin), class names or None).
    """
    if cfg.rule == "paper":
        centres, assignment = fit_prototypes(lab_feats, cfg.k, cfg.n_init, cfg.seed, cfg.metric, cfg.max_iter)
        stats = cluster_thresholds(lab_feats, centres, assignment, cfg.alpha, cfg.lb_quantile, cfg.ub_quantile,
                                   cfg.metric, cfg.batch_size)
        return centres, assignment, stats, None, None
    centres, assignment, names = class_prototypes(lab_feats, labels, cfg.metric)
    # alpha 0 makes eq. 8's threshold UB, here the gate quantile of the class's own distances.
    stats = cluster_thresholds(lab_feats, centres, assignment, 0.0, None, cfg.gate_quantile, cfg.metric, cfg.batch_size)
    return centres, assignment, stats, quota_weights(stats.size, cfg.alpha), names


def rule_budget(cfg: SelectionConfig, n_pool: int) -> int | None:
    """How many crops the rule keeps at most: ``budget``, else ``budget_fraction`` of the pool
    (``balanced``), else every candidate (``paper``)."""
    if cfg.budget is not None or cfg.rule == "paper":
        return cfg.budget
    return max(1, round(cfg.budget_fraction * n_pool)) if n_pool else 0


def random_features(meta: dict) -> bool:
    """Whether a features table came from a randomly initialised backbone (no weights at all)."""
    return meta.get("source") == "random" or not meta.get("weights")


def _stamp(path: str) -> str:
    """Identity of a feature table for the skip check: its stage marker's fingerprint, else the
    file's size and mtime (a table written by hand or copied out of its stage folder)."""
    marker = read_marker(path.rsplit("/", 1)[0]) if path.endswith("features.parquet") else None
    return (marker or {}).get("fingerprint") or files_stamp([path])


def _read_meta(path: str) -> dict:
    """The ``activessf`` metadata of a features table, without reading its rows."""
    fs, inner = afs.resolve(path)
    meta = pq.read_schema(fs.open_input_file(inner)).metadata or {}
    return json.loads(meta.get(b"activessf", b"{}"))


def embedding_identity(meta: dict) -> dict:
    """What decides the feature space: backbone, its weights (path and file stamp) and
    preprocessing; the init seed only when there are no weights (a seeded random backbone)."""
    ident = {k: meta.get(k) for k in ("source", "backbone", "weights", "weights_stamp", "data_config")}
    if not meta.get("weights"):
        ident["seed"] = meta.get("seed")
    return ident


def check_same_embedding(lab_meta: dict, unl_meta: dict, lab_path: str, unl_path: str) -> None:
    """Refuse labeled and pool features from different backbones: distances across two
    feature spaces mean nothing, even when the dimensions happen to match.

    Raises:
        InputError: Naming both tables and what differs.
    """
    lab, unl = embedding_identity(lab_meta), embedding_identity(unl_meta)
    diff = sorted(k for k in lab if lab[k] != unl.get(k))
    if diff:
        show = lambda ident: ", ".join(f"{k}={ident.get(k)}" for k in diff)  # noqa: E731
        raise InputError(f"labeled and pool features come from different backbones ({', '.join(diff)} differ): "
                         f"{lab_path} has {show(lab)}; {unl_path} has {show(unl)}; "
                         "extract both with the same features config")


def _write_selection(out_dir: str, ids: pa.Table, result: SelectionResult) -> None:
    table = pa.table(
        {
            "id": ids["id"],
            "path": ids["path"],
            "cluster": pa.array(result.cluster.astype(np.int32)),
            "distance": pa.array(result.distance),
            "threshold": pa.array(result.threshold),
            "candidate": pa.array(result.candidate),
            "selected": pa.array(result.selected),
        }
    )
    atomic_write_table(afs.join(out_dir, "selection.parquet"), table)


def _contact_sheet(out_dir: str, ids: pa.Table, result: SelectionResult, per_row: int = 8) -> None:
    paths = ids["path"].to_pylist()
    crops: dict[int, list[np.ndarray]] = {}
    totals: dict[int, int] = {}
    for c in np.unique(result.cluster[result.selected]):
        rows = np.flatnonzero(result.selected & (result.cluster == c))
        totals[int(c)] = len(rows)
        rows = rows[np.argsort(result.distance[rows], kind="stable")][:per_row]
        images = [decode_image(afs.read_bytes(paths[r]), 1).image for r in rows]
        crops[int(c)] = [im for im in images if im is not None]
    selection_contact_sheet(crops, afs.join(out_dir, "selected_crops.png"), per_row=per_row, totals=totals)
