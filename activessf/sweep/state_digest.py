"""Restore only a sweep this user's tool wrote: digests of Ray Tune's state files, signed.

Ray Tune restores an experiment by unpickling its state (``tuner.pkl``, the searcher's state,
the cloudpickled trials in ``experiment_state-*.json``): whoever can write those files runs code
in the process that resumes the sweep. After every ``fit`` (finished, failed or interrupted) the
sweep records the sha256 of every file under the experiment folder in ``sweep_state_digest.json``
and signs that list with a per-user key kept outside the sweep folder (an HMAC), so a planted or
altered state file, or a rewritten marker, is refused before ``Tuner.restore`` reads anything.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets

MARKER = "sweep_state_digest.json"
_KEY_ENV = "ACTIVESSF_STATE_KEY_FILE"


class UntrustedStateError(ValueError):
    """A sweep's Tune state does not match what this tool recorded; the message names the file."""


def _key_path() -> str:
    return os.environ.get(_KEY_ENV) or os.path.join(os.path.expanduser("~"), ".config", "activessf", "state_key")


def _key() -> bytes:
    """This user's signing key (32 random bytes, mode 0600), created on first use."""
    path = _key_path()
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        with open(path, "rb") as fh:
            return fh.read()
    with os.fdopen(fd, "wb") as fh:
        key = secrets.token_bytes(32)
        fh.write(key)
    return key


def file_digests(experiment_dir: str) -> dict[str, str]:
    """sha256 of every file under ``experiment_dir``, by path relative to it (symlinks included)."""
    digests = {}
    for root, _, files in os.walk(experiment_dir):
        for name in files:
            path = os.path.join(root, name)
            digest = hashlib.sha256()
            with open(path, "rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    digest.update(chunk)
            digests[os.path.relpath(path, experiment_dir)] = digest.hexdigest()
    return dict(sorted(digests.items()))


def _mac(files: dict[str, str]) -> str:
    return hmac.new(_key(), json.dumps(files, sort_keys=True).encode("utf-8"), hashlib.sha256).hexdigest()


def record(experiment_dir: str, marker_dir: str) -> str:
    """Write ``marker_dir/sweep_state_digest.json`` for the experiment's current files; its path."""
    files = file_digests(experiment_dir)
    path = os.path.join(marker_dir, MARKER)
    tmp = f"{path}.{os.getpid()}.part"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump({"experiment": os.path.abspath(experiment_dir), "files": files, "hmac": _mac(files)}, fh, indent=1)
    os.replace(tmp, path)
    return path


def verify(experiment_dir: str, marker_dir: str) -> None:
    """Raise ``UntrustedStateError`` naming the first file that differs from the signed record."""
    path = os.path.join(marker_dir, MARKER)
    restart = f"; to start the sweep anew, delete {experiment_dir}"
    if not os.path.exists(path):
        raise UntrustedStateError(f"{experiment_dir}: no {MARKER} beside it, so this tool did not write its state; "
                                  f"refusing to restore it{restart}")
    with open(path, encoding="utf-8") as fh:
        saved = json.load(fh)
    files = saved.get("files") if isinstance(saved.get("files"), dict) else {}
    if not hmac.compare_digest(str(saved.get("hmac", "")), _mac(files)):
        raise UntrustedStateError(f"{path}: not signed by this user's key ({_key_path()}); refusing to restore "
                                  f"{experiment_dir}{restart}")
    now = file_digests(experiment_dir)
    for rel in sorted(set(files) | set(now)):
        if files.get(rel) != now.get(rel):
            what = "was added" if rel not in files else ("is missing" if rel not in now else "was changed")
            raise UntrustedStateError(f"{os.path.join(experiment_dir, rel)} {what} since this sweep last saved its "
                                      f"state; refusing to restore{restart}")
