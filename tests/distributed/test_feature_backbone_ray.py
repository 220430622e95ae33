"""``features.source: labeled`` end to end on Ray Train: the fine-tuning final fit trains the
backbone, a rerun reuses it, its features drive a selection without the random-features warning,
and a selection on random features carries the warning in its report."""

from __future__ import annotations

import json
import shutil

from safetensors import safe_open

from activessf.config import build_config
from activessf.data import SAMPLE_UNLABELED
from activessf.stages.feature_backbone import train_feature_backbone, with_backbone
from activessf.stages.features import run_features
from activessf.features.config import RANDOM_WARNING, FeaturesConfig
from activessf.features.stage import read_features
from activessf.io.items import crop_items
from activessf.selection.config import SelectionConfig
from activessf.selection.stage import run_select
from tests.images import small_labeled

SETS = ["backbone=resnet10t", "labeled.img_size=32", "labeled.epochs=1", "labeled.batch_size=32", "batch_size=32",
        "device=cpu"]


def _select(tmp_path, cfg: FeaturesConfig, name: str, labeled: str, pool: str) -> dict:
    run_features(labeled, str(tmp_path / f"{name}_lab"), cfg, labeled=True, executor="local")
    run_features(pool, str(tmp_path / f"{name}_pool"), cfg, executor="local")
    run_select(str(tmp_path / f"{name}_lab"), str(tmp_path / f"{name}_pool"), str(tmp_path / f"{name}_sel"),
               build_config(SelectionConfig, None, ["k=4", "n_init=2"]))
    return json.loads((tmp_path / f"{name}_sel" / "report.json").read_text())


def test_labeled_backbone_trains_on_ray_and_feeds_the_selection(tmp_path, ray_session, capsys):
    pool = tmp_path / "pool"
    pool.mkdir()
    for p in sorted(SAMPLE_UNLABELED.glob("*.jpg"))[:8]:
        shutil.copy(p, pool / p.name)
    labeled = str(small_labeled(tmp_path / "labeled"))
    cfg = build_config(FeaturesConfig, None, SETS + ["source=labeled"])
    weights = train_feature_backbone(labeled, str(tmp_path / "backbone"), cfg, executor="ray")
    with safe_open(weights, framework="pt") as fh:
        assert "fc.weight" in fh.keys()  # the classifier of the final fit, head dropped on load
    marker = json.loads((tmp_path / "backbone" / "_SUCCESS.json").read_text())
    n_labeled = crop_items(labeled, labeled=True).num_rows
    assert marker["summary"]["crops"] == n_labeled and marker["summary"]["classes"] == 11
    stamp = (tmp_path / "backbone" / "final" / "model.safetensors").stat().st_mtime_ns
    assert train_feature_backbone(labeled, str(tmp_path / "backbone"), cfg) == weights
    assert (tmp_path / "backbone" / "final" / "model.safetensors").stat().st_mtime_ns == stamp  # reused
    report = _select(tmp_path, with_backbone(cfg, weights), "lab", labeled, str(pool))
    _, feats, meta = read_features(str(tmp_path / "lab_lab" / "features.parquet"))
    assert meta["source"] == "labeled" and meta["data_config"]["input_size"] == [3, 32, 32] and feats.shape[0] == n_labeled
    assert "warning" not in report
    capsys.readouterr()
    report = _select(tmp_path, build_config(FeaturesConfig, None, SETS + ["source=random", "img_size=32"]), "rnd",
                     labeled, str(pool))
    assert report["warning"] == RANDOM_WARNING
    assert RANDOM_WARNING in capsys.readouterr().err
