"""The bundle's ``README.md``: a short model card a person reads before trusting the model."""

from __future__ import annotations

from typing import Any


def _pm(v: dict[str, Any]) -> str:
    if v.get("mean") is None:
        return "n/a"
    return f"{v['mean']:.3f} ± {v['std']:.3f}"


def model_card(meta: dict[str, Any]) -> str:
    """Markdown model card from a bundle's ``model.json`` contents."""
    cv, inp, m = meta["cv"], meta["input"], meta["model"]
    arch = m.get("name", "ConvMAE encoder") + (f", {meta['members']} fold models averaged" if meta["members"] > 1 else "")
    lines = [
        f"# {meta['arm']}: cell classifier ({len(meta['classes'])} classes)", "",
        f"Made by activessf {meta['activessf_version']} on {meta['created']} from `{meta['run']}` "
        f"({meta['kind']}).", "",
        "## What it does", "",
        f"Classifies cell crops into: {', '.join(meta['classes'])}. `activessf predict --model <this folder>` "
        f"finds the cells of new images with region filtering (preset `{meta['regions'].get('preset')}`, the one "
        "its training crops were cut with) and classifies each.", "",
        "## Model", "",
        f"- architecture: {arch}",
        f"- input: {inp['size']} x {inp['size']} px, {inp['layout']}, mean {inp['mean']}, std {inp['std']}",
        f"- files: `model.safetensors` (PyTorch), `model.onnx` (input `{meta['onnx']['input']}` [N, 3, S, S], "
        f"output `{meta['onnx']['output']}` [N, K], dynamic batch), `model.json` (everything above)",
        "",
        f"## How good it is ({cv['n_folds']}-fold cross-validation of the same recipe)", "",
        "| metric | mean ± std |", "|---|---|",
        f"| accuracy | {_pm(cv['accuracy'])} |", f"| macro PR-AUC | {_pm(cv['macro_pr_auc'])} |",
        f"| macro F1 | {_pm(cv['macro_f1'])} |", "",
        "| class | PR-AUC |", "|---|---|",
        *[f"| {c} | {_pm(v)} |" for c, v in cv.get("per_class_pr_auc", {}).items()], "",
        "## Limits", "",
        "Scores hold for images like the training set (stain, magnification, scanner). Cells predicted "
        "with low confidence are flagged in `predictions.parquet`; review them. Not a medical device.", "",
    ]
    return "\n".join(lines)
