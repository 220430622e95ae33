import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from activessf.evaluation.folds import make_folds
from activessf.evaluation.frozen import frozen_eval, read_features


def test_probes_separate_easy_clusters():
    rng = np.random.default_rng(0)
    labels = ["a"] * 15 + ["b"] * 15 + ["c"] * 15
    centers = {"a": [5, 0], "b": [0, 5], "c": [-5, -5]}
    x = np.array([centers[lab] for lab in labels]) + rng.normal(0, 0.5, (45, 2))
    ids = [f"i{i}" for i in range(45)]
    folds = make_folds(ids, labels, 3, 0)
    perm = rng.permutation(45)  # features given in another order than the folds table
    for kind in ("logreg", "knn"):
        report = frozen_eval(x[perm], [ids[i] for i in perm], folds, kind=kind, k=5)
        assert report["method"] == f"frozen-{kind}" and len(report["folds"]) == 3
        assert report["summary"]["accuracy"]["mean"] > 0.95
        assert report["summary"]["macro_pr_auc"]["mean"] > 0.95


def test_read_features_and_missing_ids(tmp_path):
    feats = np.arange(12, dtype=np.float32).reshape(4, 3)
    col = pa.FixedSizeListArray.from_arrays(pa.array(feats.ravel()), 3)
    pq.write_table(pa.table({"id": ["a", "b", "c", "d"], "feature": col}), tmp_path / "features.parquet")
    ids, x = read_features(str(tmp_path))
    assert ids == ["a", "b", "c", "d"] and np.array_equal(x, feats)
    folds = make_folds(["a", "b", "c", "zz"], ["p", "p", "q", "q"], 2, 0)
    with pytest.raises(ValueError, match="no features"):
        frozen_eval(x, ids, folds)
