"""Stage skipping: a finished stage is skipped, a changed one and everything downstream rerun."""

from __future__ import annotations

from activessf.pipeline.run import Stage, StateLog, _run_stage


def _stages(calls, a_key="x"):
    def make(name):
        return lambda: calls.append(name) or {"n": len(calls)}

    return [Stage("a", "first", [a_key], (), make("a")), Stage("b", "second", [], ("a",), make("b")),
            Stage("c", "third", ["c"], (), make("c"))]


def _run(tmp_path, stages):
    log, fps = StateLog(str(tmp_path)), {}
    for st in stages:
        _run_stage(st, fps, log, st.name)


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
