from collections import Counter

import pytest

from activessf.evaluation.folds import (
    ensure_folds,
    fold_indices,
    folds_digest,
    make_folds,
    num_folds,
    read_folds,
)


def _items():
    labels = ["a"] * 20 + ["b"] * 10 + ["c"] * 5 + ["d"] * 3
    return [f"img{i}" for i in range(len(labels))], labels


def test_same_seed_same_folds_other_seed_differs():
    ids, labels = _items()
    a, b, c = make_folds(ids, labels, 5, 0), make_folds(ids, labels, 5, 0), make_folds(ids, labels, 5, 1)
    assert a.equals(b)
    assert folds_digest(a) == folds_digest(b) != folds_digest(c)


def test_folds_are_stratified_and_rare_class_rule():
    ids, labels = _items()
    folds = make_folds(ids, labels, 5, 0)
    assert num_folds(folds) == 5 and folds["id"].to_pylist() == ids
    per = Counter(zip(folds["label"].to_pylist(), folds["fold"].to_pylist()))
    for k in range(5):
        assert per[("a", k)] == 4 and per[("b", k)] == 2 and per[("c", k)] == 1
    # "d" has 3 < 5 members: one each in folds 0, 1, 2, none in 3 and 4.
    assert sorted(f for (lab, f), n in per.items() if lab == "d" for _ in range(n)) == [0, 1, 2]
    train, test = fold_indices(folds, 0)
    assert len(train) + len(test) == len(ids) and not set(train) & set(test)


def test_folds_written_once_and_reused(tmp_path):
    ids, labels = _items()
    path = tmp_path / "folds.parquet"
    first = ensure_folds(path, ids, labels, 5, 0)
    again = ensure_folds(path, ids, labels, 5, seed=99)  # the file wins over a new seed
    assert again.equals(first) and read_folds(path).equals(first)
    with pytest.raises(ValueError, match="do not match"):
        ensure_folds(path, ids[:-1], labels[:-1])


def test_bad_inputs():
    with pytest.raises(ValueError, match="unique"):
        make_folds(["x", "x"], ["a", "b"])
    with pytest.raises(ValueError, match="label"):
        make_folds(["x", "y"], ["a", None])
