import numpy as np
import pytest
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    confusion_matrix,
    f1_score,
)

from activessf.evaluation.metrics import (
    fold_metrics,
    mean_std,
    run_report,
    summarize_folds,
)

CLASSES = ["a", "b", "c"]
Y = np.array([0, 0, 1, 1, 2, 2, 0, 1])
P = np.array([
    [0.7, 0.2, 0.1], [0.4, 0.5, 0.1], [0.2, 0.6, 0.2], [0.1, 0.3, 0.6],
    [0.1, 0.1, 0.8], [0.3, 0.3, 0.4], [0.5, 0.4, 0.1], [0.2, 0.7, 0.1],
])


def test_metrics_match_sklearn():
    m = fold_metrics(Y, P, CLASSES)
    pred = P.argmax(1)
    assert m["accuracy"] == pytest.approx(accuracy_score(Y, pred))
    assert m["macro_f1"] == pytest.approx(f1_score(Y, pred, average="macro"))
    ap = [average_precision_score(Y == c, P[:, c]) for c in range(3)]
    assert [m["per_class_pr_auc"][c] for c in CLASSES] == pytest.approx(ap)
    assert m["macro_pr_auc"] == pytest.approx(np.mean(ap))
    # sklearn's own macro AP over one-hot targets agrees too.
    assert m["macro_pr_auc"] == pytest.approx(average_precision_score(np.eye(3)[Y], P, average="macro"))
    assert m["confusion_matrix"] == confusion_matrix(Y, pred).tolist()


def test_class_absent_from_fold_is_null_and_excluded():
    keep = Y != 2  # class "c" absent from this fold's test set (but still predicted once)
    y, p = Y[keep], P[keep]
    m = fold_metrics(y, p, CLASSES)
    assert m["per_class_pr_auc"]["c"] is None and m["present"] == ["a", "b"]
    ap = [average_precision_score(y == c, p[:, c]) for c in (0, 1)]
    assert m["macro_pr_auc"] == pytest.approx(np.mean(ap))
    assert m["macro_f1"] == pytest.approx(f1_score(y, p.argmax(1), labels=[0, 1], average="macro"))
    assert np.asarray(m["confusion_matrix"]).shape == (3, 3)


def test_mean_std_and_summary():
    assert mean_std([0.5, 0.7, None]) == pytest.approx({"mean": 0.6, "std": np.std([0.5, 0.7], ddof=1), "n": 2})
    assert mean_std([None]) == {"mean": None, "std": None, "n": 0}
    f0 = fold_metrics(Y, P, CLASSES) | {"fold": 0}
    f1 = fold_metrics(Y[Y != 2], P[Y != 2], CLASSES) | {"fold": 1}
    s = summarize_folds([f0, f1], CLASSES)
    assert s["accuracy"]["mean"] == pytest.approx((f0["accuracy"] + f1["accuracy"]) / 2)
    assert s["per_class_pr_auc"]["c"]["n"] == 1
    assert s["per_class_pr_auc"]["c"]["mean"] == pytest.approx(f0["per_class_pr_auc"]["c"])
    report = run_report([f1, f0], CLASSES, "m")
    assert [f["fold"] for f in report["folds"]] == [0, 1] and report["method"] == "m"
    assert np.asarray(report["summary"]["confusion_matrix"]).sum() == len(Y) + (Y != 2).sum()


def test_shape_check():
    with pytest.raises(ValueError, match="shape"):
        fold_metrics(Y, P[:, :2], CLASSES)
