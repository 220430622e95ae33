"""The ``export`` and ``predict`` subcommands: one line of result, one line of error (exit 2)."""

from activessf.cli import main


def test_export_then_predict_from_the_command_line(finished_run, labeled_crops, tmp_path, capsys):
    assert main(["export", "--run", str(finished_run), "--output", str(tmp_path / "b")]) == 0
    assert "exported 'vit-tiny' (final fit on all labeled crops" in capsys.readouterr().out
    args = ["predict", "--model", str(tmp_path / "b"), "--input", str(labeled_crops), "--mode", "crops", "--local"]
    assert main(args + ["--output", str(tmp_path / "p")]) == 0
    assert "predict: inputs=24 = ok 24 + rejected 0; 24 cells" in capsys.readouterr().out


def test_user_errors_are_one_line(bundle, labeled_crops, tmp_path, capsys):
    assert main(["predict", "--model", str(tmp_path / "none"), "--input", str(labeled_crops),
                 "--output", str(tmp_path / "p"), "--local"]) == 2
    err = capsys.readouterr().err
    assert "no such bundle folder" in err and "Traceback" not in err
    assert main(["predict", "--model", str(bundle), "--input", str(labeled_crops),
                 "--output", str(labeled_crops / "out"), "--local"]) == 2
    assert "inside the input folder" in capsys.readouterr().err and not (labeled_crops / "out").exists()
    assert main(["export", "--run", str(tmp_path), "--output", str(tmp_path / "b")]) == 2
    assert "no finished fine-tuning" in capsys.readouterr().err
