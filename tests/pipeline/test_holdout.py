"""The run's last step: export of the best arm, predict on held-back images, the result sentence."""

from __future__ import annotations

import json
import shutil
from types import SimpleNamespace

import pyarrow as pa
import pytest

from activessf.config import ConfigError
from activessf.data import SAMPLE_HOLDOUT
from activessf.io.atomic import atomic_write_table
from activessf.pipeline.config import ArmConfig, PipelineConfig
from activessf.pipeline.holdout import TABLE, image_rows, predict_holdout, report_lines
from activessf.pipeline.plan import build_plan
from activessf.pipeline.report import esc, report_markdown
from activessf.pipeline.run import stages
from activessf.pipeline.verdict import verdict
from tests.trained import CLASSES


def _plan(root, **pipe):
    return SimpleNamespace(root=str(root), path=lambda *p: str(root.joinpath(*p)), pipe=SimpleNamespace(**pipe))


def test_demo_predicts_its_held_back_images_after_the_comparison(tmp_path):
    plan = build_plan("configs/demo.yaml", [f"pipeline.output={tmp_path}"])
    names = [st.name for st in stages(plan, None)]
    assert names[-4:] == ["compare", "export", "predict", "report"]
    assert SAMPLE_HOLDOUT.is_dir() and len(list(SAMPLE_HOLDOUT.rglob("*.jpg"))) >= 5
    without = build_plan("configs/demo.yaml", [f"pipeline.output={tmp_path}", "pipeline.predict_holdout=null"])
    assert "export" not in [st.name for st in stages(without, None)]


def test_predict_holdout_needs_the_final_fit():
    with pytest.raises(ConfigError, match="pipeline.predict_holdout"):
        PipelineConfig(predict_holdout="sample", final_fit=False)


def test_each_image_is_its_central_cell_with_its_folder_as_true_class(tmp_path):
    atomic_write_table(str(tmp_path / "manifest.parquet"), pa.table({
        "image_id": ["a", "b", "c"], "source_path": ["/h/LY/a.jpg", "/h/EO/b.jpg", "/h/x/c.jpg"],
        "status": ["ok", "ok", "rejected"], "width": [96, 96, None], "height": [96, 96, None]}))
    # a: a corner cell and the central one; b: no cell over the centre (the most confident stands in).
    atomic_write_table(str(tmp_path / "predictions.parquet"), pa.table({
        "image_id": ["a", "a", "b", "b"], "x": [0, 30, 0, 60], "y": [0, 30, 0, 60], "w": [20, 40, 20, 20],
        "h": [20, 40, 20, 20], "predicted": ["SNE", "LY", "EO", "BA"], "confidence": [0.99, 0.8, 0.4, 0.6]}))
    rows = {r["image"]: r for r in image_rows(str(tmp_path), ["BA", "EO", "LY", "SNE"])}
    assert (rows["a.jpg"]["predicted"], rows["a.jpg"]["true"], rows["a.jpg"]["central"]) == ("LY", "LY", True)
    assert (rows["b.jpg"]["predicted"], rows["b.jpg"]["confidence"], rows["b.jpg"]["central"]) == ("BA", 0.6, False)
    assert (rows["c.jpg"]["predicted"], rows["c.jpg"]["true"], rows["c.jpg"]["cells"]) == ("", "", 0)


def test_held_back_section_keeps_data_strings_inert(tmp_path):
    (tmp_path / "predict_holdout").mkdir()
    (tmp_path / "bundle").mkdir()
    (tmp_path / "bundle" / "model.json").write_text(json.dumps({"arm": "<b>arm</b>"}))
    rows = [{"image": "![x](/etc/passwd).jpg", "predicted": "<script>", "confidence": 0.5, "true": "a|b", "cells": 1}]
    (tmp_path / TABLE).write_text(json.dumps(rows))
    text = "\n".join(report_lines(str(tmp_path), esc, lambda root, rel, alt: [f"![{alt}]({rel})"]))
    assert "<script>" not in text and "<b>" not in text and "](/etc/passwd)" not in text and "a\\|b" in text
    assert "0 of 1 classified correctly" in text and report_lines(str(tmp_path / "none"), esc, None) == []


def test_result_sentence_against_chance_and_the_other_kind_of_arm(tmp_path):
    atomic_write_table(str(tmp_path / "folds.parquet"), pa.table({"label": ["A"] * 6 + ["B"] * 2 + ["C"] * 2}))
    arms = {"mae": (ArmConfig("MAE", "selected"), "p", None), "r18": (ArmConfig("R18", "none"), None, None)}
    plan = SimpleNamespace(arms=arms, path=lambda *p: str(tmp_path.joinpath(*p)))
    score = lambda a, p: {"summary": {"accuracy": {"mean": a}, "macro_pr_auc": {"mean": p}}}  # noqa: E731
    text = verdict(plan, {"finetune/mae": score(0.5, 0.4), "finetune/r18": score(0.9, 0.8)})
    assert text.startswith("The best arm, R18, trained from scratch, scores accuracy 0.90 and macro PR-AUC 0.80 "
                           "over 3 classes, 1.5x and 2.4x chance (0.60 by always answering")
    assert text.endswith("; the self-supervised arm MAE 0.50 and 0.40.")
    assert verdict(plan, {"finetune/mae": score(0.5, 0.4)}) is None
    assert "**Result.** The best arm" in report_markdown(str(tmp_path), {}, text)


def test_the_final_model_classifies_held_back_cells(bundle, tmp_path):
    """The bundle of a real final fit (4 classes) on the embedded held-back cells of those classes."""
    for cls in CLASSES:
        shutil.copytree(SAMPLE_HOLDOUT / cls, tmp_path / "held" / cls)
    shutil.copytree(bundle, tmp_path / "run" / "bundle")
    plan = _plan(tmp_path / "run", predict_holdout=str(tmp_path / "held"))
    summary = predict_holdout(plan)
    assert summary["images"] == summary["with_true_class"] == len(CLASSES) and summary["cells"] >= len(CLASSES)
    rows = json.loads((tmp_path / "run" / TABLE).read_text())
    assert sorted(r["true"] for r in rows) == sorted(CLASSES) and all(r["predicted"] in CLASSES for r in rows)
    assert (tmp_path / "run" / "predict_holdout" / "holdout_sheet.png").read_bytes().startswith(b"\x89PNG")
    md = "\n".join(report_lines(plan.root, esc, lambda root, rel, alt: [f"![{alt}]({rel})"]))
    assert f"{summary['correct']} of {len(CLASSES)} classified correctly" in md
