"""The ``activessf`` command line: config errors fail before work, stages run and say where."""

import shutil

import pyarrow.parquet as pq
import pytest

from activessf.cli import main


def test_bad_key_and_value_fail_before_any_work(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["regions", "--input", str(tmp_path), "--output", str(out), "--set", "nope=1"]) == 2
    assert "nope" in capsys.readouterr().err
    assert main(["regions", "--input", str(tmp_path), "--output", str(out), "--set", "crop_size=big"]) == 2
    assert "crop_size" in capsys.readouterr().err
    assert main(["features", "--input", str(tmp_path), "--output", str(out), "--backbone", "resnet_nope"]) == 2
    assert "features.backbone" in capsys.readouterr().err
    assert not out.exists()


def test_missing_inputs_are_usage_errors(tmp_path, capsys):
    assert main(["regions", "--input", str(tmp_path / "none"), "--output", str(tmp_path / "o")]) == 2
    assert "does not exist" in capsys.readouterr().err
    args = ["select", "--labeled", str(tmp_path), "--unlabeled", str(tmp_path), "--output", str(tmp_path / "s")]
    assert main(args) == 2
    assert "features.parquet" in capsys.readouterr().err


def test_regions_command_runs_locally_with_overrides(tmp_path, shared_data, capsys):
    src = tmp_path / "in"
    src.mkdir()
    for p in sorted((shared_data / "pbc11" / "unlabeled").glob("*.jpg"))[:2]:
        shutil.copy(p, src / p.name)
    out = tmp_path / "out"
    config = tmp_path / "c.yaml"
    config.write_text("regions:\n  crop_size: 40\n")
    code = main(["regions", "--input", str(src), "--output", str(out), "--local", "--config", str(config),
                 "--set", "crop_format=jpg"])
    assert code == 0
    assert "outputs in" in capsys.readouterr().out
    regions = pq.read_table(out / "regions.parquet")
    assert regions.num_rows >= 2 and all(p.endswith(".jpg") for p in regions["crop_path"].to_pylist())
    saved = (out / "config.yaml").read_text()
    assert "crop_size: 40" in saved and "crop_format: jpg" in saved


@pytest.mark.parametrize("command", ["regions", "features", "select", "pretrain"])
def test_every_stage_has_help(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    assert "--set" in capsys.readouterr().out
