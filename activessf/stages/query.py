"""``activessf query``: score the run's pool with its final model, rank on the driver, write the query.

The scoring pass runs on Ray Data (``activessf.distributed.query``) or in this process; the driver
keeps ``[N, K + D]`` floats (probabilities and penultimate features) and ranks them
(``activessf.active.strategies``), writes the query folder and appends the proposed cells to the
run's queried log.
"""

from __future__ import annotations

import json
import os
from typing import Iterable, Literal

import numpy as np
import pyarrow as pa

from activessf.active.config import QueryConfig
from activessf.active.outputs import write_outputs
from activessf.active.run_inputs import RunInputs, append_log, read_run
from activessf.active.scoring import ScoreCrops, read_batch, stack_lists
from activessf.active.strategies import Ranking, rank
from activessf.io.sources import InputError


def iter_local(paths: pa.Table, bundle: str, cfg: QueryConfig, size: int) -> Iterable[pa.Table]:
    """The same two maps in this process."""
    model = ScoreCrops(bundle, cfg.threads, cfg.use_gpu == "true", cfg.batch_size)
    for start in range(0, paths.num_rows, cfg.batch_size * 4):
        yield model(read_batch(paths.slice(start, cfg.batch_size * 4), size))


def score(paths: list[str], bundle: str, cfg: QueryConfig, size: int, executor: str) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities ``[N, K]`` (NaN rows: unreadable) and embedding ``[N, D]`` of crop files, in input order."""
    table = pa.table({"row": pa.array(np.arange(len(paths)), pa.int64()), "path": pa.array(paths, pa.string())})
    if executor == "ray":
        from activessf.distributed.query import iter_ray as run
    else:
        run = iter_local
    parts = list(run(table, bundle, cfg, size))
    out = pa.concat_tables(parts).combine_chunks()
    order = np.argsort(out["row"].to_numpy())
    if len(order) != len(paths):
        raise RuntimeError(f"query scoring lost crops: {len(paths)} given, {len(order)} scored")
    return stack_lists(out["probs"])[order], stack_lists(out["emb"])[order]


def _class_counts(labels: list[str], classes: list[str]) -> np.ndarray:
    counts = np.zeros(len(classes), np.int64)
    for name in labels:
        if name in classes:
            counts[classes.index(name)] += 1
    return counts


def _rows(inputs: RunInputs, ranking: Ranking, probs: np.ndarray, classes: list[str], strategy: str,
          out: str) -> list[dict]:
    """One dict per proposed cell, in query order (the CSV's, the log's and the tasks' rows)."""
    pool = inputs.pool.to_pydict()
    rows = []
    for r, (i, s) in enumerate(zip(ranking.index.tolist(), ranking.score.tolist()), start=1):
        top = int(np.argmax(probs[i]))
        rows.append({"rank": r, "region_id": pool["region_id"][i], "image_id": pool["image_id"][i],
                     "source_path": pool["source_path"][i], **{c: pool[c][i] for c in ("x", "y", "w", "h")},
                     "pool_crop": pool["crop_path"][i], "predicted": classes[top],
                     "confidence": round(float(probs[i, top]), 6), "score": round(float(s), 6),
                     "strategy": strategy, "query": os.path.abspath(out)})
    return rows


def _export_model(run: str, out: str, arm: str | None) -> dict:
    """The run's final model as a bundle in ``out/model`` (it records which model made the queries)."""
    from activessf.inference.export import export_bundle

    return export_bundle(run, os.path.join(out, "model"), arm)


def run_query(run: str, out: str, budget: int, cfg: QueryConfig, arm: str | None = None,
              pool_dir: str | None = None, labeled: str | None = None,
              executor: Literal["ray", "local"] = "ray") -> dict:
    """Propose ``budget`` pool cells of ``run`` for labeling, into the new folder ``out``.

    Args:
        run: Finished ``activessf run`` folder (local).
        out: Query folder to create (refused when it already holds a query).
        budget: Cells to propose (>= 1).
        cfg: Query config (strategy and scoring pass).
        arm: Arm whose final fit scores the pool (None = best by macro PR-AUC).
        pool_dir: Pool region folder (default ``<run>/regions_pool``).
        labeled: Labeled set overriding the run's (for the embedding's labeled side).
        executor: ``ray`` (Ray Data) or ``local`` (this process).

    Returns:
        Summary: ``proposed``, ``pool``, ``available``, ``strategy``, ``per_class`` (predicted), paths.
    """
    if budget < 1:
        raise InputError(f"--budget must be >= 1, got {budget}")
    if os.path.isfile(os.path.join(out, "queries.csv")):
        raise InputError(f"{out} already holds a query (queries.csv); choose a new folder for the next batch")
    inputs = read_run(run, pool_dir, labeled)
    os.makedirs(out, exist_ok=True)
    meta = _export_model(run, out, arm)
    classes, n_pool = list(meta["classes"]), inputs.pool.num_rows
    paths = inputs.pool["crop_path"].to_pylist() + inputs.labeled["source_path"].to_pylist()
    probs, emb = score(paths, os.path.join(out, "model"), cfg, int(meta["input"]["size"]), executor)
    taken = np.isin(np.asarray(inputs.pool["region_id"].to_pylist(), dtype=object), list(inputs.taken))
    available = ~taken & ~np.isnan(probs[:n_pool]).any(axis=1)
    lab_ok = ~np.isnan(probs[n_pool:]).any(axis=1)
    counts = _class_counts(inputs.labeled["label"].to_pylist(), classes)
    ranking = rank(np.nan_to_num(probs[:n_pool]), emb[:n_pool], emb[n_pool:][lab_ok], counts, available, budget, cfg,
                   covered=taken & ~np.isnan(probs[:n_pool]).any(axis=1))
    rows = _rows(inputs, ranking, probs, classes, cfg.strategy, out)
    written = write_outputs(out, rows, classes, meta["arm"], cfg.sheet_cols)
    log = append_log(run, rows)
    per_class: dict[str, int] = {}
    for row in rows:
        per_class[row["predicted"]] = per_class.get(row["predicted"], 0) + 1
    summary = {"run": os.path.abspath(run), "arm": meta["arm"], "strategy": cfg.strategy, "budget": budget,
               "proposed": len(rows), "pool": n_pool, "available": int(available.sum()),
               "already_taken": int(taken.sum()), "unreadable": int(np.isnan(probs).any(axis=1).sum()),
               "per_class": per_class, "files": {k: v for k, v in written.items() if v} | {"log": log}}
    with open(os.path.join(out, "query.json"), "w", encoding="utf-8") as fh:
        json.dump(summary, fh, indent=1)
    return summary
