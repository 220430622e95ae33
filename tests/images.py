"""Builders of good and deliberately bad image files for tests."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np

# name -> (expected status, substring expected in reason)
BAD_CASES = {
    "empty.jpg": ("rejected", "empty file"),
    "truncated.jpg": ("rejected", "truncated JPEG"),
    "text.jpg": ("rejected", "not a decodable image"),
    "tiny.png": ("rejected", "too small"),
    "gray.png": ("ok", "grayscale"),
    "rgba.png": ("ok", "RGBA"),
    "deep16.png": ("ok", "16-bit"),
}


def write_mixed_folder(folder: Path, good_sources: list[Path]) -> dict[str, tuple[str, str]]:
    """Copy real good images and write every bad case into ``folder``; return expectations."""
    folder.mkdir(parents=True, exist_ok=True)
    expected = {}
    for src in good_sources:
        shutil.copy(src, folder / src.name)
        expected[src.name] = ("ok", "")
    real = cv2.imread(str(good_sources[0]))
    (folder / "empty.jpg").write_bytes(b"")
    data = (folder / good_sources[0].name).read_bytes()
    (folder / "truncated.jpg").write_bytes(data[: len(data) // 2])
    (folder / "text.jpg").write_text("this is not an image\n" * 20)
    cv2.imwrite(str(folder / "tiny.png"), np.zeros((1, 1, 3), np.uint8))
    cv2.imwrite(str(folder / "gray.png"), cv2.cvtColor(real, cv2.COLOR_BGR2GRAY))
    rgba = cv2.cvtColor(real, cv2.COLOR_BGR2BGRA)
    rgba[:, :, 3] = 200
    cv2.imwrite(str(folder / "rgba.png"), rgba)
    cv2.imwrite(str(folder / "deep16.png"), real.astype(np.uint16) * 257)
    expected.update(BAD_CASES)
    return expected


def small_labeled(root: Path, per_class: int = 4) -> Path:
    """The first ``per_class`` embedded sample cells of every class, as an ImageFolder at ``root``
    (a labeled set small enough that training on it keeps a test short)."""
    from activessf.data import SAMPLE_LABELED

    for cls in sorted(p for p in SAMPLE_LABELED.iterdir() if p.is_dir()):
        (root / cls.name).mkdir(parents=True)
        for p in sorted(cls.glob("*.jpg"))[:per_class]:
            shutil.copy(p, root / cls.name / p.name)
    return root
