"""Turn a user's input (a folder, or a CSV/Parquet manifest) into the table of inputs.

The inputs table has one row per image: ``image_id``, ``source_path``, ``label`` (null when
unlabeled). Labeled sets are an ImageFolder layout (``ROOT/<class>/**/image``) or a manifest with
a ``label`` column.
"""

from __future__ import annotations

import posixpath

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from activessf.io import fs as afs
from activessf.io.schema import image_id_for

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp", ".webp")
PATH_COLUMNS = ("source_path", "path", "file", "filename", "image")

INPUTS_SCHEMA = pa.schema(
    [("image_id", pa.string()), ("source_path", pa.string()), ("label", pa.string())]
)


class InputError(ValueError):
    """The input location or manifest is unusable; the message says why."""


def load_inputs(source: str, labeled: bool = False) -> pa.Table:
    """List the images of a folder or manifest.

    Args:
        source: Folder (local or ``s3://``/``gs://``), or a ``.csv``/``.parquet`` manifest.
        labeled: For a folder, take each image's class from its first-level sub-folder
            (ImageFolder). A manifest's ``label`` column is always used when present.

    Returns:
        Table with ``image_id``, ``source_path``, ``label`` (``INPUTS_SCHEMA``), sorted by path,
        duplicates removed.
    """
    lower = str(source).lower()
    if lower.endswith((".csv", ".parquet", ".pq")):
        paths, labels = _read_manifest(str(source))
    else:
        paths, labels = _scan_folder(str(source), labeled)
    if not paths:
        raise InputError(f"no images found in {source} (extensions: {', '.join(IMAGE_EXTENSIONS)})")
    seen: dict[str, str | None] = {}
    for p, lab in zip(paths, labels):
        seen.setdefault(p, lab)
    ordered = sorted(seen)
    return pa.table(
        {
            "image_id": [image_id_for(p) for p in ordered],
            "source_path": ordered,
            "label": [seen[p] for p in ordered],
        },
        schema=INPUTS_SCHEMA,
    )


def _scan_folder(root: str, labeled: bool) -> tuple[list[str], list[str | None]]:
    fs, inner = afs.resolve(root)
    import pyarrow.fs as pafs

    if fs.get_file_info(inner).type != pafs.FileType.Directory:
        raise InputError(f"input folder does not exist: {root}")
    paths = afs.list_files(root, IMAGE_EXTENSIONS)
    if not labeled:
        return paths, [None] * len(paths)
    labels = []
    base = root.rstrip("/") + "/" if afs.is_remote(root) else inner.rstrip("/") + "/"
    for p in paths:
        rel = (p if afs.is_remote(root) else afs.resolve(p)[1])[len(base) :]
        parts = rel.split("/")
        if len(parts) < 2:
            raise InputError(f"labeled folder needs ROOT/<class>/image; {p} is directly in the root")
        labels.append(parts[0])
    return paths, labels


def _read_manifest(path: str) -> tuple[list[str], list[str | None]]:
    fs, inner = afs.resolve(path)
    if path.lower().endswith(".csv"):
        with fs.open_input_stream(inner) as fh:
            table = pacsv.read_csv(fh)
    else:
        table = pq.read_table(inner, filesystem=fs)
    column = next((c for c in PATH_COLUMNS if c in table.column_names), None)
    if column is None:
        raise InputError(f"{path}: manifest needs a path column, one of {list(PATH_COLUMNS)}")
    raw = [str(v) for v in table.column(column).to_pylist()]
    base = posixpath.dirname(path) if afs.is_remote(path) else afs.resolve(path)[1].rsplit("/", 1)[0]
    paths = [p if (afs.is_remote(p) or p.startswith("/")) else afs.join(base, p) for p in raw]
    if "label" in table.column_names:
        labels = [None if v is None else str(v) for v in table.column("label").to_pylist()]
    else:
        labels = [None] * len(paths)
    return paths, labels
