"""The region stage without Ray: outputs, reconciliation, crops, skip and rerun."""

import json

import cv2
import pyarrow.parquet as pq
import pytest

from activessf.config import build_config
from activessf.stages.regions import run_regions
from activessf.io.schema import MANIFEST_SCHEMA, REGIONS_SCHEMA
from activessf.regions.config import RegionsConfig
from tests.images import write_mixed_folder


@pytest.fixture()
def mixed_folder(tmp_path, shared_data):
    good = sorted((shared_data / "pbc11" / "labeled" / "SNE").glob("*.jpg"))[:3]
    folder = tmp_path / "in"
    return folder, write_mixed_folder(folder, good)


def test_local_stage_reconciles_and_writes_everything(tmp_path, mixed_folder):
    folder, expected = mixed_folder
    out = tmp_path / "out"
    cfg = build_config(RegionsConfig, None, ["crop_size=64", "batch_size=4"])
    summary = run_regions(str(folder), str(out), cfg, executor="local")
    manifest = pq.read_table(out / "manifest.parquet")
    regions = pq.read_table(out / "regions.parquet")
    assert manifest.schema.equals(MANIFEST_SCHEMA) and regions.schema.equals(REGIONS_SCHEMA)
    assert summary.inputs == len(expected) == manifest.num_rows
    assert summary.ok + summary.rejected == summary.inputs
    rows = {r["source_path"].split("/")[-1]: r for r in manifest.to_pylist()}
    for name, (status, reason) in expected.items():
        assert rows[name]["status"] == status, name
        assert reason in rows[name]["reason"], (name, rows[name]["reason"])
    assert sum(r["n_regions"] for r in rows.values()) == regions.num_rows == summary.regions
    # The real neutrophils each give their central cell; every crop exists at the stated size.
    assert summary.images_with_regions >= 3
    for rel in regions["crop_path"].to_pylist():
        crop = cv2.imread(str(out / rel))
        assert crop is not None and crop.shape == (64, 64, 3)
    assert (out / "contact_sheet.png").stat().st_size > 1000
    saved = (out / "config.yaml").read_text()
    assert "crop_size: 64" in saved
    marker = json.loads((out / "_SUCCESS.json").read_text())
    assert marker["summary"]["inputs"] == summary.inputs
    assert not list(out.glob(".tmp-*"))


def test_rerun_skips_when_done_and_reruns_when_config_changes(tmp_path, mixed_folder):
    folder, _ = mixed_folder
    out = tmp_path / "out"
    cfg = build_config(RegionsConfig, None, ["crop_size=32"])
    assert run_regions(str(folder), str(out), cfg, executor="local") is not None
    before = (out / "manifest.parquet").stat().st_mtime_ns
    assert run_regions(str(folder), str(out), cfg, executor="local") is None
    assert (out / "manifest.parquet").stat().st_mtime_ns == before
    changed = build_config(RegionsConfig, None, ["crop_size=48"])
    assert run_regions(str(folder), str(out), changed, executor="local") is not None
    assert run_regions(str(folder), str(out), changed, executor="local", force=True) is not None


def test_rerun_leaves_no_crop_it_did_not_list(tmp_path, mixed_folder):
    """Crops of an interrupted attempt (or a region no longer cut) do not survive a rerun."""
    folder, _ = mixed_folder
    out = tmp_path / "out"
    orphan = out / "crops" / "zz" / "zz-orphan-000.png"
    orphan.parent.mkdir(parents=True)
    orphan.write_bytes(b"left by a killed run")
    run_regions(str(folder), str(out), build_config(RegionsConfig, None, ["crop_size=32"]), executor="local")
    listed = {str(out / p) for p in pq.read_table(out / "regions.parquet")["crop_path"].to_pylist()}
    assert listed and {str(p) for p in (out / "crops").rglob("*.png")} == listed


def test_same_seed_same_regions(tmp_path, shared_data):
    src = shared_data / "bccd" / "JPEGImages"
    folder = tmp_path / "in"
    folder.mkdir()
    for p in sorted(src.glob("*.jpg"))[:3]:
        (folder / p.name).write_bytes(p.read_bytes())
    cfg = build_config(RegionsConfig, None, ["crop_size=32"])
    tables = []
    for name in ("a", "b"):
        run_regions(str(folder), str(tmp_path / name), cfg, executor="local")
        tables.append(pq.read_table(tmp_path / name / "regions.parquet").drop(["crop_path"]))
    assert tables[0].equals(tables[1])
