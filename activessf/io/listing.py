"""List a folder's image entries, each with the reason it cannot be read (None when it can).

Nothing is dropped silently: an image-named entry that is hidden, a dangling symlink or not a
regular file (a FIFO would block its reader forever) is listed with its reason, so the stage's
manifest accounts for it. A symlinked folder already listed (a symlink loop, or two links to one
folder) is descended once and the repeat is listed with its reason. Entries whose name has no
image extension are not inputs and are not listed.
"""

from __future__ import annotations

import os
import posixpath

import pyarrow.fs as pafs

from activessf.io import fs as afs

HIDDEN = "hidden file"
DANGLING = "dangling symlink"
NOT_REGULAR = "not a regular file"

Listing = list[tuple[str, "str | None"]]


def _hidden(rel: str) -> bool:
    return any(part.startswith(".") for part in rel.split("/"))


def local_entry_reason(path: str) -> str | None:
    """Why a local path cannot be read as an image file (None when it is a regular file)."""
    if not os.path.lexists(path):
        return "no such file"
    if not os.path.exists(path):
        return f"{DANGLING} (target {os.readlink(path)} does not exist)"
    if not os.path.isfile(path):
        return NOT_REGULAR
    return None


def list_local(root: str, extensions: tuple[str, ...]) -> Listing:
    """Every image-named entry under local folder ``root`` (recursive, symlinks followed once).

    Args:
        root: Absolute folder path.
        extensions: Lower-case image extensions, with the dot.

    Returns:
        ``(path, reason)`` pairs sorted by path; reason is None for a readable image file.
    """
    found: Listing = []
    seen: dict[tuple[int, int], str] = {}
    stack = [root]
    while stack:
        folder = stack.pop()
        st = os.stat(folder)
        seen[(st.st_dev, st.st_ino)] = folder
        try:
            with os.scandir(folder) as it:
                entries = sorted(it, key=lambda e: e.name, reverse=True)
        except OSError as exc:
            found.append((folder, f"unreadable folder: {exc.strerror}"))
            continue
        for entry in entries:
            if entry.is_dir():  # follows symlinks, so a linked folder is listed too
                target = os.stat(entry.path)
                first = seen.get((target.st_dev, target.st_ino))
                if first is not None:
                    # Only a symlink reaches a folder twice; descending again would loop.
                    found.append((entry.path, f"symlink to a folder already listed ({first}); followed once"))
                else:
                    seen[(target.st_dev, target.st_ino)] = entry.path
                    stack.append(entry.path)
            elif entry.name.lower().endswith(extensions):
                reason = local_entry_reason(entry.path)
                if reason is None and _hidden(os.path.relpath(entry.path, root).replace(os.sep, "/")):
                    reason = HIDDEN
                found.append((entry.path, reason))
    return sorted(found)


def list_remote(root: str, extensions: tuple[str, ...]) -> Listing:
    """Image-named objects under an object-storage prefix; hidden ones carry their reason."""
    fs, inner = afs.resolve(root)
    scheme = str(root).split("://", 1)[0]
    found: Listing = []
    for info in fs.get_file_info(pafs.FileSelector(inner, recursive=True)):
        if info.type != pafs.FileType.File or not info.path.lower().endswith(extensions):
            continue
        rel = posixpath.relpath(info.path, inner)
        found.append((f"{scheme}://{info.path}", HIDDEN if _hidden(rel) else None))
    return sorted(found)
