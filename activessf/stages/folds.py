"""The folds stage: one seeded, stratified fold assignment of the labeled crops, written once.

Every fine-tuning arm of a run reads the same file, so their scores are paired. ``activessf run``
makes it a stage of its own before the arms; a standalone ``activessf finetune`` makes it on
first use.
"""

from __future__ import annotations

import pyarrow as pa

from activessf.evaluation.folds import ensure_folds, make_folds, write_folds
from activessf.io.items import crop_items


def labeled_items(labeled: str) -> pa.Table:
    """The labeled crops (``id``, ``path``, ``label``) of an ImageFolder, region folder or manifest.

    Raises:
        FileNotFoundError: No labeled crop was found.
    """
    items = crop_items(labeled, labeled=True)
    items = items.filter(pa.compute.is_valid(items["label"]))
    if items.num_rows == 0:
        raise FileNotFoundError(f"{labeled}: no labeled images (expected <CLASS>/<image> folders)")
    return items


def run_folds(labeled: str, path: str, n_folds: int, seed: int, items: pa.Table | None = None,
              remake: bool = False) -> pa.Table:
    """Read the folds file at ``path``, or write it from the labeled crops (``ensure_folds``).

    A standalone fine-tune refuses a folds file that does not match its crops (another run's
    folds would silently change what is compared). The pipeline's folds stage ``remake``s it:
    it runs only when the labeled crops or the fold settings changed, and the assignment is a
    deterministic function of (ids, labels, folds, seed), so unchanged inputs rewrite the same file.

    Args:
        labeled: Labeled crops (as for :func:`labeled_items`).
        path: The folds file (Parquet: ``id``, ``label``, ``fold``).
        n_folds: Folds of a new assignment.
        seed: Seed of a new assignment.
        items: The labeled crops when the caller already listed them.
        remake: Write a new assignment even when the file exists.

    Returns:
        The fold assignment.
    """
    items = items if items is not None else labeled_items(labeled)
    ids, labels = items["id"].to_pylist(), items["label"].to_pylist()
    if remake:
        folds = make_folds(ids, labels, n_folds, seed)
        write_folds(folds, path)
        return folds
    return ensure_folds(path, ids, labels, n_folds, seed)
