"""Atomic writes: a reader never sees a half-written file.

Local files go to a temporary name in the same folder and are renamed into place. Object stores
publish an object only when its upload completes, so there a direct write is already atomic.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pyarrow as pa
import pyarrow.parquet as pq

from activessf.io import fs as afs

# Prefix of every temporary name below: a file (or folder) so named is never an output.
TMP_PREFIX = ".tmp-"


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[str]:
    """Yield a temporary path to write; on success it is renamed to ``path``, on error removed."""
    path = str(path)
    if afs.is_remote(path):
        yield path
        return
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=TMP_PREFIX, suffix=Path(path).suffix, dir=folder)
    os.close(fd)
    try:
        yield tmp
        # mkstemp creates 0600; outputs are shared artefacts, so give them the usual 0644.
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


@contextmanager
def atomic_folder(path: str | os.PathLike, prefix: str = ".tmp-dir-") -> Iterator[str]:
    """Yield a temporary sibling folder to fill; on success it replaces ``path`` whole, on error it goes.

    A reader sees the old folder or the complete new one, never a half-written mix (local paths).
    """
    path = os.path.abspath(str(path))
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=prefix, dir=os.path.dirname(path))
    try:
        yield tmp
        if os.path.isdir(path):
            shutil.rmtree(path)
        os.replace(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` (local or object storage) atomically."""
    if afs.is_remote(str(path)):
        fs, inner = afs.resolve(str(path))
        with fs.open_output_stream(inner) as fh:
            fh.write(data)
        return
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(data)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_table(path: str | os.PathLike, table: pa.Table) -> None:
    """Write a whole Arrow table as one Parquet file atomically."""
    with atomic_path(path) as tmp:
        fs, inner = afs.resolve(tmp)
        pq.write_table(table, inner, filesystem=fs)


class AtomicParquetWriter:
    """Stream record batches into one Parquet file that appears only when closed successfully.

    Memory stays flat however many rows pass through: batches are written as they come.
    """

    def __init__(self, path: str | os.PathLike, schema: pa.Schema):
        self._ctx = atomic_path(path)
        tmp = self._ctx.__enter__()
        fs, inner = afs.resolve(tmp)
        self._writer = pq.ParquetWriter(inner, schema, filesystem=fs)
        self.schema = schema
        self.rows = 0

    def write(self, table: pa.Table) -> None:
        table = table.select(self.schema.names).cast(self.schema)
        self._writer.write_table(table)
        self.rows += table.num_rows

    def close(self) -> None:
        self._writer.close()
        self._ctx.__exit__(None, None, None)

    def abort(self, exc: BaseException) -> None:
        self._writer.close()
        try:
            self._ctx.__exit__(type(exc), exc, exc.__traceback__)
        except BaseException:
            pass

    def __enter__(self) -> "AtomicParquetWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc is None:
            self.close()
        else:
            self.abort(exc)


def remove_stale_temps(folder: str | os.PathLike) -> list[str]:
    """Remove the ``.tmp-*`` files and folders an interrupted or killed run left under ``folder``.

    A process killed between creating its temporary file and renaming it (SIGKILL, power loss)
    cannot clean up; the next run of a command on the same output folder does. Call it before
    the command writes anything: a temporary name belongs to a write in progress, and only one
    command writes an output folder at a time. Object stores have no temporary names.

    Args:
        folder: Output folder (walked recursively; symlinks are not followed).

    Returns:
        The removed paths.
    """
    folder = str(folder)
    if afs.is_remote(folder) or not os.path.isdir(folder):
        return []
    removed = []
    for root, dirs, files in os.walk(folder):
        for name in [d for d in dirs if d.startswith(TMP_PREFIX)]:
            shutil.rmtree(os.path.join(root, name), ignore_errors=True)
            dirs.remove(name)
            removed.append(os.path.join(root, name))
        for name in files:
            if name.startswith(TMP_PREFIX):
                path = os.path.join(root, name)
                try:
                    os.remove(path)
                except FileNotFoundError:
                    continue
                removed.append(path)
    return sorted(removed)
