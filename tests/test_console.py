"""The console: plain progress lines off a terminal, Ray's log records in the run's log file."""

import logging

from activessf import console


def test_plain_lines_off_a_terminal(capsys, monkeypatch):
    monkeypatch.setattr(console, "PLAIN_EVERY_S", 0.0)
    console.configure()
    rows = list(console.track_rows([[1, 2], [3]], "[1/2] regions_pool", total=3))
    assert rows == [[1, 2], [3]]
    out = capsys.readouterr().out.splitlines()
    # stdout is captured, not a terminal: no bar characters, one plain line per update
    assert out[0].startswith("[1/2] regions_pool: 2/3 img, ") and "ETA" in out[0]
    assert out[1].startswith("[1/2] regions_pool: 3/3 img, ")


def test_ray_records_go_to_the_log_file(tmp_path, capsys):
    console.configure()
    ray_logger = logging.getLogger("ray")
    before = list(ray_logger.handlers)
    console.set_log_folder(str(tmp_path / "run"))
    assert not (tmp_path / "run").exists()  # nothing is created before Ray starts
    path = console.route_logs()
    ray_logger.warning("Token authentication is enabled")
    console.detail("regions: inputs=3")
    console.hide_details()
    console.detail("features: inputs=3")
    console.hide_details(False)
    console.restore_logs()
    captured = capsys.readouterr()
    assert "Token authentication" not in captured.err + captured.out
    assert "regions: inputs=3" in captured.err and "features: inputs=3" not in captured.err + captured.out
    text = (tmp_path / "run" / "logs" / "activessf.log").read_text()
    assert path.endswith("logs/activessf.log")
    assert "Token authentication" in text and "features: inputs=3" in text
    assert ray_logger.handlers == before


def test_verbose_keeps_ray_on_the_terminal(tmp_path):
    console.configure(verbose=True)
    ray_logger = logging.getLogger("ray")
    terminal = [h for h in ray_logger.handlers if type(h) is not logging.FileHandler]
    console.route_logs(str(tmp_path))
    assert all(h in ray_logger.handlers for h in terminal)
    console.restore_logs()
    console.configure()


def test_train_epochs_reach_the_driver(finished_run):
    """Rank 0's report of every epoch, appended by the Train controller's callback that the
    console's epoch bar tails (2 folds and the final fit, 2 epochs each)."""
    import json

    records = [json.loads(line) for line in (finished_run / "epochs.jsonl").read_text().splitlines()]
    assert sorted((str(r["fold"]), r["epoch"]) for r in records) == [(f, e) for f in ("0", "1", "final") for e in (1, 2)]
    assert all(r["loss"] > 0 for r in records)
