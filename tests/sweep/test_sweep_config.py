"""Sweep space validation, overrides and the best-config YAML (pure)."""

from __future__ import annotations

import json

import pytest
import yaml

from activessf.config import ConfigError
from activessf.pipeline.plan import build_plan
from activessf.sweep.config import SweepConfig, as_overrides, example_values, parse_space
from activessf.sweep.results import best_tree, plot_objective, results_markdown, sort_rows, write_best_yaml
from tests.conftest import PROJECT_ROOT


@pytest.mark.parametrize("space, field", [
    ({"regions.crop_size": {"choice": [128]}}, "sweep.space.regions.crop_size"),
    ({"alpha": {"choice": [1]}}, "sweep.space.alpha"),
    ({"selection.alpha": {"normal": [0, 1]}}, "sweep.space.selection.alpha"),
    ({"selection.alpha": {"uniform": [2.0, 1.0]}}, "sweep.space.selection.alpha"),
    ({"selection.alpha": {"loguniform": [0, 1]}}, "sweep.space.selection.alpha"),
    ({}, "sweep.space"),
])
def test_bad_space_names_the_key(space, field):
    with pytest.raises(ConfigError, match=field.replace(".", r"\.")):
        parse_space(space)


def test_grid_search_rejects_ranges():
    with pytest.raises(ConfigError, match="sweep.search"):
        SweepConfig(search="grid", space={"selection.alpha": {"uniform": [0.5, 1.0]}})
    SweepConfig(search="grid", space={"selection.alpha": {"grid": [0.5, 1.0]}, "selection.k": {"choice": [4, 8]}})


def test_example_values_cover_both_ends_and_become_overrides():
    space = parse_space({"selection.alpha": {"uniform": [0.25, 2.0]}, "selection.k": {"randint": [4, 9]},
                         "selection.ub_quantile": {"choice": [None, 0.9]}})
    lows, highs = example_values(space)
    assert lows == {"selection.alpha": 0.25, "selection.k": 4, "selection.ub_quantile": None}
    assert highs == {"selection.alpha": 2.0, "selection.k": 8, "selection.ub_quantile": 0.9}
    assert as_overrides(lows) == ["selection.alpha=0.25", "selection.k=4", "selection.ub_quantile=null"]


def test_best_yaml_applies_params_and_loads_into_run(tmp_path):
    src = PROJECT_ROOT / "configs" / "sweep.yaml"
    best = {"trial_id": "abc_00002", "params": {"selection.alpha": 0.7, "selection.ub_quantile": None,
                                                "selection.k": 6}, "mean": 0.61, "std": 0.02}
    path = write_best_yaml(str(tmp_path / "best.yaml"), str(src), best, "macro_pr_auc", str(tmp_path / "best_run"))
    tree = yaml.safe_load(open(path))
    assert "sweep" not in tree and tree["selection"] == {"k": 6, "alpha": 0.7, "ub_quantile": None}
    plan = build_plan(path)
    assert (plan.selection.alpha, plan.selection.k, plan.selection.ub_quantile) == (0.7, 6, None)
    assert plan.pipe.output == str(tmp_path / "best_run")
    assert best_tree(str(src), {}, "x")["pretrain"] == yaml.safe_load(src.read_text())["pretrain"]


def test_results_table_and_plot():
    rows = sort_rows([
        {"trial_id": "a", "params": {"selection.alpha": 0.5, "selection.k": 6}, "mean": 0.4, "std": 0.1, "folds_done": 5,
         "n_selected": 10, "status": "DONE"},
        {"trial_id": "b", "params": {"selection.alpha": 1.5, "selection.k": 11}, "mean": 0.6, "std": 0.05, "folds_done": 5,
         "n_selected": 30, "status": "DONE"},
        {"trial_id": "c", "params": {"selection.alpha": 1.0, "selection.k": 16}, "mean": None, "std": None,
         "folds_done": 0, "n_selected": None, "status": "ERROR"},
    ])
    assert [r["trial_id"] for r in rows] == ["b", "a", "c"]
    md = results_markdown(rows, ["selection.alpha", "selection.k"], "macro_pr_auc")
    assert "| b | 1.5 | 11 | 0.6000 ± 0.0500 | 5 | 30 | DONE |" in md and "| c | 1 | 16 | n/a | 0 |" in md
    assert plot_objective(rows, ["selection.alpha", "selection.k"], "macro_pr_auc")[:4] == b"\x89PNG"
    assert json.loads(json.dumps(rows))[0]["mean"] == 0.6
