"""``activessf.io`` against a real S3 API server (moto on 127.0.0.1, ``tests/s3.py``).

Listing, manifests, atomic writes, stage markers, freshness stamps, the local copies that
libraries needing a local file read, and the region stage (in this process) reading its images
from one bucket and writing its outputs to another, equal to the same stage on local disk.
"""

from __future__ import annotations

import json
import os
import shutil
import time

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from activessf.io import fs as afs
from activessf.io.atomic import AtomicParquetWriter, atomic_write_bytes, atomic_write_table
from activessf.io.markers import begin_stage, clear_marker, files_stamp, is_complete, write_marker
from activessf.io.sources import load_inputs, readable


@pytest.fixture
def labeled_tree(shared_data, tmp_path):
    """3 pbc11 cells of 2 classes as an ImageFolder, plus a hidden image and a text file."""
    root = tmp_path / "labeled"
    for cls in ("EO", "LY"):
        (root / cls).mkdir(parents=True)
        for p in sorted((shared_data / "pbc11" / "labeled" / cls).glob("*.jpg"))[:3]:
            shutil.copy(p, root / cls / p.name)
    shutil.copy(next((root / "EO").iterdir()), root / "EO" / ".hidden.jpg")
    (root / "notes.txt").write_text("not an input\n")
    return root


def test_folder_listing_on_s3_matches_local(s3_server, labeled_tree):
    bucket = s3_server.make_bucket("inputs")
    s3_server.upload_tree(labeled_tree, f"s3://{bucket}/cells")
    remote = load_inputs(f"s3://{bucket}/cells", labeled=True)
    local = load_inputs(str(labeled_tree), labeled=True)
    # Same rows, ids (relative to the root), labels and reasons; only the path prefix differs.
    assert remote.num_rows == local.num_rows == 7
    assert remote["image_id"].to_pylist() == local["image_id"].to_pylist()
    assert remote["label"].to_pylist() == local["label"].to_pylist()
    assert remote["reason"].to_pylist() == local["reason"].to_pylist()
    assert remote["reason"].to_pylist().count("hidden file") == 1
    prefix = f"s3://{bucket}/cells/"
    assert [p.removeprefix(prefix) for p in remote["source_path"].to_pylist()] == \
        [os.path.relpath(p, labeled_tree) for p in local["source_path"].to_pylist()]


def test_manifest_on_s3_with_relative_paths(s3_server, labeled_tree):
    bucket = s3_server.make_bucket("inputs")
    s3_server.upload_tree(labeled_tree, f"s3://{bucket}/set")
    rows = "path,label\nEO/{0}\nLY/{1}\n".format(*(f"{sorted((labeled_tree / c).glob('[!.]*.jpg'))[0].name},{c}"
                                                    for c in ("EO", "LY")))
    atomic_write_bytes(f"s3://{bucket}/set/manifest.csv", rows.encode())
    table = readable(load_inputs(f"s3://{bucket}/set/manifest.csv"))
    assert table["label"].to_pylist() == ["EO", "LY"]
    assert all(p.startswith(f"s3://{bucket}/set/") and afs.exists(p) for p in table["source_path"].to_pylist())


def test_tables_markers_and_stamps(s3_server):
    bucket = s3_server.make_bucket("runs")
    out = f"s3://{bucket}/stage"
    table = pa.table({"id": ["a", "b", "c"], "x": [1.0, 2.0, 3.0]})
    atomic_write_table(afs.join(out, "one.parquet"), table)
    assert afs.read_table(afs.join(out, "one.parquet")).equals(table)
    with AtomicParquetWriter(afs.join(out, "streamed.parquet"), table.schema) as writer:
        writer.write(table.slice(0, 2))
        writer.write(table.slice(2))
    assert afs.read_table(afs.join(out, "streamed.parquet")).equals(table) and writer.rows == 3
    assert afs.list_files(out, (".parquet",)) == [afs.join(out, "one.parquet"), afs.join(out, "streamed.parquet")]

    # A stage's life: run, marker, skip when current, marker cleared when rerun.
    assert begin_stage("demo", out, "fp1", {"k": 1}, force=False)
    write_marker(out, "demo", "fp1", {"rows": 3})
    assert is_complete(out, "fp1") and not is_complete(out, "fp2")
    assert not begin_stage("demo", out, "fp1", {"k": 1}, force=False)
    assert begin_stage("demo", out, "fp2", {"k": 2}, force=False) and not is_complete(out, "fp1")
    clear_marker(out)  # no marker: a no-op, not an error

    # Object sizes and times stand for their bytes: a rewrite changes the stamp, a missing one too.
    obj = afs.join(out, "one.parquet")
    before = files_stamp([obj])
    time.sleep(1.1)  # S3 times have a one-second resolution
    atomic_write_table(obj, table.slice(1))
    assert files_stamp([obj]) != before
    assert files_stamp([afs.join(out, "gone.jpg")]) != files_stamp([obj])
    afs.remove_dir(out)
    assert not afs.exists(obj)


def test_local_copy_follows_rewrites(s3_server, tmp_path):
    bucket = s3_server.make_bucket("weights")
    uri = f"s3://{bucket}/enc/encoder.safetensors"
    atomic_write_bytes(uri, b"first version")
    first = afs.local_copy(uri)
    assert open(first, "rb").read() == b"first version" and afs.local_copy(uri) == first
    time.sleep(1.1)
    atomic_write_bytes(uri, b"second, longer version")
    second = afs.local_copy(uri)
    assert second != first and open(second, "rb").read() == b"second, longer version"
    with pytest.raises(FileNotFoundError):
        afs.local_copy(f"s3://{bucket}/enc/missing.safetensors")
    assert afs.local_copy(str(tmp_path / "x.bin")) == str(tmp_path / "x.bin")  # local: itself
    assert afs.abspath(uri) == uri and afs.abspath("rel") == os.path.abspath("rel")
    assert afs.local_folder(uri) == afs.local_folder(uri + "/") and os.path.isdir(afs.local_folder(uri))


def test_region_stage_reads_and_writes_s3_like_local(s3_server, shared_data, tmp_path):
    """The stage (in this process) on a bucket writes what it writes on disk, crops included."""
    from activessf.config import build_config
    from activessf.stages.regions import run_regions
    from activessf.regions.config import RegionsConfig

    pool = tmp_path / "pool"
    pool.mkdir()
    for p in sorted((shared_data / "pbc11" / "unlabeled").glob("*.jpg"))[:4]:
        shutil.copy(p, pool / p.name)
    (pool / "empty.jpg").write_bytes(b"")  # a rejected row on both sides
    bucket_in, bucket_out = s3_server.make_bucket("inputs"), s3_server.make_bucket("runs")
    s3_server.upload_tree(pool, f"s3://{bucket_in}/pool")
    cfg = build_config(RegionsConfig, None, ["crop_size=32", "contact_sheet_images=0"])
    out = f"s3://{bucket_out}/regions"
    summary = run_regions(f"s3://{bucket_in}/pool", out, cfg, executor="local")
    run_regions(str(pool), str(tmp_path / "regions"), cfg, executor="local")
    assert summary.inputs == 5 and summary.rejected == 1
    assert run_regions(f"s3://{bucket_in}/pool", out, cfg, executor="local") is None  # current: skipped

    cols = ["region_id", "x", "y", "w", "h", "crop_path"]
    remote = afs.read_table(afs.join(out, "regions.parquet"), cols)
    local = pq.read_table(tmp_path / "regions" / "regions.parquet", columns=cols)
    assert remote.num_rows == local.num_rows > 0 and remote.equals(local)
    manifest = afs.read_table(afs.join(out, "manifest.parquet"), ["image_id", "status", "reason"])
    assert manifest.equals(pq.read_table(tmp_path / "regions" / "manifest.parquet", columns=["image_id", "status", "reason"]))
    keys = s3_server.keys(bucket_out, "regions/")
    crops = sorted(k.removeprefix("regions/") for k in keys if k.startswith("regions/crops/"))
    assert crops == sorted(remote["crop_path"].to_pylist())
    for rel in crops[:3]:  # byte for byte the crop written on disk
        assert afs.read_bytes(afs.join(out, rel)) == (tmp_path / "regions" / rel).read_bytes()
    marker = json.loads(afs.read_bytes(afs.join(out, "_SUCCESS.json")))
    assert marker["summary"]["regions"] == remote.num_rows
    assert np.all(np.asarray(remote["w"]) > 0)
