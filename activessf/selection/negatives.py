""""Not a target cell" answers (a labeled version's ``negatives.csv``) kept out of the selection.

``activessf label import`` writes the pool crops a labeler rejected (off-centre neighbours,
fragments, debris, cells of no labeled class) beside the new manifest. The selection picks what
to pretrain on by nearness to the labeled prototypes, so it would keep proposing such crops and
their look-alikes. Here a pool crop is dropped when it is a negative itself, or when a negative
is nearer to it (in the selection's metric) than its nearest prototype and every labeled crop:
the labeler has already said what that part of the feature space holds.

Negatives are pool crops, so their features are the pool table's own rows (matched by
``region_id`` = feature ``id``); a negative the pool does not hold (another pool) is counted and
otherwise ignored.
"""

from __future__ import annotations

import csv
import os

import numpy as np
import pyarrow.parquet as pq

from activessf.io import fs as afs
from activessf.io.markers import files_stamp
from activessf.selection.prototypes import prepare
from activessf.selection.select import assign_nearest

NEGATIVES = "negatives.csv"


def negatives_beside(labeled: str | None) -> str | None:
    """The ``negatives.csv`` next to a labeled manifest (a label import's version), else None."""
    if not labeled or not str(labeled).lower().endswith(".csv") or afs.is_remote(labeled):
        return None
    path = os.path.join(os.path.dirname(os.path.abspath(labeled)), NEGATIVES)
    return path if os.path.isfile(path) else None


def read_negative_ids(path: str) -> set[str]:
    """Region ids of a ``negatives.csv`` (its ``region_id`` column; empty ids are skipped)."""
    with open(path, newline="", encoding="utf-8") as fh:
        return {r["region_id"] for r in csv.DictReader(fh) if r.get("region_id")}


def negatives_stamp(path: str | None) -> str | None:
    """What the select stage's fingerprint records of the negatives (None: no file)."""
    return files_stamp([path]) if path else None


def _feature_rows(path: str, batch_size: int):
    """``(ids [B], features [B, D])`` batches of a features table."""
    fs, inner = afs.resolve(path)
    parquet = pq.ParquetFile(fs.open_input_file(inner))
    for batch in parquet.iter_batches(batch_size=batch_size, columns=["id", "feature"]):
        col = batch.column("feature")
        feats = col.flatten().to_numpy(zero_copy_only=False).reshape(len(batch), col.type.list_size)
        yield batch.column("id").to_pylist(), feats.astype(np.float32, copy=False)


def _negative_rows(path: str, neg_ids: set[str], batch_size: int) -> np.ndarray:
    """``[F, D]`` pool features of the negatives the table holds (F may be 0)."""
    found = [f[np.array([i in neg_ids for i in ids], bool)] for ids, f in _feature_rows(path, batch_size)]
    return np.concatenate(found) if found else np.zeros((0, 0), np.float32)


def nearer_to_negatives(path: str, neg_ids: set[str], to_prototype: dict[str, float], lab_feats: np.ndarray,
                        metric: str, batch_size: int) -> tuple[set[str], int]:
    """Pool rows a negative is nearer to than their prototype and than every labeled crop.

    Both tests, so that one negative next to a prototype does not wipe out the half of its
    cluster that happens to lie on the negative's side: a row goes only when its nearest
    neighbour among the labeled crops, their prototypes and the negatives is a negative.
    Streams the table twice (the negatives' rows, then every row against them); the labeled
    distances are computed only for rows nearer to a negative than to their prototype.

    Args:
        path: The pool's ``features.parquet``.
        neg_ids: Region ids answered "not a target cell".
        to_prototype: Pool row id -> distance to its nearest prototype.
        lab_feats: ``[L, D]`` labeled features (those the prototypes were fitted on).
        metric: ``euclidean`` or ``cosine`` (the selection's). batch_size: Rows read at a time.

    Returns:
        (ids to drop, the negatives among them included; how many negatives the table holds).
    """
    neg = _negative_rows(path, neg_ids, batch_size) if neg_ids else np.zeros((0, 0), np.float32)
    if len(neg) == 0:
        return set(), 0
    neg, lab = prepare(neg, metric), prepare(lab_feats, metric)
    drop: set[str] = set()
    for ids, feats in _feature_rows(path, batch_size):
        _, to_neg = assign_nearest(feats, neg, metric, batch_size)
        suspect = np.flatnonzero(to_neg < np.array([to_prototype.get(i, np.inf) for i in ids]))
        if len(suspect):
            _, to_lab = assign_nearest(feats[suspect], lab, metric, batch_size)
            drop.update(ids[j] for j in suspect[to_neg[suspect] < to_lab])
        drop.update(i for i in ids if i in neg_ids)
    return drop, len(neg)


def exclude_negatives(unl_path: str, ids: list[str], distance: np.ndarray, lab_feats: np.ndarray,
                      negatives: str | None, metric: str, batch_size: int) -> tuple[np.ndarray, dict]:
    """The drop mask for the select stage and a summary for its report.

    Args:
        unl_path: The pool's ``features.parquet``.
        ids: ``[M]`` pool row ids in the stage's order; distance: ``[M]`` to the nearest prototype.
        lab_feats: ``[L, D]`` labeled features.
        negatives: A ``negatives.csv`` or None (then nothing is dropped).
        metric, batch_size: The selection's.

    Returns:
        (``[M]`` bool drop mask, ``{"file", "negatives", "in_pool", "dropped"}``; {} without a file).
    """
    if not negatives:
        return np.zeros(len(ids), bool), {}
    neg_ids = read_negative_ids(negatives)
    drop_ids, in_pool = nearer_to_negatives(unl_path, neg_ids, dict(zip(ids, np.asarray(distance).tolist())),
                                            lab_feats, metric, batch_size)
    drop = np.array([i in drop_ids for i in ids], bool)
    return drop, {"file": negatives, "negatives": len(neg_ids), "in_pool": in_pool, "dropped": int(drop.sum())}
