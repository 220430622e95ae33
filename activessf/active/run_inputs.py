"""What a query reads from a finished run, and the run's log of cells already queried (no Ray).

A run is an ``activessf run`` folder: the pool's crops in ``regions_pool/``, the labeled crops
(``labeled_crops.parquet``, or ``pipeline.labeled`` itself), the final fits under ``finetune/``.
The log ``<run>/active/queried.csv`` gains one row per proposed cell, so no later query proposes
it again and ``activessf label import`` knows which ids were asked.
"""

from __future__ import annotations

import csv
import datetime as dt
import os
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc
import yaml

from activessf.io import fs as afs
from activessf.io.atomic import atomic_write_text
from activessf.io.sources import InputError, load_inputs, readable

LOG = os.path.join("active", "queried.csv")
LOG_COLUMNS = ("region_id", "image_id", "source_path", "x", "y", "w", "h", "pool_crop", "crop_path", "predicted",
               "score", "strategy", "rank", "query", "time")
POOL_COLUMNS = ["region_id", "image_id", "source_path", "x", "y", "w", "h", "crop_path"]


@dataclass
class RunInputs:
    """The pool, the labeled crops and what must not be proposed again.

    Attributes:
        pool: ``POOL_COLUMNS`` of every pool crop ``[N]``.
        labeled: ``source_path`` and ``label`` of every labeled crop ``[L]``.
        labeled_source: The labeled set the run trained on (folder or manifest), or None.
        taken: Region ids already labeled (a manifest's ``region_id`` column) or already queried.
    """

    pool: pa.Table
    labeled: pa.Table
    labeled_source: str | None
    taken: set[str]


def pipeline_config(run: str) -> dict:
    """``<run>/pipeline_config.yaml`` as a dict ({} for a run folder without one)."""
    path = os.path.join(run, "pipeline_config.yaml")
    if not os.path.isfile(path):
        return {}
    with open(path, encoding="utf-8") as fh:
        return yaml.safe_load(fh) or {}


def labeled_source(run: str) -> str | None:
    """The labeled set the run was given (``pipeline.labeled``; the embedded sample resolved)."""
    src = pipeline_config(run).get("pipeline", {}).get("labeled")
    if src == "sample":
        from activessf.data import SAMPLE_LABELED

        return str(SAMPLE_LABELED)
    return src


def labeled_crops(run: str, override: str | None) -> pa.Table:
    """``source_path``, ``label`` of the crops the model was trained on (what it saw as labeled)."""
    if override:
        return readable(load_inputs(override, labeled=True)).select(["source_path", "label"])
    central = os.path.join(run, "labeled_crops.parquet")
    if os.path.isfile(central):
        return afs.read_table(central, ["source_path", "label"])
    src = labeled_source(run)
    if src is None:
        raise InputError(f"{run}: no labeled_crops.parquet and no pipeline_config.yaml; pass --labeled LABELED_SET")
    return readable(load_inputs(src, labeled=True)).select(["source_path", "label"])


def labeled_region_ids(source: str | None) -> set[str]:
    """Pool region ids a labeled manifest already holds (its ``region_id`` column; label import writes one)."""
    if not source or not str(source).lower().endswith((".csv", ".parquet", ".pq")):
        return set()
    table = afs.read_table(source) if not source.lower().endswith(".csv") else _read_csv(source)
    if "region_id" not in table.column_names:
        return set()
    return {r for r in table["region_id"].to_pylist() if r}


def _read_csv(path: str) -> pa.Table:
    import pyarrow.csv as pacsv

    opts = pacsv.ConvertOptions(strings_can_be_null=True, column_types={"region_id": pa.string()})
    return pacsv.read_csv(path, convert_options=opts)


def read_run(run: str, pool_dir: str | None = None, labeled: str | None = None) -> RunInputs:
    """Everything a query needs from ``run`` besides the model.

    Args:
        run: Run folder (local).
        pool_dir: Region stage folder of the pool (default ``<run>/regions_pool``).
        labeled: Labeled set overriding the run's (folder or manifest).
    """
    pool_dir = pool_dir or os.path.join(run, "regions_pool")
    path = os.path.join(pool_dir, "regions.parquet")
    if not os.path.isfile(path):
        raise InputError(f"{pool_dir}: no regions.parquet (the pool's region filtering has not finished)")
    pool = afs.read_table(path, POOL_COLUMNS)
    pool = pool.take(pc.sort_indices(pool["region_id"]))
    src = labeled or labeled_source(run)
    taken = labeled_region_ids(src) | set(read_log(run)["region_id"])
    return RunInputs(pool, labeled_crops(run, labeled), src, taken)


def read_log(run: str) -> dict[str, list[str]]:
    """The queried log as columns of strings (empty columns when nothing was queried yet)."""
    path = os.path.join(run, LOG)
    cols: dict[str, list[str]] = {c: [] for c in LOG_COLUMNS}
    if not os.path.isfile(path):
        return cols
    with open(path, newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            for c in LOG_COLUMNS:
                cols[c].append(row.get(c, ""))
    return cols


def append_log(run: str, rows: list[dict]) -> str:
    """Add ``rows`` (``LOG_COLUMNS`` keys) to the queried log, rewritten atomically; returns its path."""
    import io

    path = os.path.join(run, LOG)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    old = read_log(run)
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=LOG_COLUMNS, lineterminator="\n")
    w.writeheader()
    for i in range(len(old["region_id"])):
        w.writerow({c: old[c][i] for c in LOG_COLUMNS})
    now = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    for row in rows:
        w.writerow({c: row.get(c, now if c == "time" else "") for c in LOG_COLUMNS})
    atomic_write_text(path, buf.getvalue())
    return path
