"""When a fine-tuning fold is really done: its outputs carry the fingerprint of what made them.

A fold (and the final fit) counts as complete only when its ``metrics.json`` (``final.json``)
records the fingerprint of the current recipe, folds and labeled data. Another model, epoch count
or init file, or re-made crops, mean another fingerprint: the fold is retrained, under a Ray run
name that includes the fingerprint, so the old recipe's checkpoints are never resumed.
"""

from __future__ import annotations

import json
from typing import Any

from activessf.config import to_dict
from activessf.io import fs as afs
from activessf.io.markers import content_stamp, recipe_fingerprint

def finetune_fingerprint(cfg: Any, folds_digest: str, data_stamp: str) -> str:
    """Fingerprint of everything a fold's scores depend on.

    Args:
        cfg: ``FinetuneConfig``.
        folds_digest: ``evaluation.folds.folds_digest`` of the assignment.
        data_stamp: ``io.items.source_stamp`` of the labeled source (the crops' content).

    Returns:
        A 20-hex-digit fingerprint.
    """
    init = cfg.model.init
    # The init file's content: a re-pretrained encoder at the same path is new weights.
    init_stamp = None if init == "none" else content_stamp(init)
    return recipe_fingerprint("finetune", to_dict(cfg), folds_digest, data_stamp, init_stamp)


def recorded_fingerprint(path: str) -> str | None:
    """The ``fingerprint`` a fold's ``metrics.json`` (or ``final.json``) records; None if absent."""
    if not afs.exists(path):  # local or s3://: a fold finished on object storage is found too
        return None
    try:
        return json.loads(afs.read_bytes(path)).get("fingerprint")
    except (OSError, ValueError):
        return None


def ray_run_name(run_name: str, fold: Any, fp: str | None) -> str:
    """Ray Train run name of a fold: one per fingerprint, so a new recipe starts from scratch."""
    return f"{run_name}_fold{fold}" + (f"_{fp[:10]}" if fp else "")
