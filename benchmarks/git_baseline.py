"""Import ``activessf/regions`` as it was at a git revision, beside the current one.

Lets a benchmark time the old and new code side by side in one process (same images, same
machine load). The package's files at ``rev`` are read with ``git show`` into a temporary
folder as the package ``baseline_<rev>``, with their ``activessf.regions`` imports pointed at
that copy; everything else (``activessf.config``, ``activessf.io``) is the current code.
"""

from __future__ import annotations

import importlib
import subprocess
import sys
import tempfile
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]


def load_regions_at(rev: str, module: str = "adaptive") -> ModuleType:
    """The module ``activessf.regions.<module>`` as of git revision ``rev``.

    Args:
        rev: Any git revision (commit, tag, ``HEAD~3``).
        module: Module name inside ``activessf/regions``.

    Returns:
        The imported module; its siblings (e.g. ``config``) are in ``sys.modules`` under the
        same ``baseline_<rev>`` package.
    """
    sha = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", rev],
                         capture_output=True, text=True, check=True).stdout.strip()
    package = f"baseline_{sha}"
    if package not in sys.modules:
        folder = Path(tempfile.mkdtemp(prefix="regions_baseline_")) / package
        folder.mkdir()
        names = subprocess.run(["git", "-C", str(ROOT), "ls-tree", "--name-only", sha, "activessf/regions/"],
                               capture_output=True, text=True, check=True).stdout.split()
        for name in names:
            if name.endswith(".py"):
                text = subprocess.run(["git", "-C", str(ROOT), "show", f"{sha}:{name}"],
                                      capture_output=True, text=True, check=True).stdout
                (folder / Path(name).name).write_text(text.replace("activessf.regions.", f"{package}."))
        sys.path.insert(0, str(folder.parent))
    return importlib.import_module(f"{package}.{module}")
