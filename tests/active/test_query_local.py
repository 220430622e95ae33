"""activessf query in this process (no Ray): an untrained tiny ViT as a run's final fit, real pbc11
pool images as the pool. Checks the scoring pass, the exclusions and the files, not model quality."""

import csv
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from activessf.active.config import QueryConfig
from activessf.active.run_inputs import read_log

CLASSES = ["BA", "EO", "LY"]
MODEL = {"name": "vit_tiny_patch16_224", "init": "none", "img_size": 32, "patch_size": 8,
         "encoder_kwargs": {"depth": 1}}


def _fake_run(root, shared_data):
    """A fine-tune folder (metrics.json + final/model.safetensors) with a pool of 8 real images."""
    import torch
    from safetensors.torch import save_file

    from activessf.inference.bundle import build_member, member_descriptor

    torch.manual_seed(0)
    net = build_member(member_descriptor(MODEL), len(CLASSES))
    (root / "final").mkdir(parents=True)
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(root / "final" / "model.safetensors"))
    score = {"mean": 0.5, "std": 0.0}
    (root / "metrics.json").write_text(json.dumps({
        "method": "tiny", "classes": CLASSES, "folds": [],
        "config": {"model": MODEL, "aug": {"mean": [0.5] * 3, "std": [0.25] * 3}},
        "summary": {"accuracy": score, "macro_pr_auc": score, "macro_f1": score}}))
    images = sorted((shared_data / "pbc11" / "unlabeled").glob("*.jpg"))[:8]
    (root / "regions_pool").mkdir()
    n = len(images)
    pq.write_table(pa.table({
        "region_id": [f"r{i}" for i in range(n)], "image_id": [f"i{i}" for i in range(n)],
        "source_path": [str(p) for p in images], "x": [0] * n, "y": [0] * n, "w": [9] * n, "h": [9] * n,
        "crop_path": [str(p) for p in images]}), root / "regions_pool" / "regions.parquet")
    labeled = root.parent / "labeled"
    for c in CLASSES:
        (labeled / c).mkdir(parents=True)
        for p in sorted((shared_data / "pbc11" / "labeled" / c).glob("*.jpg"))[:2]:
            (labeled / c / p.name).symlink_to(p)
    return labeled


def test_local_query_rounds_never_repeat(tmp_path, shared_data):
    from activessf.stages.query import run_query

    run = tmp_path / "run"
    labeled = _fake_run(run, shared_data)
    s1 = run_query(str(run), str(tmp_path / "q1"), 3, QueryConfig(strategy="uncertainty"), labeled=str(labeled),
                   executor="local")
    with open(tmp_path / "q1" / "queries.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert s1["proposed"] == 3 and s1["available"] == 8
    # uncertainty order: the scores (margins) never increase down the list.
    scores = [float(r["score"]) for r in rows]
    assert scores == sorted(scores, reverse=True) and {r["predicted"] for r in rows} <= set(CLASSES)
    assert read_log(str(run))["region_id"] == [r["region_id"] for r in rows]
    with pytest.raises(Exception, match="already holds a query"):
        run_query(str(run), str(tmp_path / "q1"), 3, QueryConfig(), labeled=str(labeled), executor="local")
    s2 = run_query(str(run), str(tmp_path / "q2"), 10, QueryConfig(strategy="prototype", k=2), labeled=str(labeled),
                   executor="local")
    log = read_log(str(run))["region_id"]
    assert s2["proposed"] == 5 and s2["already_taken"] == 3 and len(set(log)) == 8 == len(log)
    tasks = json.loads((tmp_path / "q2" / "labelstudio_tasks.json").read_text())
    with open(tmp_path / "q2" / "queries.csv") as fh:
        second = list(csv.DictReader(fh))
    assert [t["data"]["region_id"] for t in tasks] == [r["region_id"] for r in second] == log[3:]
    assert all(r["strategy"] == "prototype" for r in second)
