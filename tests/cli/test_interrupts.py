"""Ctrl-C / SIGTERM end a command with one line and exit code 130; a rerun sweeps the leftovers."""

import os
import shutil
import signal
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest

from activessf.cli import main


def _tiny_images(folder, n, shared_data):
    """``n`` small copies of one real smear image (each decodes and yields regions)."""
    folder.mkdir()
    src = cv2.imread(str(sorted((shared_data / "pbc11" / "unlabeled").glob("*.jpg"))[0]))
    # 192 px: a few ms of region filtering each, so 1,500 of them take seconds, not a blink.
    small = cv2.resize(src, (192, 192))
    for i in range(n):
        cv2.imwrite(str(folder / f"img_{i:04d}.jpg"), np.roll(small, i, axis=1))


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_sigint_during_regions_stops_cleanly_and_rerun_sweeps_leftovers(tmp_path, shared_data):
    _tiny_images(tmp_path / "many", 1500, shared_data)
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "activessf.cli", "regions", "--input", str(tmp_path / "many"), "--output", str(out),
           "--local"]
    # A suite started in the background (`make test &`) inherits SIGINT ignored, and Python keeps an
    # ignored SIGINT ignored: give the command the default disposition a terminal would.
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 120
    # Interrupt once the stage is writing crops (mid-run, not during start-up).
    while not (out / "crops").is_dir() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before it could be interrupted"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    lines = [line for line in err.splitlines() if "interrupted" in line]
    assert lines == ["activessf regions: interrupted during regions; finished: no stage of this command; "
                     "rerun the same command to resume"], err
    assert not (out / "_SUCCESS.json").exists()
    assert not [p for p in out.rglob(".tmp-*")], "an interrupt leaves no temporary file"

    # What a SIGKILL leaves behind (it cannot clean up): the next run removes it.
    (out / ".tmp-abc123.parquet").write_bytes(b"half")
    (out / "crops" / ".tmp-def456.png").write_bytes(b"half")
    _tiny_images(tmp_path / "few", 2, shared_data)
    assert main(["regions", "--input", str(tmp_path / "few"), "--output", str(out), "--local"]) == 0
    assert (out / "_SUCCESS.json").exists()
    assert not [p for p in out.rglob(".tmp-*")]


def test_sigterm_is_an_interrupt(tmp_path, capsys, monkeypatch):
    from activessf.cli import commands

    def killed(args):
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)  # the handler raises before this ends
        return 0

    regions = next(c for c in commands.COMMANDS if c.name == "regions")
    monkeypatch.setattr(regions, "run", killed)
    before = signal.getsignal(signal.SIGTERM)
    assert main(["regions", "--input", str(tmp_path), "--output", str(tmp_path / "o")]) == 130
    assert "activessf regions: interrupted during regions;" in capsys.readouterr().err
    assert signal.getsignal(signal.SIGTERM) is before  # main puts the caller's handler back
