"""User errors end in one line naming the file or field (exit 2); ``--debug`` adds the traceback."""

import errno

import pytest
import torch

from activessf.cli import errors, main


def _run(capsys, argv):
    code = main(argv)
    return code, capsys.readouterr().err


def test_malformed_yaml_names_file_and_line(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("regions:\n  crop_size: [1,\n")
    code, err = _run(capsys, ["regions", "--input", str(tmp_path), "--output", str(tmp_path / "o"),
                              "--config", str(bad)])
    assert code == 2
    assert err.count("\n") == 1 and "Traceback" not in err
    assert f"{bad}: invalid YAML at line 3" in err


def test_missing_config_file_is_one_line(tmp_path, capsys):
    missing = tmp_path / "nope.yaml"
    code, err = _run(capsys, ["select", "--labeled", "a", "--unlabeled", "b", "--output", "o", "--config", str(missing)])
    assert code == 2
    assert err.strip() == f"activessf select: {missing}: No such file or directory"


def test_debug_flag_adds_the_traceback(tmp_path, capsys):
    missing = str(tmp_path / "nope.yaml")
    for argv in (["--debug", "select"], ["select", "--debug"]):
        code, err = _run(capsys, argv + ["--labeled", "a", "--unlabeled", "b", "--output", "o", "--config", missing])
        assert code == 2
        assert "Traceback (most recent call last)" in err and "FileNotFoundError" in err


def test_wrong_architecture_weights_name_the_file(tmp_path, capsys, shared_data):
    import shutil

    import timm

    weights = tmp_path / "r34.pt"
    torch.save(timm.create_model("resnet34", pretrained=False, num_classes=0).state_dict(), weights)
    (tmp_path / "img").mkdir()
    shutil.copy(sorted((shared_data / "pbc11" / "unlabeled").glob("*.jpg"))[0], tmp_path / "img")
    code, err = _run(capsys, ["features", "--input", str(tmp_path / "img"), "--output", str(tmp_path / "f"),
                              "--local", "--backbone", "resnet18", "--weights", str(weights),
                              "--set", "source=weights"])
    assert code == 2
    assert "Traceback" not in err and err.count("\n") == 1
    assert f"weights {weights} do not fit resnet18" in err


def test_no_space_left_names_file_and_run_folder(tmp_path, capsys, monkeypatch):
    from activessf.cli import commands

    out = tmp_path / "out"
    out.mkdir()

    def full_disk(args):
        raise OSError(errno.ENOSPC, "No space left on device", str(out / "regions.parquet"))

    regions = next(c for c in commands.COMMANDS if c.name == "regions")
    monkeypatch.setattr(regions, "run", full_disk)
    code, err = _run(capsys, ["regions", "--input", str(tmp_path), "--output", str(out)])
    assert code == 2
    assert "no space left on device" in err and str(out / "regions.parquet") in err
    assert f"(run folder: {out})" in err


def test_a_bug_keeps_its_traceback():
    with pytest.raises(ZeroDivisionError):
        errors.report(ZeroDivisionError("bug"), "regions", debug=False)


def test_interrupt_message_says_what_finished(capsys):
    from activessf import progress

    progress.reset()
    progress.start("regions_pool")
    progress.finish("regions_pool")
    progress.start("features_pool")
    assert errors.report(KeyboardInterrupt(), "run", debug=False) == 130
    err = capsys.readouterr().err
    assert err == ("\nactivessf run: interrupted during features_pool; finished: regions_pool; "
                           "rerun the same command to resume\n")
    progress.reset()
