"""Stage completion markers: a rerun skips a stage whose outputs are complete and current.

A stage writes ``_SUCCESS.json`` last (atomically), recording a fingerprint of its inputs and
resolved config. A rerun with the same fingerprint skips; any other rerun removes the marker
first, so an interrupted rerun can never look complete.
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any

from activessf.io import fs as afs
from activessf.io.atomic import atomic_write_text

MARKER = "_SUCCESS.json"


def fingerprint(*parts: Any) -> str:
    """Stable hash of JSON-able parts (configs as dicts, input lists, versions)."""
    blob = json.dumps(parts, sort_keys=True, default=str).encode("utf-8")
    return hashlib.sha256(blob).hexdigest()[:20]


def read_marker(out_dir: str) -> dict | None:
    path = afs.join(out_dir, MARKER)
    if not afs.exists(path):
        return None
    try:
        return json.loads(afs.read_bytes(path))
    except (OSError, ValueError):
        return None


def is_complete(out_dir: str, fp: str) -> bool:
    """True when ``out_dir`` holds a finished run with fingerprint ``fp``."""
    marker = read_marker(out_dir)
    return bool(marker) and marker.get("fingerprint") == fp


def clear_marker(out_dir: str) -> None:
    path = afs.join(out_dir, MARKER)
    if afs.exists(path):
        fs, inner = afs.resolve(path)
        fs.delete_file(inner)


def write_marker(out_dir: str, stage: str, fp: str, summary: dict) -> None:
    """Record a finished stage (call after every output is in place)."""
    body = {"stage": stage, "fingerprint": fp, "summary": summary, "pid": os.getpid()}
    atomic_write_text(afs.join(out_dir, MARKER), json.dumps(body, indent=2, default=str))
