import json

import numpy as np
import pytest
from scipy.stats import ttest_rel

from activessf.evaluation.compare import (
    compare,
    paired_pvalue,
    to_markdown,
    write_comparison,
)
from activessf.evaluation.metrics import fold_metrics, run_report

CLASSES = ["a", "b"]


def _run(tmp_path, name, accs, digest="d1"):
    """A run whose fold f gets accuracy ~ accs[f] (10 test items each)."""
    folds = []
    for f, acc in enumerate(accs):
        y = np.array([0] * 5 + [1] * 5)
        right = int(round(acc * 10))
        pred = np.where(np.arange(10) < right, y, 1 - y)
        proba = np.eye(2)[pred] * 0.8 + 0.1
        folds.append(fold_metrics(y, proba, CLASSES) | {"fold": f})
    d = tmp_path / name
    d.mkdir()
    (d / "metrics.json").write_text(json.dumps(run_report(folds, CLASSES, name, {"folds_digest": digest})))
    return str(d)


def test_paired_pvalue_matches_scipy():
    a, b = [0.9, 0.8, 0.85, 0.95, 0.7], [0.6, 0.65, 0.5, 0.7, 0.55]
    assert paired_pvalue(a, b) == pytest.approx(ttest_rel(a, b).pvalue)
    assert paired_pvalue([0.5, 0.6], [0.4, 0.5]) is None  # constant difference
    assert paired_pvalue([0.5], [0.4]) is None


def test_compare_tables_star_and_files(tmp_path):
    ref = _run(tmp_path, "ref", [0.5, 0.6, 0.5, 0.6, 0.5])
    better = _run(tmp_path, "better", [0.9, 0.9, 1.0, 0.9, 1.0])
    same = _run(tmp_path, "same", [0.6, 0.5, 0.5, 0.6, 0.5])
    tables = compare([ref, better, same])
    rows = {r["method"]: r for r in tables["table2"]}
    assert rows["better"]["accuracy"]["star"] and not rows["same"]["accuracy"]["star"]
    assert rows["ref"]["accuracy"]["p"] is None
    md = to_markdown(tables)
    assert "| better | 0.9400 ± 0.0548*" in md and "| ref | 0.5400 ± 0.0548 |" in md
    assert "Table I" in md and "| a |" in md
    paths = write_comparison([ref, better], str(tmp_path / "cmp"))
    for role in ("md", "json", "confusion", "per_class"):
        assert (tmp_path / "cmp" / paths[role].rsplit("/", 1)[-1]).stat().st_size > 0
    assert json.loads((tmp_path / "cmp" / "compare.json").read_text())["methods"] == ["ref", "better"]


def test_different_folds_refused(tmp_path):
    a = _run(tmp_path, "a", [0.5, 0.6])
    b = _run(tmp_path, "b", [0.5, 0.6], digest="other")
    with pytest.raises(ValueError, match="different folds"):
        compare([a, b])


def test_rare_class_is_scored_apart_and_compare_says_so(tmp_path):
    from activessf.evaluation.folds import make_folds, scored_apart

    # 'rare' has 2 labeled images for 5 folds: each of its test folds holds one image or none.
    labels = ["a"] * 10 + ["b"] * 10 + ["rare"] * 2
    folds = make_folds([f"i{k}" for k in range(len(labels))], labels, n_folds=5)
    apart = scored_apart(folds, warn="test")
    assert list(apart) == ["rare"] and "2 labeled images < 5 folds" in apart["rare"]
    classes = ["a", "b", "rare"]
    # A fold where 'rare' (one test image) is ranked first by luck: PR-AUC 1.0 for it.
    y = np.array([0, 0, 1, 1, 2])
    proba = np.array([[0.4, 0.5, 0.1], [0.4, 0.5, 0.1], [0.5, 0.4, 0.1], [0.5, 0.4, 0.1], [0.1, 0.1, 0.8]])
    with_rare, scored = fold_metrics(y, proba, classes), fold_metrics(y, proba, classes, apart)
    assert scored["per_class_pr_auc"]["rare"] == 1.0 and scored["scored_apart"] == apart
    assert with_rare["macro_pr_auc"] == pytest.approx(np.mean([with_rare["per_class_pr_auc"][c] for c in classes]))
    assert scored["macro_pr_auc"] == pytest.approx(np.mean([scored["per_class_pr_auc"][c] for c in ("a", "b")]))
    assert scored["macro_pr_auc"] < with_rare["macro_pr_auc"]
    d = tmp_path / "run"
    d.mkdir()
    report = run_report([scored | {"fold": 0}], classes, "m", {"folds_digest": "d", "scored_apart": apart})
    (d / "metrics.json").write_text(json.dumps(report))
    tables = compare([str(d)])
    assert tables["scored_apart"] == apart
    text = to_markdown(tables)
    assert "| rare † |" in text and "not in macro PR-AUC" in text and "2 labeled images < 5 folds" in text
