"""Central labeled crops: the region holding the image centre, one per image."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq

from activessf.pipeline.labeled import central_rows, write_central_crops


def _regions(rows):
    cols = list(zip(*rows))
    return pa.table({"image_id": list(cols[0]), "x": list(cols[1]), "y": list(cols[2]), "w": list(cols[3]), "h": list(cols[4])})


def test_picks_the_smallest_box_containing_the_centre():
    regions = _regions([
        ("a", 0, 0, 30, 30),      # corner neighbour of a
        ("a", 40, 40, 30, 30),    # contains (50, 50)
        ("a", 10, 10, 90, 90),    # contains it too, larger
        ("b", 0, 0, 20, 20),      # b has no central region
        ("c", 45, 20, 10, 40),    # contains (50, 30) of a 100x60 image
    ])
    sizes = {"a": (100, 100), "b": (100, 100), "c": (100, 60)}
    assert central_rows(regions, sizes) == [1, 4]


def test_manifest_counts_reconcile(tmp_path):
    (tmp_path / "crops").mkdir()
    manifest = pa.table({"image_id": ["a", "b", "c"], "status": ["ok", "ok", "rejected"],
                         "width": [100, 100, None], "height": [100, 100, None]})
    regions = _regions([("a", 40, 40, 30, 30), ("a", 0, 0, 10, 10), ("b", 0, 0, 20, 20)])
    regions = regions.append_column("label", pa.array(["EO", "EO", "LY"]))
    regions = regions.append_column("crop_path", pa.array(["crops/a0.png", "crops/a1.png", "crops/b0.png"]))
    pq.write_table(manifest, tmp_path / "manifest.parquet")
    pq.write_table(regions, tmp_path / "regions.parquet")
    counts = write_central_crops(str(tmp_path), str(tmp_path / "labeled_crops.parquet"))
    assert counts == {"labeled_images": 3, "central": 1, "no_central_region": 1, "rejected": 1}
    out = pq.read_table(tmp_path / "labeled_crops.parquet").to_pylist()
    assert out == [{"source_path": str(tmp_path / "crops/a0.png"), "label": "EO", "image_id": "a"}]
