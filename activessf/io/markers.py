"""Stage completion markers: a rerun skips a stage whose outputs are complete and current.

A stage writes ``_SUCCESS.json`` last (atomically), recording a fingerprint of its inputs and
resolved config. A rerun with the same fingerprint skips; any other rerun removes the marker
first, so an interrupted rerun can never look complete.
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any, Sequence

import pyarrow.fs as pafs

from activessf.io import fs as afs
from activessf.io.atomic import atomic_write_text

MARKER = "_SUCCESS.json"


def fingerprint(*parts: Any) -> str:
    """Stable hash of JSON-able parts (configs as dicts, input lists, versions)."""
    blob = json.dumps(parts, sort_keys=True, default=str).encode("utf-8")
    return hashlib.sha256(blob).hexdigest()[:20]


# How a Ray Train run is executed, not what it computes: changing these resumes or reuses it.
RUN_CONTROL = frozenset({
    "only_folds", "max_concurrent_folds", "checkpoint_every", "keep_checkpoints", "max_failures",
    "storage_path", "run_name", "method_name", "eval_batch_size", "stop_after_epochs", "final_fit",
    "materialize", "num_reconstructions",
})


def recipe_fingerprint(stage: str, tree: dict, *parts: Any) -> str:
    """``fingerprint`` of a training config (as a dict) without its ``RUN_CONTROL`` fields."""
    train = {k: v for k, v in tree.get("train", {}).items() if k not in RUN_CONTROL}
    return fingerprint(stage, {**tree, "train": train}, *parts)


def files_stamp(paths: Sequence[str]) -> str:
    """Fingerprint of files' sizes and modification times, in the given order.

    Rewriting a file changes its mtime (and usually its size), so a skip keyed by this stamp
    notices changed bytes at the same path without reading every image. A missing file stamps
    as size -1, so it cannot pass for the file that was there before.

    Args:
        paths: Local paths or object-storage URIs.

    Returns:
        A ``fingerprint`` of ``(path, size, mtime_ns)`` per file.
    """
    by_fs: dict[int, tuple[pafs.FileSystem, list[int], list[str]]] = {}
    for i, path in enumerate(paths):
        fs, inner = afs.resolve(path)
        entry = by_fs.setdefault(id(fs) if afs.is_remote(path) else 0, (fs, [], []))
        entry[1].append(i)
        entry[2].append(inner)
    stamps: list[tuple] = [()] * len(paths)
    for fs, rows, inners in by_fs.values():
        # One call per filesystem: object stores answer a list of paths far faster than one by one.
        for i, info in zip(rows, fs.get_file_info(inners)):
            found = info.type != pafs.FileType.NotFound
            stamps[i] = (paths[i], info.size if found else -1, (info.mtime_ns or 0) if found else 0)
    return fingerprint("files", stamps)


def content_stamp(path: str, chunk: int = 1 << 22) -> str:
    """SHA-256 of a file's bytes (for one weights file: cheap next to what it is used for, and
    unlike an mtime it survives a rewrite of the same weights, e.g. a resumed pretraining)."""
    fs, inner = afs.resolve(path)
    digest = hashlib.sha256()
    with fs.open_input_stream(inner) as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()[:20]


def stage_stamp(source: str) -> str | None:
    """Fingerprint recorded by the stage whose output folder is ``source``; None when not one."""
    marker = read_marker(source)
    return marker.get("fingerprint") if marker else None


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
    from activessf import console
    from activessf.config import save_config

    if not force and is_complete(out_dir, fp):
        console.detail(f"{stage}: {out_dir} is complete for these inputs and config; skipped")
        return False
    afs.makedirs(out_dir)
    clear_marker(out_dir)
    save_config(cfg, out_dir)
    return True
