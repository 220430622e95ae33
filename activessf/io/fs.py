"""One way to reach files on local disk or object storage (``s3://``, ``gs://``), via pyarrow.fs."""

from __future__ import annotations

import hashlib
import os
import posixpath
import tempfile
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


def abspath(uri: str) -> str:
    """``os.path.abspath`` for a local path; an object-storage URI unchanged (never ``./s3:/...``)."""
    uri = str(uri)
    return uri if is_remote(uri) else os.path.abspath(uri)


def _scratch_root() -> str:
    return os.path.join(tempfile.gettempdir(), f"activessf-remote-{os.getuid()}")


def local_folder(uri: str) -> str:
    """A local folder standing for ``uri``: the folder itself when local, else a scratch folder.

    For files that must be local and are not outputs (a progress file tailed while Ray Train
    runs, a log): a remote output folder gets one scratch folder per URI on this machine.
    """
    if not is_remote(uri):
        return os.path.abspath(uri)
    key = hashlib.sha256(str(uri).rstrip("/").encode()).hexdigest()[:16]
    folder = os.path.join(_scratch_root(), "folders", key)
    os.makedirs(folder, exist_ok=True)
    return folder


def local_copy(uri: str) -> str:
    """A local path holding the bytes of ``uri``, for readers that take only a local file
    (safetensors' ``safe_open``, ``torch.load`` of a path, OpenCV).

    A local path is returned as is. An object is downloaded once per machine into a cache keyed
    by its URI, size and modification time, so a rewritten object (a resumed pretraining's new
    encoder) is fetched again; the download lands under a temporary name and is renamed, so
    concurrent readers (Ray workers on one node) never see a partial file.

    Args:
        uri: Local path or object-storage URI of one file.

    Returns:
        Absolute local path of the file (or its cached copy).

    Raises:
        FileNotFoundError: ``uri`` does not exist.
    """
    if not is_remote(uri):
        return os.path.abspath(uri)
    fs, path = resolve(uri)
    info = fs.get_file_info(path)
    if info.type != pafs.FileType.File:
        raise FileNotFoundError(f"no such object: {uri}")
    key = hashlib.sha256(f"{uri}|{info.size}|{info.mtime_ns}".encode()).hexdigest()[:16]
    folder = os.path.join(_scratch_root(), "copies", key)
    local = os.path.join(folder, posixpath.basename(path))
    if os.path.isfile(local) and os.path.getsize(local) == info.size:
        return local
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=folder)
    try:
        with os.fdopen(fd, "wb") as out, fs.open_input_stream(path) as src:
            while block := src.read(1 << 22):
                out.write(block)
        os.replace(tmp, local)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return local
