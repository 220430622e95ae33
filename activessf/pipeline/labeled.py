"""Labeled crops cut by region filtering: the one cell each labeled image is labeled for.

In a cell-centred labeled set (one annotated cell per image, as in pbc11 or the paper's
megakaryocyte crops) every image yields the annotated cell plus any neighbours cut by the
image border. ``central_crops`` keeps the region whose box contains the image centre (the
smallest such box when several do), so labeled and pool crops share one geometry (the
prototypes and distances of the selection compare like with like) and no neighbour inherits
a label it does not have.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from activessf import console
from activessf.io import fs as afs
from activessf.io.atomic import atomic_write_table

MANIFEST = "labeled_crops.parquet"


def central_rows(regions: pa.Table, sizes: dict[str, tuple[int, int]]) -> list[int]:
    """Row index of each image's central region in ``regions``.

    Args:
        regions: ``image_id``, ``x``, ``y``, ``w``, ``h`` per region ``[R]``.
        sizes: ``image_id`` -> (width, height) of the original image.

    Returns:
        Indices into ``regions``, one per image that has a region containing its centre.
    """
    ids = regions["image_id"].to_pylist()
    x, y, w, h = (regions[c].to_numpy().astype(np.float64) for c in ("x", "y", "w", "h"))
    best: dict[str, tuple[float, int]] = {}
    for row, image in enumerate(ids):
        width, height = sizes[image]
        cx, cy = width / 2.0, height / 2.0
        if x[row] <= cx <= x[row] + w[row] and y[row] <= cy <= y[row] + h[row]:
            area = w[row] * h[row]
            if image not in best or area < best[image][0]:
                best[image] = (area, row)
    return sorted(row for _, row in best.values())


def write_central_crops(regions_dir: str, out_path: str) -> dict[str, int]:
    """Write a manifest (``source_path``, ``label``, ``image_id``) of the central crops.

    Args:
        regions_dir: Region stage folder of the labeled images (``--labeled``).
        out_path: Parquet manifest to write (atomically).

    Returns:
        Counts: ``labeled_images`` = ``central`` + ``no_central_region`` + ``rejected``.
    """
    manifest = afs.read_table(afs.join(regions_dir, "manifest.parquet"), ["image_id", "status", "width", "height"])
    ok = manifest.filter(pc.equal(manifest["status"], "ok"))
    sizes = dict(zip(ok["image_id"].to_pylist(), zip(ok["width"].to_pylist(), ok["height"].to_pylist())))
    regions = afs.read_table(afs.join(regions_dir, "regions.parquet"), ["image_id", "x", "y", "w", "h", "label", "crop_path"])
    kept = regions.take(central_rows(regions, sizes))
    paths = [afs.join(regions_dir, p) for p in kept["crop_path"].to_pylist()]
    atomic_write_table(out_path, pa.table({"source_path": paths, "label": kept["label"], "image_id": kept["image_id"]}))
    counts = {"labeled_images": manifest.num_rows, "central": kept.num_rows,
              "no_central_region": ok.num_rows - kept.num_rows, "rejected": manifest.num_rows - ok.num_rows}
    console.detail(f"labeled crops: {counts['labeled_images']} images = {counts['central']} central crops + "
                   f"{counts['no_central_region']} without a central region + {counts['rejected']} rejected", err=False)
    return counts
