"""Typed fold inputs: what each fold (and the final fit) trains and tests on."""

import pyarrow as pa

from activessf.evaluation.folds import make_folds
from activessf.finetune.inputs import FINAL, final_inputs, fold_inputs


def _tables():
    ids = [f"c{i}" for i in range(12)]
    labels = ["a"] * 6 + ["b"] * 6
    items = pa.table({"id": ids, "path": [f"/x/{i}.png" for i in ids]})
    return items, make_folds(ids, labels, 3, 0)


def test_each_fold_tests_its_rows_and_trains_on_the_rest():
    items, folds = _tables()
    seen = []
    for k in range(3):
        f = fold_inputs(items, folds, k, ["a", "b"], fingerprint="fp")
        assert not set(f.test_ids) & {p.rsplit("/", 1)[1][:-4] for p in f.train_paths}
        assert len(f.train_paths) + len(f.test_paths) == 12 and len(f.test_y) == len(f.test_ids)
        assert f.test_paths == [f"/x/{i}.png" for i in f.test_ids]
        seen += f.test_ids
        assert "test_ids" not in f.loop_config() and f.loop_config()["fingerprint"] == "fp"
    assert sorted(seen) == sorted(items["id"].to_pylist())  # every row tested exactly once


def test_final_fit_trains_on_every_row():
    items, folds = _tables()
    f = final_inputs(items, folds, ["a", "b"])
    assert f.fold == FINAL and len(f.train_paths) == 12 and f.test_paths == [] and sorted(set(f.train_y)) == [0, 1]
