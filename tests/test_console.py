"""The console: plain progress lines off a terminal, Ray's log records in the run's log file."""

import logging
import os
import subprocess
import sys

import pytest

from activessf import console
from tests.conftest import PROJECT_ROOT


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
    # What reached the driver live is what rank 0 recorded in the final fit's history.
    final = json.loads((finished_run / "final" / "final.json").read_text())["history"]
    live = [r["loss"] for r in sorted(records, key=lambda r: r["epoch"]) if str(r["fold"]) == "final"]
    assert live == pytest.approx([h["loss"] for h in final])


# A driver with 18 zero-CPU actors: 20 worker processes with the prestarted ones, more than
# four folds trained at once start.
_MANY_WORKERS = """
import os, sys, time
import ray
from activessf.distributed.runtime import init_local
init_local(num_cpus=2, log_to_driver=False)
@ray.remote(num_cpus=0)
class Idle:
    def pid(self):
        return os.getpid()
actors = [Idle.remote() for _ in range(18)]
print(len(set(ray.get([a.pid.remote() for a in actors]))), "actors up", flush=True)
time.sleep(5)  # the raylet's warning travels to the driver through the GCS
ray.shutdown()
"""


@pytest.mark.ray
@pytest.mark.timeout(400)
def test_raylet_worker_count_warning_is_off_at_its_source():
    """The raylet's "N PYTHON worker processes have been started" warning (printed by Ray's
    driver thread straight to stdout, past every logger) appears with Ray's default reserve of IO
    workers on 2 CPUs and not with the local runtime's ``RAY_max_io_workers``."""
    warning = "PYTHON worker processes have been started"
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_max_io_workers", "RAY_ADDRESS")}
    # Both runtimes at once (each its own raylet and GCS): most of their time is waiting on
    # process start-ups, which overlap. The control keeps Ray's default reserve (4 IO workers).
    runs = {name: subprocess.Popen([sys.executable, "-c", _MANY_WORKERS], env=env | extra, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True, cwd=PROJECT_ROOT)
            for name, extra in (("ours", {}), ("ray_default", {"RAY_max_io_workers": "4"}))}
    (ours_out, ours_err), (default_out, _) = (proc.communicate(timeout=240) for proc in runs.values())
    assert "18 actors up" in ours_out, ours_out + ours_err
    assert warning not in ours_out + ours_err
    assert "18 actors up" in default_out and warning in default_out, default_out
