"""Stage completion markers: a rerun skips a stage whose outputs are complete and current.

A stage writes ``_SUCCESS.json`` last (atomically), recording a fingerprint of its inputs and
resolved config. A rerun with the same fingerprint skips; any other rerun removes the marker
first, so an interrupted rerun can never look complete.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
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


def begin_stage(stage: str, out_dir: str, fp: str, cfg: Any, force: bool) -> bool:
    """Common start of every stage: skip when complete, else clear the marker and save the config.

    Args:
        stage: Stage name for messages.
        out_dir: The stage's output folder.
        fp: Fingerprint of inputs and config (see ``fingerprint``).
        cfg: Resolved config dataclass, saved as ``config.yaml``.
        force: Run even when complete.

    Returns:
        True when the stage must run; False when it is complete and was skipped.
    """
    from activessf.config import save_config

    if not force and is_complete(out_dir, fp):
        print(f"{stage}: {out_dir} is complete for these inputs and config; skipped", file=sys.stderr)
        return False
    afs.makedirs(out_dir)
    clear_marker(out_dir)
    save_config(cfg, out_dir)
    return True
