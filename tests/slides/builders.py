"""Small pyramidal slides of real BCCD smears, with their known white cells in slide coordinates."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from activessf.slides.synthetic import Mosaic, write_slide
from tests.regions.test_adaptive import voc_wbc  # the BCCD white-cell boxes, read one way

GLASS = (240, 240, 240)

# Fields whose white cells the default preset finds on the field alone (tests/regions/test_adaptive.py).
STEMS = ["BloodImage_00000", "BloodImage_00016", "BloodImage_00099", "BloodImage_00200", "BloodImage_00300",
         "BloodImage_00001"]




def white_balance(rgb: np.ndarray) -> np.ndarray:
    """Scale each channel so the field's background (its 90th percentile) is the slide's glass.

    BCCD fields are dim and tinted, each differently; a slide scanner balances its whole scan
    against the glass, so the fields of one slide (and its margin) share one background.
    """
    bg = np.percentile(rgb.reshape(-1, 3), 90, axis=0)
    return np.clip(rgb.astype(np.float32) * (np.array(GLASS) / bg), 0, 255).astype(np.uint8)


def bccd_mosaic(shared_data: Path, cols: int = 3, rows: int = 2, margin: int = 384) -> tuple[Mosaic, list]:
    """A ``cols`` x ``rows`` mosaic of BCCD fields in a glass margin, and its known white cells.

    Returns:
        The mosaic and ``[(cell, (x0, y0, x1, y1))]`` level-0 boxes of every annotated white cell.
    """
    bccd = shared_data / "bccd"
    fields = [white_balance(cv2.imread(str(bccd / "JPEGImages" / f"{s}.jpg"))[..., ::-1]) for s in STEMS]
    mosaic = Mosaic(fields, cols, rows, margin, glass=GLASS)
    known = mosaic.boxes([voc_wbc(bccd / "Annotations" / f"{s}.xml") for s in STEMS])
    return mosaic, known


def bccd_slide(path: Path, shared_data: Path, mpp: float | None = 0.25, **kw) -> list:
    """Write the BCCD mosaic slide at ``path``; return its known white-cell boxes (level 0)."""
    mosaic, known = bccd_mosaic(shared_data, **kw)
    write_slide(str(path), mosaic, mpp=mpp)
    return known
