"""The feature stage without Ray: inputs from folders and region outputs, schema, statuses."""

import json
import shutil

import numpy as np
import pyarrow.parquet as pq
import pytest

from activessf.config import build_config
from activessf.stages.features import run_features
from activessf.features.config import FeaturesConfig
from activessf.features.stage import feature_items, read_features


@pytest.fixture()
def labeled_folder(tmp_path, shared_data):
    root = tmp_path / "labeled"
    for cls in ("EO", "LY"):
        (root / cls).mkdir(parents=True)
        for p in sorted((shared_data / "pbc11" / "labeled" / cls).glob("*.jpg"))[:3]:
            shutil.copy(p, root / cls / p.name)
    (root / "LY" / "broken.jpg").write_bytes(b"not an image")
    return root


def test_local_features_table(tmp_path, labeled_folder):
    cfg = build_config(FeaturesConfig, None, ["source=random", "backbone=resnet18", "batch_size=4"])
    counts = run_features(str(labeled_folder), str(tmp_path / "f"), cfg, labeled=True, executor="local")
    assert counts == {"inputs": 7, "ok": 6, "rejected": 1, "dim": 512}
    table, feats, meta = read_features(str(tmp_path / "f" / "features.parquet"))
    assert feats.shape == (6, 512) and feats.dtype == np.float32 and np.isfinite(feats).all()
    assert sorted(table["label"].to_pylist()) == ["EO"] * 3 + ["LY"] * 3
    assert meta["backbone"] == "resnet18" and meta["data_config"]["input_size"] == [3, 224, 224]
    status = pq.read_table(tmp_path / "f" / "status.parquet").to_pylist()
    bad = [r for r in status if r["status"] == "rejected"]
    assert len(bad) == 1 and bad[0]["path"].endswith("broken.jpg") and "not a decodable" in bad[0]["reason"]
    assert json.loads((tmp_path / "f" / "_SUCCESS.json").read_text())["summary"]["ok"] == 6
    assert run_features(str(labeled_folder), str(tmp_path / "f"), cfg, labeled=True, executor="local") is None


def test_items_from_region_stage_folder(tmp_path, shared_data):
    from activessf.stages.regions import run_regions
    from activessf.regions.config import RegionsConfig

    src = tmp_path / "in"
    src.mkdir()
    for p in sorted((shared_data / "pbc11" / "unlabeled").glob("*.jpg"))[:3]:
        shutil.copy(p, src / p.name)
    run_regions(str(src), str(tmp_path / "r"), build_config(RegionsConfig, None, ["crop_size=32"]), executor="local")
    items = feature_items(str(tmp_path / "r"))
    regions = pq.read_table(tmp_path / "r" / "regions.parquet")
    assert items["id"].to_pylist() == regions["region_id"].to_pylist()
    assert all(p.startswith(str(tmp_path / "r" / "crops")) for p in items["path"].to_pylist())
