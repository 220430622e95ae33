"""``features.source`` in ``activessf run``: a labeled source trains its backbone as a stage before
the feature stages; a random source is announced in the summary and the report (no Ray here)."""

from __future__ import annotations

import json

from activessf.features.config import RANDOM_WARNING
from activessf.pipeline.plan import build_plan
from activessf.pipeline.report import report_markdown
from activessf.pipeline.run import StateLog, final_summary, stages


def _plan(tmp_path, source: str):
    return build_plan("configs/demo.yaml", [f"features.source={source}", f"pipeline.output={tmp_path}"])


def test_labeled_source_trains_the_backbone_before_features(tmp_path):
    plan = _plan(tmp_path, "labeled")
    by_name = {st.name: st for st in stages(plan, StateLog(str(tmp_path)))}
    names = list(by_name)
    assert names.index("labeled_crops") < names.index("feature_backbone") < names.index("features_labeled")
    assert by_name["feature_backbone"].upstream == ("labeled_crops",)
    assert "feature_backbone" in by_name["features_labeled"].upstream
    assert "feature_backbone" in by_name["features_pool"].upstream
    weights = tmp_path / "feature_backbone" / "final" / "model.safetensors"
    weights.parent.mkdir(parents=True)
    weights.write_bytes(b"")  # what the stage writes; the feature stages then read it
    assert plan.features_config().weights == str(weights)


def test_random_source_has_no_backbone_stage_and_says_so(tmp_path):
    plan = _plan(tmp_path, "random")
    assert "feature_backbone" not in [st.name for st in stages(plan, StateLog(str(tmp_path)))]
    assert plan.features_config() is plan.features
    assert RANDOM_WARNING in final_summary(plan, {}, 1.0, None)
    (tmp_path / "selection").mkdir()
    (tmp_path / "selection" / "report.json").write_text(json.dumps(
        {"k": 1, "alpha": 1.0, "n_rows": 2, "n_selected": 1, "clusters": [], "warning": RANDOM_WARNING}))
    assert f"**{RANDOM_WARNING}**" in report_markdown(str(tmp_path), {})
