"""Which stages a run executes: all of them, up to ``--until STAGE``, or one arm's (``--only ARM``).

Iterating on the selection means rerunning the data stages and looking at them before paying
for pretraining (``--until selection``), or refitting one arm after changing its overrides
(``--only "MAE w/ selection"``). Skipped stages are simply not run now: a later run without the
flags continues from the state log (finished stages with unchanged fingerprints skip there).
"""

from __future__ import annotations

from typing import Any, Sequence

from activessf.config import ConfigError

# Stages that belong to the whole comparison rather than to one arm.
_TAIL = ("compare", "export", "predict", "report")


def _match(names: Sequence[str], until: str) -> int:
    """Index of the last stage named ``until`` or whose name starts with ``until`` + ``_``/``/``.

    So ``regions`` ends after both region stages, ``pretrain`` after every pretraining,
    ``finetune`` after every arm's fine-tuning; an exact name wins.
    """
    if until in names:
        return len(names) - 1 - list(reversed(names)).index(until)
    hits = [i for i, n in enumerate(names) if n.startswith(until + "_") or n.startswith(until + "/")]
    if until == "select":  # the command is ``activessf select``; the stage is ``selection``
        hits = [names.index("selection")] if "selection" in names else []
    if not hits:
        raise ConfigError(f"--until: no stage {until!r} in this run; stages: {', '.join(names)}")
    return hits[-1]


def arm_slugs(plan: Any, only: Sequence[str]) -> list[str]:
    """The arm slugs ``only`` names (an arm's name or its folder slug, case-insensitive)."""
    by_key = {}
    for slug, a in plan.arms.items():
        by_key[slug] = slug
        by_key[a.arm.name.lower()] = slug
    unknown = [o for o in only if o.lower() not in by_key and o not in by_key]
    if unknown:
        names = ", ".join(repr(a.arm.name) for a in plan.arms.values())
        raise ConfigError(f"--only: no arm {unknown[0]!r}; arms: {names}")
    return list(dict.fromkeys(by_key.get(o, by_key.get(o.lower())) for o in only))


def scope_stages(stages: list, plan: Any, until: str | None = None, only: Sequence[str] = ()) -> list:
    """The stages to run, in order, for ``--until`` and ``--only``.

    Args:
        stages: Every stage of the run (objects with ``name`` and ``upstream``), in order.
        plan: The run's ``Plan`` (its ``arms``).
        until: Stop after this stage (see ``_match``); None = run to the end.
        only: Arm names or slugs; the other arms' pretraining and fine-tuning are left out, and
            so are the comparison, export and report (a full run makes them). Empty = every arm.

    Returns:
        The kept stages: each kept stage's upstream stages are kept too.

    Raises:
        ConfigError: An unknown stage or arm, naming the valid ones.
    """
    keep = list(stages)
    if only:
        slugs = arm_slugs(plan, only)
        wanted = {f"finetune/{s}" for s in slugs}
        other_arms = {f"finetune/{s}" for s in plan.arms} - wanted
        keep = [st for st in keep if st.name not in other_arms and st.name not in _TAIL]
        # Drop what only the other arms needed (their pretraining, the random subset), keeping
        # every stage upstream of the wanted arms.
        needed = _closure(keep, wanted)
        keep = [st for st in keep if st.name in needed or not _arm_specific(st, plan)]
    if until is not None:
        names = [st.name for st in stages]
        last = _match(names, until)
        allowed = set(names[: last + 1])
        keep = [st for st in keep if st.name in allowed]
    return keep


def _closure(stages: list, roots: set[str]) -> set[str]:
    """``roots`` and every stage upstream of them."""
    by_name = {st.name: st for st in stages}
    out, todo = set(), list(roots)
    while todo:
        name = todo.pop()
        if name in out or name not in by_name:
            continue
        out.add(name)
        todo.extend(by_name[name].upstream)
    return out


def _arm_specific(stage: Any, plan: Any) -> bool:
    """Stages that exist for some arm: pretrainings, the random subset, fine-tuning."""
    return stage.name in plan.pretrains or stage.name == "random_subset" or stage.name.startswith("finetune/")
