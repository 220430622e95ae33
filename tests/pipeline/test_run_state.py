"""Stage skipping: a finished stage is skipped, a changed one and everything downstream rerun."""

from __future__ import annotations

from activessf.io.markers import write_marker
from activessf.pipeline.run import Stage, StateLog, run_stage


def _stages(calls, a_key="x"):
    def make(name):
        return lambda: calls.append(name) or {"n": len(calls)}

    return [Stage("a", "first", [a_key], (), make("a")), Stage("b", "second", [], ("a",), make("b")),
            Stage("c", "third", ["c"], (), make("c"))]


def _run(tmp_path, stages):
    log, fps = StateLog(str(tmp_path)), {}
    for st in stages:
        run_stage(st, fps, log, st.name)


def test_rerun_skips_finished_stages(tmp_path, capsys):
    calls = []
    _run(tmp_path, _stages(calls))
    assert calls == ["a", "b", "c"]
    _run(tmp_path, _stages(calls))
    assert calls == ["a", "b", "c"]
    assert capsys.readouterr().out.count("complete, skipped") == 3


def test_changed_stage_reruns_with_its_downstream_only(tmp_path):
    calls = []
    _run(tmp_path, _stages(calls))
    _run(tmp_path, _stages(calls, a_key="y"))
    assert calls == ["a", "b", "c", "a", "b"]


def test_interrupted_stage_is_not_recorded(tmp_path):
    calls = []

    def boom():
        raise KeyboardInterrupt

    stages = _stages(calls)
    stages[1] = Stage("b", "second", [], ("a",), boom)
    try:
        _run(tmp_path, stages)
    except KeyboardInterrupt:
        pass
    assert set(StateLog(str(tmp_path)).stages) == {"a"}
    _run(tmp_path, _stages(calls))
    assert calls == ["a", "b", "c"]


def test_data_stage_that_skips_itself_keeps_its_first_time(tmp_path, capsys):
    """Region/feature stages check their own marker; a rerun that finds it keeps the recorded time."""
    out, calls = tmp_path / "regions", []

    def regions(key):
        def run():
            calls.append(key)
            write_marker(str(out), "regions", key, {"n": 1})  # as the stage does after its work
            return {"n": 1}
        return run

    root = tmp_path / "run"
    _run(root, [Stage("regions", "data", [], (), regions("k1"), str(out))])
    log = StateLog(str(root))
    log.record("regions", log.stages["regions"]["fingerprint"], {"n": 1}, 361.5)  # the real first run's time
    capsys.readouterr()
    _run(root, [Stage("regions", "data", [], (), lambda: {"n": 1}, str(out))])  # finds its marker
    assert "regions: complete, skipped" in capsys.readouterr().out
    assert StateLog(str(root)).stages["regions"]["seconds"] == 361.5
    _run(root, [Stage("regions", "data", [], (), regions("k2"), str(out))])  # config changed: reran
    assert calls == ["k1", "k2"] and StateLog(str(root)).stages["regions"]["seconds"] < 361.5
