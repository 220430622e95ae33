"""Path-valued command-line options are paths, never YAML."""

import argparse

import pytest

from activessf.cli import main
from activessf.cli.commands import _overrides
from activessf.config import parse_override


@pytest.mark.parametrize("value", ["run #2.pt", "a: b.pt", "*star.pt", "[x].pt", "null", "true", "123", "it's.pt"])
def test_shortcut_flag_values_reach_the_config_verbatim(value):
    args = argparse.Namespace(overrides=["seed=3"], weights=value, backbone=None)
    sets = _overrides(args, backbone="backbone", weights="weights")
    assert [parse_override(s) for s in sets] == [("seed", 3), ("weights", value)]


def test_missing_init_error_names_the_whole_path(tmp_path, capsys):
    missing = tmp_path / "run #2.pt"
    code = main(["finetune", "--labeled", str(tmp_path), "--output", str(tmp_path / "o"), "--init", str(missing)])
    assert code == 2
    assert f"no such file {str(missing)!r}" in capsys.readouterr().err
