"""Skips are keyed by what made the outputs, and a moved input selects exactly the same crops.

Every stage runs in-process (``--local``) on a few real pbc11 images.
"""

import json
import os
import shutil

import numpy as np
import pyarrow.parquet as pq

from activessf.config import build_config
from activessf.stages.features import run_features
from activessf.stages.regions import run_regions
from activessf.features.config import FeaturesConfig
from activessf.io.markers import files_stamp, read_marker
from activessf.io.sources import load_inputs
from activessf.regions.config import RegionsConfig
from activessf.selection.config import SelectionConfig
from activessf.selection.stage import run_select

REGIONS = ["crop_size=32", "contact_sheet_images=0"]


def _copy_set(shared_data, root, n_pool=4, n_per_class=3):
    """``root/pool`` (unlabeled images) and ``root/labeled/<class>`` (whole labeled images)."""
    (root / "pool").mkdir(parents=True)
    for p in sorted((shared_data / "pbc11" / "unlabeled").glob("*.jpg"))[:n_pool]:
        shutil.copy(p, root / "pool" / p.name)
    for cls in ("EO", "LY"):
        (root / "labeled" / cls).mkdir(parents=True)
        for p in sorted((shared_data / "pbc11" / "labeled" / cls).glob("*.jpg"))[:n_per_class]:
            shutil.copy(p, root / "labeled" / cls / p.name)
    return root


def _features_cfg():
    return build_config(FeaturesConfig, None, ["source=random", "backbone=resnet18", "batch_size=8"])


def test_files_stamp_sees_new_bytes_at_the_same_path(tmp_path):
    f = tmp_path / "a.png"
    f.write_bytes(b"one")
    before = files_stamp([str(f)])
    assert files_stamp([str(f)]) == before
    f.write_bytes(b"two")  # same size: the mtime tells
    os.utime(f, ns=(f.stat().st_atime_ns, f.stat().st_mtime_ns + 1_000_000))
    assert files_stamp([str(f)]) != before
    f.unlink()
    assert files_stamp([str(f)]) != before


def test_regions_rerun_when_an_image_changes_and_features_follow_the_regions(tmp_path, shared_data):
    root = _copy_set(shared_data, tmp_path / "set", n_pool=2)
    pool, regions, feats = root / "pool", tmp_path / "r", tmp_path / "f"
    cfg = build_config(RegionsConfig, None, REGIONS)
    assert run_regions(str(pool), str(regions), cfg, executor="local").inputs == 2
    assert run_regions(str(pool), str(regions), cfg, executor="local") is None  # current: skipped
    assert run_features(str(regions), str(feats), _features_cfg(), executor="local")["inputs"] > 0
    assert run_features(str(regions), str(feats), _features_cfg(), executor="local") is None
    # New bytes at an old path (another pbc11 image under the first one's name): regions rerun.
    first = sorted(pool.glob("*.jpg"))[0]
    other = sorted((shared_data / "pbc11" / "unlabeled").glob("*.jpg"))[-1]
    shutil.copy(other, first)
    assert run_regions(str(pool), str(regions), cfg, executor="local") is not None
    # ... and the features of the old crops are no longer served.
    assert run_features(str(regions), str(feats), _features_cfg(), executor="local") is not None
    # A new crop_margin re-makes the crops: features rerun again, keyed by the regions' marker.
    wider = build_config(RegionsConfig, None, REGIONS + ["crop_margin=0.5"])
    assert run_regions(str(pool), str(regions), wider, executor="local") is not None
    assert run_features(str(regions), str(feats), _features_cfg(), executor="local") is not None
    assert run_features(str(regions), str(feats), _features_cfg(), executor="local") is None


def test_features_of_an_image_folder_rerun_when_an_image_changes(tmp_path, shared_data):
    root = _copy_set(shared_data, tmp_path / "set", n_per_class=2)
    cfg = _features_cfg()
    assert run_features(str(root / "labeled"), str(tmp_path / "f"), cfg, labeled=True, executor="local") is not None
    assert run_features(str(root / "labeled"), str(tmp_path / "f"), cfg, labeled=True, executor="local") is None
    target = sorted((root / "labeled" / "EO").glob("*.jpg"))[0]
    shutil.copy(sorted((root / "labeled" / "LY").glob("*.jpg"))[0], target)
    assert run_features(str(root / "labeled"), str(tmp_path / "f"), cfg, labeled=True, executor="local") is not None


def test_ids_do_not_depend_on_where_the_images_live(tmp_path, shared_data):
    a = _copy_set(shared_data, tmp_path / "first" / "copy")
    b = _copy_set(shared_data, tmp_path / "elsewhere")
    for sub, labeled in (("pool", False), ("labeled", True)):
        ia, ib = load_inputs(str(a / sub), labeled), load_inputs(str(b / sub), labeled)
        assert ia["source_path"].to_pylist() != ib["source_path"].to_pylist()
        assert ia["image_id"].to_pylist() == ib["image_id"].to_pylist()


def test_moved_input_selects_the_same_crops(tmp_path, shared_data):
    selections = []
    for name in ("a/deeper/copy", "b"):
        root = _copy_set(shared_data, tmp_path / name, n_pool=4, n_per_class=4)
        out = tmp_path / f"out-{name.replace('/', '-')}"
        run_regions(str(root / "pool"), str(out / "regions"), build_config(RegionsConfig, None, REGIONS), executor="local")
        run_features(str(out / "regions"), str(out / "fpool"), _features_cfg(), executor="local")
        run_features(str(root / "labeled"), str(out / "flab"), _features_cfg(), labeled=True, executor="local")
        cfg = build_config(SelectionConfig, None, ["k=3", "n_init=2"])
        run_select(str(out / "flab"), str(out / "fpool"), str(out / "sel"), cfg)
        selections.append(pq.read_table(out / "sel" / "selection.parquet").to_pydict())
        selections[-1]["centres"] = np.load(out / "sel" / "prototypes.npy")
    first, second = selections
    assert len(first["id"]) > 5
    assert first["id"] == second["id"]
    assert first["selected"] == second["selected"] and first["cluster"] == second["cluster"]
    np.testing.assert_array_equal(first["centres"], second["centres"])


def test_regions_marker_records_content_stamp(tmp_path, shared_data):
    root = _copy_set(shared_data, tmp_path / "set", n_pool=1)
    cfg = build_config(RegionsConfig, None, REGIONS)
    run_regions(str(root / "pool"), str(tmp_path / "r"), cfg, executor="local")
    fp = read_marker(str(tmp_path / "r"))["fingerprint"]
    # Touching the file (same bytes, new mtime) is enough to re-key the stage: cheap and safe.
    f = next((root / "pool").glob("*.jpg"))
    os.utime(f, ns=(f.stat().st_atime_ns, f.stat().st_mtime_ns + 5_000_000_000))
    run_regions(str(root / "pool"), str(tmp_path / "r"), cfg, executor="local")
    assert read_marker(str(tmp_path / "r"))["fingerprint"] != fp
    assert json.loads((tmp_path / "r" / "summary.json").read_text())["inputs"] == 1


def test_pretraining_run_name_is_keyed_by_recipe_and_images(tmp_path):
    from activessf.stages.pretrain import keyed_run
    from tests.models.tiny import tiny_config

    images = []
    for i in range(2):
        images.append(tmp_path / f"{i}.png")
        images[-1].write_bytes(bytes([i]) * 10)
    paths = [str(p) for p in images]
    name = lambda *sets, p=paths: keyed_run(tiny_config("train.run_name=pre", *sets), p, p).train.run_name  # noqa: E731
    base = name()
    assert base.startswith("pre_") and name() == base
    # An interrupted run resumes under the same name, whatever the stop point or failure budget.
    assert name("train.stop_after_epochs=1", "train.max_failures=2") == base
    # Another recipe, or other images (the pipeline's selection changed), is a new run.
    assert name("optim.epochs=7") != base
    assert name(p=paths[:1]) != base
    images[0].write_bytes(b"new bytes, longer than before")
    assert name() != base
