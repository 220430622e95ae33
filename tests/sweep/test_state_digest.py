"""A sweep restores only Tune state this user's tool recorded: any change is refused, naming the file."""

import json
import os

import pytest

from activessf.sweep.state_digest import MARKER, UntrustedStateError, record, verify


@pytest.fixture
def experiment(tmp_path, monkeypatch):
    monkeypatch.setenv("ACTIVESSF_STATE_KEY_FILE", str(tmp_path / "key" / "state_key"))
    exp = tmp_path / "sweep" / "tune" / "t"
    (exp / "trial_0").mkdir(parents=True)
    (exp / "tuner.pkl").write_bytes(b"\x80\x05tuner")
    (exp / "experiment_state-2026.json").write_text('{"trials": []}')
    (exp / "trial_0" / "params.pkl").write_bytes(b"\x80\x05params")
    record(str(exp), str(tmp_path / "sweep"))
    return exp, tmp_path / "sweep"


def test_unchanged_state_verifies_and_key_is_private(experiment, tmp_path):
    exp, marker_dir = experiment
    verify(str(exp), str(marker_dir))
    assert os.stat(tmp_path / "key" / "state_key").st_mode & 0o777 == 0o600
    assert set(json.loads((marker_dir / MARKER).read_text())["files"]) == {
        "tuner.pkl", "experiment_state-2026.json", os.path.join("trial_0", "params.pkl")}


@pytest.mark.parametrize("change, name, what", [
    (lambda e: (e / "tuner.pkl").write_bytes(b"\x80\x05evil"), "tuner.pkl", "was changed"),
    (lambda e: (e / "trial_0" / "params.pkl").unlink(), "params.pkl", "is missing"),
    (lambda e: (e / "searcher-state.pkl").write_bytes(b"x"), "searcher-state.pkl", "was added"),
])
def test_tampered_state_is_refused_naming_the_file(experiment, change, name, what):
    exp, marker_dir = experiment
    change(exp)
    with pytest.raises(UntrustedStateError, match=rf"{name} {what}.*refusing to restore"):
        verify(str(exp), str(marker_dir))


def test_a_rewritten_marker_without_the_key_is_refused(experiment):
    exp, marker_dir = experiment
    (exp / "tuner.pkl").write_bytes(b"\x80\x05evil")
    saved = json.loads((marker_dir / MARKER).read_text())
    saved["files"]["tuner.pkl"] = "0" * 64  # an attacker cannot recompute the HMAC
    (marker_dir / MARKER).write_text(json.dumps(saved))
    with pytest.raises(UntrustedStateError, match="not signed by this user's key"):
        verify(str(exp), str(marker_dir))


def test_state_without_a_marker_is_refused(experiment):
    exp, marker_dir = experiment
    (marker_dir / MARKER).unlink()
    with pytest.raises(UntrustedStateError, match=f"no {MARKER}"):
        verify(str(exp), str(marker_dir))
