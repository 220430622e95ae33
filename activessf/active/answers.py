"""Labels coming back from the people labeling: read them and check every one (no Ray).

Two formats: a CSV with ``region_id`` and ``label`` columns, or a Label Studio JSON export of the
tasks ``activessf query`` wrote (full export: ``data.region_id`` and each annotation's choice;
JSON-MIN: ``region_id`` and ``label`` per item). A task without an answer is left out (not
labeled yet); a cancelled annotation is no answer.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from typing import Iterable, Sequence

from activessf.active import NOT_A_CELL
from activessf.active.outputs import FROM_NAME
from activessf.io.sources import InputError


@dataclass
class Answer:
    """One label for one cell, and where it was read (for messages)."""

    region_id: str
    label: str
    where: str


def read_answers(path: str) -> list[Answer]:
    """Every answer in a CSV or Label Studio JSON file, in file order.

    Raises:
        InputError: the file is not one of the two formats.
    """
    if path.lower().endswith(".json"):
        try:
            with open(path, encoding="utf-8") as fh:
                items = json.load(fh)
        except ValueError as exc:
            raise InputError(f"{path}: not valid JSON ({exc})") from exc
        if not isinstance(items, list):
            raise InputError(f"{path}: a Label Studio export is a JSON list of tasks")
        return [a for n, item in enumerate(items, 1) for a in _task_answers(item, f"{path} task {n}")]
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        missing = {"region_id", "label"} - set(reader.fieldnames or [])
        if missing:
            raise InputError(f"{path}: needs columns region_id and label (missing {', '.join(sorted(missing))})")
        return [Answer(str(r["region_id"] or "").strip(), str(r["label"] or "").strip(), f"{path} row {n}")
                for n, r in enumerate(reader, 1)]


def _task_answers(item: dict, where: str) -> Iterable[Answer]:
    """Answers of one exported task: each non-cancelled annotation's choice (JSON-MIN: the item's)."""
    if not isinstance(item, dict):
        raise InputError(f"{where}: expected a task object")
    if "data" not in item:  # JSON-MIN: the task's data fields and the choice, flat
        if item.get(FROM_NAME) is not None:
            yield Answer(str(item.get("region_id", "")), _choice(item[FROM_NAME]), where)
        return
    rid = str(item["data"].get("region_id", ""))
    for ann in item.get("annotations") or []:
        if ann.get("was_cancelled"):
            continue
        for res in ann.get("result") or []:
            if res.get("type") == "choices" and res.get("from_name", FROM_NAME) == FROM_NAME:
                yield Answer(rid, _choice(res["value"]["choices"]), f"{where} annotation {ann.get('id', '?')}")


def _choice(value) -> str:
    """A choice as exported: a string, a one-item list, or JSON-MIN's ``{"choices": [...]}``."""
    if isinstance(value, dict):
        value = value.get("choices", [])
    if isinstance(value, list):
        return str(value[0]).strip() if len(value) == 1 else " | ".join(map(str, value))
    return str(value).strip()


def check_answers(answers: Sequence[Answer], classes: Sequence[str], queried: set[str]) -> dict[str, str]:
    """Region id -> label, once every answer is a known class or "not a target cell" for a queried id.

    Two equal answers for one id count once; every problem is named in one message.

    Raises:
        InputError: unknown labels, ids never queried, or ids with disagreeing answers (nothing is
            written by the caller then).
    """
    valid = set(classes) | {NOT_A_CELL}
    unknown = [a for a in answers if a.label not in valid]
    never = [a for a in answers if a.region_id not in queried]
    seen: dict[str, set[str]] = {}
    for a in answers:
        seen.setdefault(a.region_id, set()).add(a.label)
    conflicts = {rid: sorted(labels) for rid, labels in seen.items() if len(labels) > 1}
    problems = []
    if unknown:
        problems.append("unknown label(s) " + ", ".join(f"{a.label!r} ({a.where}, {a.region_id})" for a in unknown[:10])
                        + f"; valid: {', '.join(classes)}, {NOT_A_CELL!r}")
    if never:
        problems.append("never queried: " + ", ".join(f"{a.region_id!r} ({a.where})" for a in never[:10]))
    if conflicts:
        problems.append("answers disagree: " + ", ".join(f"{rid} {labels}" for rid, labels in list(conflicts.items())[:10]))
    if problems:
        raise InputError(f"{len(answers)} answers not imported, nothing written: " + "; ".join(problems))
    if not answers:
        raise InputError("no answers found (a task without an annotation is not an answer)")
    return {rid: next(iter(labels)) for rid, labels in seen.items()}
