"""The shared Ray Train launcher's pure parts: when to checkpoint, where runs live, test faults."""

import os
from types import SimpleNamespace

from activessf.distributed.train import CRASH_ENV, _fault_plan, epoch_plan, storage_root


def _run(every=2, stop=None):
    return SimpleNamespace(checkpoint_every=every, stop_after_epochs=stop)


def test_checkpoint_every_n_at_the_end_and_when_stopping():
    saves = [e for e in range(1, 6) if epoch_plan(e, 0, 5, _run(every=2)).save]
    assert saves == [2, 4, 5]
    plan = epoch_plan(3, 2, 5, _run(every=10, stop=1))  # resumed after epoch 2, stop after one more
    assert plan.save and plan.stopping and not plan.final
    assert epoch_plan(5, 0, 5, _run()).final


def test_storage_root_defaults_inside_the_output(tmp_path):
    assert storage_root(None, str(tmp_path)) == os.path.join(str(tmp_path), "ray_runs")
    assert storage_root("s3://bucket/runs", str(tmp_path)) == "s3://bucket/runs"
    assert storage_root("rel/runs", str(tmp_path)) == os.path.abspath("rel/runs")


def test_fault_injection_only_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.delenv(CRASH_ENV, raising=False)
    assert _fault_plan(str(tmp_path), "run") == {}
    monkeypatch.setenv(CRASH_ENV, "2")
    assert _fault_plan(str(tmp_path), "run") == {"fault": {"epoch": 2, "marker": str(tmp_path / ".run.crash_done")}}
