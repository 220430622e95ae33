"""Check every input of a run before its first stage, so a typo never costs a finished stage."""

from __future__ import annotations

from activessf.io import fs as afs
from activessf.io.sources import InputError, load_inputs, refuse_output_inside_input
from activessf.pipeline.holdout import holdout_input
from activessf.pipeline.plan import Plan


def check_inputs(plan: Plan) -> None:
    """Raise ``InputError`` naming the field unless every input of ``plan`` is usable now.

    Checks that ``pipeline.labeled``, ``pipeline.unlabeled`` and (when set)
    ``pipeline.predict_holdout`` exist, that the labeled set lists cleanly (ImageFolder layout, no
    blank or conflicting labels), and that the run folder is not inside any input. Weights and init files are checked when the configs are built.
    """
    sources = [("pipeline.labeled", plan.labeled_input()), ("pipeline.unlabeled", plan.unlabeled_input())]
    if plan.pipe.predict_holdout:
        sources.append(("pipeline.predict_holdout", holdout_input(plan.pipe)))
    for field, source in sources:
        if not afs.exists(source):
            raise InputError(f"{field}: {source} does not exist")
        refuse_output_inside_input(source, plan.root)
    try:
        # Listing only (no image is read): it is what the labeled stages do first.
        load_inputs(plan.labeled_input(), labeled=True)
    except InputError as exc:
        raise InputError(f"pipeline.labeled: {exc}") from exc
