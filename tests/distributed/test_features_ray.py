"""Ray Data feature extraction gives the same features as the in-process path."""

import shutil

import numpy as np

from activessf.config import build_config
from activessf.stages.features import run_features
from activessf.features.config import FeaturesConfig
from activessf.features.stage import read_features


def test_ray_features_match_local(tmp_path, shared_data, ray_session):
    src = tmp_path / "in"
    src.mkdir()
    for p in sorted((shared_data / "pbc11" / "unlabeled").glob("*.jpg"))[:6]:
        shutil.copy(p, src / p.name)
    cfg = build_config(FeaturesConfig, None, ["source=random", "backbone=resnet18", "batch_size=4"])
    run_features(str(src), str(tmp_path / "ray"), cfg, executor="ray")
    run_features(str(src), str(tmp_path / "loc"), cfg, executor="local")
    t_ray, f_ray, _ = read_features(str(tmp_path / "ray" / "features.parquet"))
    t_loc, f_loc, _ = read_features(str(tmp_path / "loc" / "features.parquet"))
    ray_ids, loc_ids = t_ray["id"].to_pylist(), t_loc["id"].to_pylist()
    assert sorted(ray_ids) == sorted(loc_ids) and len(ray_ids) == 6
    by_id = dict(zip(ray_ids, f_ray))
    np.testing.assert_allclose(np.stack([by_id[i] for i in loc_ids]), f_loc, rtol=1e-4, atol=1e-5)
