"""The control arm of selection: a seeded random subset of the pool, as large as the selection.

Written as a selection stage folder (``selection.parquet`` with ``id``, ``path``, ``selected`` and
a completion marker), so pretraining reads it exactly as it reads the real selection
(``activessf.io.items.crop_items``): the two arms then differ by which crops they see, nothing
else.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from activessf.io import fs as afs
from activessf.io.atomic import atomic_write_table
from activessf.io.markers import begin_stage, fingerprint, stage_stamp, write_marker


def random_mask(n_rows: int, n_pick: int, seed: int) -> np.ndarray:
    """``[n_rows]`` bool with ``n_pick`` True rows drawn without replacement (seeded)."""
    if not 0 <= n_pick <= n_rows:
        raise ValueError(f"cannot pick {n_pick} of {n_rows} rows")
    mask = np.zeros(n_rows, dtype=bool)
    mask[np.random.default_rng(seed).choice(n_rows, size=n_pick, replace=False)] = True
    return mask


def run_random_subset(selection_dir: str, out_dir: str, seed: int = 0, force: bool = False) -> dict:
    """Pick as many pool crops at random as ``selection_dir`` selected; write them as a selection.

    Args:
        selection_dir: A finished select stage folder (its ``selection.parquet`` lists every pool
            crop, sorted by id, and which were selected).
        out_dir: Output folder (``selection.parquet``: ``id``, ``path``, ``selected``).
        seed: Seed of the draw; same seed and selection, same subset.
        force: Rerun even when complete.

    Returns:
        Summary: ``n_rows``, ``n_selected`` (= the selection's count), ``seed``.
    """
    stamp = stage_stamp(selection_dir)
    if stamp is None:
        raise FileNotFoundError(f"{selection_dir}: no finished selection (run the select stage first)")
    fp = fingerprint("random_subset", stamp, seed)
    table = afs.read_table(afs.join(selection_dir, "selection.parquet"), ["id", "path", "selected"])
    # Sorted by id so the draw does not depend on the row order the file happens to have.
    table = table.take(pc.sort_indices(table, [("id", "ascending")]))
    n_pick = int(pc.sum(table["selected"]).as_py() or 0)
    summary = {"n_rows": table.num_rows, "n_selected": n_pick, "seed": seed}
    if not begin_stage("random_subset", out_dir, fp, {"seed": seed, "selection": selection_dir}, force):
        return summary
    mask = random_mask(table.num_rows, n_pick, seed)
    out = pa.table({"id": table["id"], "path": table["path"], "selected": pa.array(mask)})
    atomic_write_table(afs.join(out_dir, "selection.parquet"), out)
    write_marker(out_dir, "random_subset", fp, summary)
    return summary
