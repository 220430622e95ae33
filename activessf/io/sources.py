"""Turn a user's input (a folder, or a CSV/Parquet manifest) into the table of inputs.

The inputs table has one row per listed entry: ``image_id``, ``source_path``, ``label`` (null when
unlabeled) and ``reason`` (null for an image to read; else why it is rejected unread: a hidden
file, a dangling symlink, a FIFO, a folder reached twice through a symlink, a duplicate of another
row). Stages write the rejected rows into their manifest, so inputs = ok + rejected accounts for
every entry. Labeled sets are an ImageFolder layout (``ROOT/<class>/**/image``) or a manifest
with a ``label`` column.
"""

from __future__ import annotations

import os
import posixpath
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from activessf.io import fs as afs
from activessf.io.listing import list_local, list_remote, local_entry_reason
from activessf.io.schema import image_id_for, relative_paths
from activessf.slides.formats import SLIDE_EXTENSIONS

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp", ".webp")
PATH_COLUMNS = ("source_path", "path", "file", "filename", "image")

INPUTS_SCHEMA = pa.schema(
    [("image_id", pa.string()), ("source_path", pa.string()), ("label", pa.string()), ("reason", pa.string())]
)


class InputError(ValueError):
    """The input location or manifest is unusable; the message says why."""


@dataclass
class Entry:
    """One listed input: where it came from (``where``, for messages), its path, label, reason."""

    where: str
    path: str
    label: str | None
    reason: str | None = None


def load_inputs(source: str, labeled: bool = False, slides: bool = False) -> pa.Table:
    """List the images of a folder or manifest (or one image file), with the entries that cannot be read.

    Args:
        source: Folder (local or ``s3://``/``gs://``), a ``.csv``/``.parquet`` manifest, or one
            image (or, with ``slides``, slide) file.
        labeled: For a folder, take each image's class from its first-level sub-folder
            (ImageFolder). A manifest's ``label`` column is always used when present.
        slides: List whole-slide files too (``SLIDE_EXTENSIONS``: SVS, NDPI, MRXS...), for the
            stages that tile them (regions, predict).

    Returns:
        ``INPUTS_SCHEMA`` table sorted by path: one row per entry, ``reason`` null for the images
        to read. Entries that are the same file (``./x`` and ``/abs/x``, a symlink and its target)
        keep the first and reject the others as duplicates.

    Raises:
        InputError: missing folder, no usable image, a blank label or one file with two labels.
    """
    lower = str(source).lower()
    extensions = IMAGE_EXTENSIONS + (SLIDE_EXTENSIONS if slides else ())
    if lower.endswith((".csv", ".parquet", ".pq")):
        entries = _read_manifest(str(source))
    elif lower.endswith(extensions) and _is_file(str(source)):
        entries = [Entry(str(source), _one_file_path(str(source)), None)]
    else:
        entries = _scan_folder(str(source), labeled, extensions)
    _mark_duplicates(entries)
    if not any(e.reason is None for e in entries):
        skipped = f"; {len(entries)} entries skipped, e.g. {entries[0].path}: {entries[0].reason}" if entries else ""
        raise InputError(f"no images found in {source} (extensions: {', '.join(extensions)}){skipped}")
    entries.sort(key=lambda e: (e.path, e.reason is not None))
    return pa.table(
        {
            "image_id": _ids([e.path for e in entries], _id_root(str(source))),
            "source_path": [e.path for e in entries],
            "label": [e.label for e in entries],
            "reason": [e.reason for e in entries],
        },
        schema=INPUTS_SCHEMA,
    )


def _is_file(source: str) -> bool:
    import pyarrow.fs as pafs

    fs, inner = afs.resolve(source)
    return fs.get_file_info(inner).type == pafs.FileType.File


def _one_file_path(source: str) -> str:
    return source if afs.is_remote(source) else afs.resolve(source)[1]


def refuse_output_inside_input(source: str, out_dir: str) -> None:
    """Raise ``InputError`` when ``out_dir`` is ``source`` or inside it (a folder input).

    The next run would list the stage's own crops and contact sheet as inputs. A manifest lists
    its files by name, so an output beside it is harmless.
    """
    if str(source).lower().endswith((".csv", ".parquet", ".pq")) or _is_file(str(source)):
        return
    src, out = (_same_file_key(str(p)).rstrip("/") for p in (source, out_dir))
    if out == src or out.startswith(src + "/"):
        raise InputError(f"output folder {out_dir} is inside the input folder {source}: the next run would read "
                         "its own outputs as inputs; choose an output folder outside it")


def readable(inputs: pa.Table) -> pa.Table:
    """The rows of an inputs table that are images to read (``reason`` null), without ``reason``."""
    import pyarrow.compute as pc

    return inputs.filter(pc.is_null(inputs["reason"])).drop_columns(["reason"])


def _id_root(source: str) -> str:
    """The folder ids are relative to: the input folder, or a manifest's folder."""
    is_manifest = source.lower().endswith((".csv", ".parquet", ".pq"))
    folder = posixpath.dirname(source) if is_manifest and afs.is_remote(source) else source
    if afs.is_remote(source):
        return folder
    inner = afs.resolve(source)[1]
    return os.path.dirname(inner) if is_manifest else inner


def _ids(paths: list[str], root: str) -> list[str]:
    """``image_id_for`` each path relative to ``root`` (``relative_paths``: a moved input keeps its
    ids); a repeated path (a rejected duplicate row) gets a suffix."""
    ids, counts = [], {}
    for p in relative_paths(paths, root):
        base = image_id_for(p)
        n = counts.get(base, 0)
        counts[base] = n + 1
        ids.append(base if n == 0 else f"{base}-dup{n}")
    return ids


def _same_file_key(path: str) -> str:
    if afs.is_remote(path):
        scheme, rest = path.split("://", 1)
        return f"{scheme}://{posixpath.normpath(rest)}"
    return os.path.realpath(path)


def _mark_duplicates(entries: list[Entry]) -> None:
    """Reject every readable entry that is the same file as an earlier one; labels must agree."""
    first: dict[str, Entry] = {}
    for e in entries:
        if e.reason is not None:
            continue
        key = _same_file_key(e.path)
        kept = first.setdefault(key, e)
        if kept is e:
            continue
        if kept.label != e.label:
            raise InputError(f"{_describe(kept)} and {_describe(e)} are the same file with different labels")
        e.reason = f"duplicate of {kept.path}"


def _describe(e: Entry) -> str:
    where = "" if e.where == e.path else f"{e.where}: "
    return f"{where}{e.path} (label {e.label!r})"


def _scan_folder(root: str, labeled: bool, extensions: tuple[str, ...] = IMAGE_EXTENSIONS) -> list[Entry]:
    fs, inner = afs.resolve(root)
    import pyarrow.fs as pafs

    if fs.get_file_info(inner).type != pafs.FileType.Directory:
        raise InputError(f"input folder does not exist: {root}")
    remote = afs.is_remote(root)
    listing = list_remote(root, extensions) if remote else list_local(inner, extensions)
    base = root.rstrip("/") + "/" if remote else inner.rstrip("/") + "/"
    entries = []
    for path, reason in listing:
        label = None
        if labeled:
            parts = path[len(base):].split("/")
            if len(parts) < 2 and reason is None:
                raise InputError(f"labeled folder needs ROOT/<class>/image; {path} is directly in the root")
            label = parts[0] if len(parts) >= 2 else None
        entries.append(Entry(path, path, label, reason))
    return entries


def _read_manifest(path: str) -> list[Entry]:
    """One entry per manifest row; relative paths are relative to the manifest's folder."""
    fs, inner = afs.resolve(path)
    if path.lower().endswith(".csv"):
        with fs.open_input_stream(inner) as fh:
            table = pacsv.read_csv(fh)
    else:
        table = pq.read_table(inner, filesystem=fs)
    column = next((c for c in PATH_COLUMNS if c in table.column_names), None)
    if column is None:
        raise InputError(f"{path}: manifest needs a path column, one of {list(PATH_COLUMNS)}")
    base = posixpath.dirname(path) if afs.is_remote(path) else os.path.dirname(inner)
    labels = _manifest_labels(path, table)
    entries = []
    for i, raw in enumerate(table.column(column).to_pylist()):
        where = f"{path} row {i + 1}"
        if raw is None or not str(raw).strip():
            raise InputError(f"{where}: blank {column}")
        raw = str(raw)
        if afs.is_remote(raw) or afs.is_remote(base):
            p = raw if afs.is_remote(raw) else posixpath.join(base, raw)
            entries.append(Entry(where, p, labels[i]))
        else:
            p = os.path.normpath(os.path.join(base, raw))
            entries.append(Entry(where, p, labels[i], local_entry_reason(p)))
    return entries


def _manifest_labels(path: str, table: pa.Table) -> list[str | None]:
    """The ``label`` column as strings; all null = unlabeled, a blank among labels is an error."""
    if "label" not in table.column_names:
        return [None] * table.num_rows
    values = table.column("label").to_pylist()
    if all(v is None for v in values):
        return [None] * table.num_rows
    for i, v in enumerate(values):
        if v is None or not str(v).strip():
            raise InputError(f"{path} row {i + 1}: blank label (every row of a labeled manifest needs a class)")
    return [str(v) for v in values]
