"""The folds stage: written once for a standalone fine-tune, remade by the pipeline when its inputs change."""

import shutil

import pytest

from activessf.stages.folds import run_folds


def _labeled(root, shared_data, n):
    for cls in ("EO", "LY"):
        (root / cls).mkdir(parents=True, exist_ok=True)
        for src in sorted((shared_data / "pbc11" / "labeled" / cls).glob("*.jpg"))[:n]:
            shutil.copy(src, root / cls / src.name)
    return str(root)


def test_remade_when_the_crops_change_refused_otherwise(tmp_path, shared_data):
    labeled, path = _labeled(tmp_path / "lab", shared_data, 3), str(tmp_path / "folds.parquet")
    first = run_folds(labeled, path, 3, 0)
    assert first.num_rows == 6 and sorted(set(first["fold"].to_pylist())) == [0, 1, 2]
    assert run_folds(labeled, path, 3, 0, remake=True).equals(first)  # same inputs, same assignment
    _labeled(tmp_path / "lab", shared_data, 4)  # a new labeled version: two more crops
    with pytest.raises(ValueError, match="do not match"):
        run_folds(labeled, path, 3, 0)
    assert run_folds(labeled, path, 3, 0, remake=True).num_rows == 8
