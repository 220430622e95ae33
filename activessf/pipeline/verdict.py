"""One sentence on whether a run's classifier is real: its best arm against chance and the other arms.

Chance is what a classifier that learned nothing scores on the same folds: accuracy of always
answering the most frequent class, and macro PR-AUC of a random ranking (each class's PR-AUC is
then its prevalence, so the macro mean is the mean prevalence of the scored classes).
"""

from __future__ import annotations

from typing import Any

from activessf.io import fs as afs


def chance_scores(folds_path: str) -> tuple[float, float, int]:
    """(accuracy, macro PR-AUC, number of classes) a classifier that learned nothing scores."""
    labels = afs.read_table(folds_path, ["label"])["label"].to_pylist()
    counts = {c: labels.count(c) for c in set(labels)}
    n = max(len(labels), 1)
    return max(counts.values(), default=0) / n, sum(v / n for v in counts.values()) / max(len(counts), 1), len(counts)


def _scores(stages: dict[str, dict], slug: str) -> tuple[float, float] | None:
    s = stages.get(f"finetune/{slug}", {}).get("summary", {})
    try:
        return float(s["accuracy"]["mean"]), float(s["macro_pr_auc"]["mean"])
    except (KeyError, TypeError):
        return None


def verdict(plan: Any, stages: dict[str, dict]) -> str | None:
    """The sentence, or None before every arm has scores.

    Args:
        plan: The run's ``Plan`` (arms, folds file).
        stages: Finished stages (name -> summary) from ``pipeline_state.json``.
    """
    scored = {slug: (arm, _scores(stages, slug)) for slug, (arm, _, _) in (getattr(plan, "arms", None) or {}).items()}
    if not scored or any(v is None for _, v in scored.values()) or not afs.exists(plan.path("folds.parquet")):
        return None
    acc0, pr0, k = chance_scores(plan.path("folds.parquet"))
    # The arm ``activessf export`` ships by default: best mean macro PR-AUC.
    best_slug = max(scored, key=lambda s: scored[s][1][1])
    best, (acc, pr) = scored[best_slug]
    supervised = best.pretrain == "none"
    others = [(arm, v) for s, (arm, v) in scored.items() if s != best_slug and (arm.pretrain == "none") != supervised]
    kind = "trained from scratch" if supervised else {
        "selected": "pretrained on the selected pool crops",
        "random": "pretrained on a random subset of the pool as large as the selection"}.get(
        best.pretrain, "pretrained on every pool crop")
    text = (f"The best arm, {best.name}, {kind}, scores accuracy {acc:.2f} and macro PR-AUC {pr:.2f} over {k} "
            f"classes, {acc / max(acc0, 1e-9):.1f}x and {pr / max(pr0, 1e-9):.1f}x chance ({acc0:.2f} by always "
            f"answering the most frequent class, {pr0:.2f} for a random ranking)")
    if others:
        what = ("the self-supervised arm" if supervised else "the supervised arm") + ("s" if len(others) > 1 else "")
        text += f"; {what} " + ", ".join(f"{arm.name} {a:.2f} and {p:.2f}" for arm, (a, p) in others)
    return text + "."
