"""``activessf finetune`` / ``compare`` argument handling (the Ray run itself is in tests/distributed)."""

from activessf.cli import main
from tests.evaluation.test_compare import _run


def test_finetune_bad_config_fails_before_work(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["finetune", "--labeled", str(tmp_path), "--init", "none", "--output", str(out),
                 "--set", "optim.layer_decay=2"]) == 2
    assert "optim.layer_decay" in capsys.readouterr().err
    assert main(["finetune", "--labeled", str(tmp_path), "--model", "nope_net", "--output", str(out)]) == 2
    assert "model.name" in capsys.readouterr().err
    assert not out.exists()


def test_compare_command(tmp_path, capsys):
    a = _run(tmp_path, "a", [0.5, 0.6, 0.5, 0.6, 0.5])
    b = _run(tmp_path, "b", [0.9, 0.9, 1.0, 0.9, 1.0])
    assert main(["compare", a, b, "--output", str(tmp_path / "cmp"), "--names", "ref", "ours"]) == 0
    text = capsys.readouterr().out
    assert "| ours | 0.9400 ± 0.0548*" in text
    assert (tmp_path / "cmp" / "per_class_pr_auc.png").exists()
    assert main(["compare", a, str(tmp_path), "--output", str(tmp_path / "c2")]) == 2
    assert "no metrics.json" in capsys.readouterr().err
