"""One way to reach files on local disk or object storage (``s3://``, ``gs://``), via pyarrow.fs."""

from __future__ import annotations

import posixpath
from functools import lru_cache

import pyarrow.fs as pafs

REMOTE_SCHEMES = ("s3://", "gs://", "gcs://", "hdfs://", "abfs://")


def is_remote(uri: str) -> bool:
    """True for object-storage URIs."""
    return str(uri).startswith(REMOTE_SCHEMES)


@lru_cache(maxsize=32)
def _filesystem_for(prefix: str) -> pafs.FileSystem:
    fs, _ = pafs.FileSystem.from_uri(prefix)
    return fs


def resolve(uri: str) -> tuple[pafs.FileSystem, str]:
    """Filesystem and in-filesystem path for a local path or an object-storage URI."""
    uri = str(uri)
    if is_remote(uri):
        scheme, rest = uri.split("://", 1)
        bucket = rest.split("/", 1)[0]
        fs = _filesystem_for(f"{scheme}://{bucket}")
        return fs, rest
    import os

    return pafs.LocalFileSystem(), os.path.abspath(uri)


def read_bytes(uri: str) -> bytes:
    """Whole file content."""
    fs, path = resolve(uri)
    with fs.open_input_stream(path) as fh:
        return fh.read()


def join(base: str, *parts: str) -> str:
    """Join path parts, keeping an object-storage scheme intact."""
    if is_remote(base):
        return posixpath.join(base, *parts)
    import os

    return os.path.join(base, *parts)


def exists(uri: str) -> bool:
    fs, path = resolve(uri)
    return fs.get_file_info(path).type != pafs.FileType.NotFound


def remove_dir(uri: str) -> None:
    """Delete a folder and everything in it (no-op when it does not exist)."""
    fs, path = resolve(uri)
    if fs.get_file_info(path).type != pafs.FileType.NotFound:
        fs.delete_dir(path)


def makedirs(uri: str) -> None:
    fs, path = resolve(uri)
    fs.create_dir(path, recursive=True)


def list_files(root: str, extensions: tuple[str, ...]) -> list[str]:
    """All files under ``root`` (recursive) whose lower-cased name ends with one of ``extensions``.

    Returns URIs in the same form as ``root`` (scheme kept), sorted so runs are reproducible.
    """
    fs, path = resolve(root)
    infos = fs.get_file_info(pafs.FileSelector(path, recursive=True))
    found = [
        i.path
        for i in infos
        if i.type == pafs.FileType.File
        and i.path.lower().endswith(extensions)
        and not posixpath.basename(i.path).startswith(".")
    ]
    if is_remote(root):
        scheme = str(root).split("://", 1)[0]
        found = [f"{scheme}://{p}" for p in found]
    return sorted(found)


def read_table(uri: str, columns: list[str] | None = None):
    """Read a Parquet file (local or object storage) as an Arrow table."""
    import pyarrow.parquet as pq

    fs, path = resolve(uri)
    return pq.read_table(path, filesystem=fs, columns=columns)
