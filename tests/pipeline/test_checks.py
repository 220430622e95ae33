"""A run checks every input before its first stage (and before Ray starts)."""

import shutil

import pytest

from activessf.cli import main
from activessf.io.sources import InputError
from activessf.pipeline.plan import build_plan
from activessf.pipeline.run import run_pipeline


def _plan(tmp_path, **pipe):
    sets = [f"pipeline.{k}={v}" for k, v in pipe.items()]
    return build_plan("configs/demo.yaml", sets)


def test_missing_labeled_input_fails_before_any_stage(tmp_path):
    plan = _plan(tmp_path, labeled=tmp_path / "no_such_folder", output=tmp_path / "run")
    with pytest.raises(InputError, match="pipeline.labeled: .*no_such_folder does not exist"):
        run_pipeline(plan)
    assert not (tmp_path / "run").exists()  # not even the run folder: no stage ran


def test_labeled_input_that_does_not_list_fails_before_any_stage(tmp_path):
    (tmp_path / "lab").mkdir()
    (tmp_path / "lab" / "loose.jpg").write_bytes(b"x")
    plan = _plan(tmp_path, labeled=tmp_path / "lab", output=tmp_path / "run")
    with pytest.raises(InputError, match="pipeline.labeled: labeled folder needs ROOT/<class>/image"):
        run_pipeline(plan)
    assert not (tmp_path / "run").exists()


def test_run_folder_inside_an_input_folder_is_refused(tmp_path):
    (tmp_path / "pool").mkdir()
    plan = _plan(tmp_path, unlabeled=tmp_path / "pool", output=tmp_path / "pool" / "run")
    with pytest.raises(InputError, match="inside the input folder"):
        run_pipeline(plan)


def test_regions_output_inside_its_input_is_refused(tmp_path, shared_data, capsys):
    src = tmp_path / "in"
    src.mkdir()
    shutil.copy(min((shared_data / "pbc11" / "unlabeled").glob("*.jpg")), src / "a.jpg")
    assert main(["regions", "--input", str(src), "--output", str(src / "out"), "--local"]) == 2
    assert "inside the input folder" in capsys.readouterr().err
    assert not (src / "out").exists()
    assert main(["regions", "--input", str(src), "--output", str(tmp_path / "out"), "--local"]) == 0
