"""``activessf label import``: answers for a run's queried cells -> a new labeled manifest version."""

from __future__ import annotations

import os

from activessf.active.answers import check_answers, read_answers
from activessf.active.manifest import write_version
from activessf.active.run_inputs import LOG, labeled_source, read_log
from activessf.io.sources import InputError


def run_classes(run: str) -> list[str]:
    """The class names the run's models were trained on (every arm shares them)."""
    from activessf.inference.export import find_arms

    return list(find_arms(run)[0].metrics["classes"])


def import_labels(run: str, labels: str, out: str, base: str | None = None) -> dict:
    """Check every answer in ``labels`` against ``run`` and write the new labeled version ``out``.

    Args:
        run: The run whose queries were answered (its ``active/queried.csv`` and classes).
        labels: CSV (``region_id,label``) or Label Studio JSON export.
        out: New folder for the version (``labeled.csv``, ``negatives.csv``, crops).
        base: Labeled set to extend (default: the run's ``pipeline.labeled``).

    Returns:
        ``write_version``'s summary plus ``answers`` (answers read).

    Raises:
        InputError: unknown class, id never queried, disagreeing answers, missing base; nothing
            is written then.
    """
    if not os.path.isfile(labels):
        raise InputError(f"{labels}: no such file")
    log = read_log(run)
    if not log["region_id"]:
        raise InputError(f"{run}: no queried cells ({LOG} is missing or empty); run `activessf query` first")
    answers = read_answers(labels)
    checked = check_answers(answers, run_classes(run), set(log["region_id"]))
    base = base or labeled_source(run)
    if not base:
        raise InputError(f"{run}: no pipeline_config.yaml to take the labeled set from; pass --base LABELED_SET")
    rows = {rid: {c: log[c][i] for c in log} for i, rid in enumerate(log["region_id"])}
    return write_version(checked, rows, base, out) | {"answers": len(answers)}
