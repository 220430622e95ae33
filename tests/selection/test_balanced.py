"""The balanced rule: class prototypes, the relevance gate and rarity-weighted quotas."""

import json

import numpy as np
import pyarrow.parquet as pq
import pytest

from activessf.config import ConfigError, build_config
from activessf.selection import budget_order, class_prototypes, quota_weights
from activessf.selection.config import SelectionConfig
from activessf.selection.stage import run_select
from tests.selection.test_stage import _write_features


def test_class_prototypes_are_class_means_in_sorted_class_order():
    x = np.array([[0, 0], [2, 0], [10, 10], [5, 5]], float)
    centres, assignment, names = class_prototypes(x, ["b", "b", "a", "c"])
    assert names == ["a", "b", "c"]
    np.testing.assert_array_equal(assignment, [1, 1, 0, 2])
    np.testing.assert_allclose(centres, [[10, 10], [1, 0], [5, 5]])
    # Cosine: rows are normalised before averaging, so the scale of a row does not count.
    centres, _, _ = class_prototypes(np.array([[3.0, 0], [0, 0.5]]), ["a", "a"], "cosine")
    np.testing.assert_allclose(centres, [[0.5, 0.5]])
    with pytest.raises(ValueError, match="label"):
        class_prototypes(x, ["a", None, "a", "b"])


def test_quota_weights_favour_rare_prototypes():
    np.testing.assert_allclose(quota_weights(np.array([40, 10, 0, 160]), 0.5), [2.0, 4.0, 0.0, 1.0])
    np.testing.assert_allclose(quota_weights(np.array([40, 10]), 0.0), [1.0, 1.0])
    with pytest.raises(ValueError):
        quota_weights(np.array([0, 0]), 1.0)


def test_weighted_round_robin_fills_each_cluster_in_proportion_to_its_weight():
    # Cluster 0 has weight 1, cluster 1 weight 3: any prefix keeps ~1:3 until cluster 1 runs out.
    cluster = np.array([0] * 10 + [1] * 4)
    ratio = np.concatenate([np.linspace(0, 0.9, 10), np.linspace(0, 0.9, 4)])
    order = budget_order(cluster, ratio, np.array([1.0, 3.0]))
    assert np.bincount(cluster[order[:4]], minlength=2).tolist() == [1, 3]
    assert np.bincount(cluster[order[:8]], minlength=2).tolist() == [4, 4]  # cluster 1 exhausted
    # Within a cluster, closest first; equal weights = the plain round-robin.
    assert ratio[order[cluster[order] == 0]].tolist() == sorted(ratio[:10])
    np.testing.assert_array_equal(budget_order(cluster, ratio, np.ones(2)), budget_order(cluster, ratio))


def test_balanced_stage_keeps_the_budget_fraction_gates_outliers_and_favours_the_rare_class(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    centres = np.array([[0, 0], [10, 0], [0, 10]], float)
    sizes = [60, 20, 5]  # the labeled mix: C is rare
    lab = np.concatenate([c + rng.normal(0, 0.5, (n, 2)) for c, n in zip(centres, sizes)])
    labels = [name for name, n in zip("ABC", sizes) for _ in range(n)]
    # The pool: 100 per class, plus 30 far-off rows (debris) nearest to some class but outside its gate.
    unl = np.concatenate([np.repeat(centres, 100, axis=0) + rng.normal(0, 0.5, (300, 2)), rng.normal(30, 1, (30, 2))])
    _write_features(tmp_path / "lab", lab, labels, "l")
    _write_features(tmp_path / "unl", unl)
    monkeypatch.setattr("activessf.selection.stage._contact_sheet", lambda *a, **k: None)
    cfg = build_config(SelectionConfig, None, ["budget_fraction=0.3", "alpha=1"])
    report = run_select(str(tmp_path / "lab"), str(tmp_path / "unl"), str(tmp_path / "out"), cfg)
    sel = pq.read_table(tmp_path / "out" / "selection.parquet").to_pydict()
    chosen = {int(i[1:]) for i, s in zip(sel["id"], sel["selected"]) if s}
    assert len(chosen) == round(0.3 * 330) == report["n_selected"]
    assert not chosen & set(range(300, 330))  # the debris is outside every gate
    per_class = [len(chosen & set(range(100 * c, 100 * c + 100))) for c in range(3)]
    on_disk = json.loads((tmp_path / "out" / "report.json").read_text())
    # Weights (60/n)^1 = 1 : 3 : 12: the rare class C takes every one of its candidates (its gate,
    # from 5 labeled rows, is the tightest), A and B share the rest 1 : 3.
    assert per_class[2] == on_disk["clusters"][2]["n_candidates"] < 100
    assert per_class[1] == 3 * per_class[0] and per_class[0] > 0
    assert on_disk["rule"] == "balanced" and [r["class"] for r in on_disk["clusters"]] == ["A", "B", "C"]
    assert [r["labeled_mix"] for r in on_disk["clusters"]] == [{"A": 60}, {"B": 20}, {"C": 5}]


def test_balanced_rule_refuses_unlabeled_prototype_rows(tmp_path):
    rng = np.random.default_rng(0)
    _write_features(tmp_path / "lab", rng.normal(size=(6, 2)), ["A", "A", None, "B", "B", "B"], "l")
    _write_features(tmp_path / "unl", rng.normal(size=(5, 2)))
    with pytest.raises(ConfigError, match="selection.rule"):
        run_select(str(tmp_path / "lab"), str(tmp_path / "unl"), str(tmp_path / "out"), SelectionConfig())
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("field,value", [("rule", "kmeans"), ("gate_quantile", 0.0), ("budget_fraction", 1.5)])
def test_new_selection_fields_are_checked(field, value):
    with pytest.raises(ConfigError, match=f"selection.{field}"):
        SelectionConfig(**{field: value})
