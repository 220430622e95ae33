"""activessf query end to end: the trained tiny ViT scores real pbc11 pool images on Ray Data, the
ranking never proposes a cell twice, the outputs match each other, and label import takes the
answers back as a labeled set the pipeline lists."""

import csv
import json
import os

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from activessf.active.config import QueryConfig
from activessf.cli import main
from activessf.io.sources import load_inputs, readable
from tests.trained import CLASSES


@pytest.fixture(scope="module")
def query_run(tmp_path_factory, finished_run, shared_data):
    """A run folder: the fine-tune (metrics.json, final/) and a pool of 10 real pbc11 images as crops."""
    root = tmp_path_factory.mktemp("qrun")
    for name in ("metrics.json", "final"):
        os.symlink(finished_run / name, root / name)
    images = sorted((shared_data / "pbc11" / "unlabeled").glob("*.jpg"))[:10]
    pool = root / "regions_pool"
    pool.mkdir()
    n = len(images)
    pq.write_table(pa.table({
        "region_id": [f"r{i:02d}" for i in range(n)], "image_id": [f"i{i:02d}" for i in range(n)],
        "source_path": [str(p) for p in images], "x": [1] * n, "y": [2] * n, "w": [30] * n, "h": [40] * n,
        "crop_path": [str(p) for p in images]}), pool / "regions.parquet")
    return root


def test_query_then_label_import(query_run, labeled_crops, tmp_path):
    from activessf.stages.query import run_query, score

    q1 = tmp_path / "q1"
    s = run_query(str(query_run), str(q1), 4, QueryConfig(), labeled=str(labeled_crops), executor="ray")
    assert s["proposed"] == 4 and s["pool"] == 10 and s["available"] == 10
    with open(q1 / "queries.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["rank"] for r in rows] == ["1", "2", "3", "4"] and {r["strategy"] for r in rows} == {"default"}
    assert all(os.path.isfile(r["crop_path"]) and r["predicted"] in CLASSES for r in rows)
    tasks = json.loads((q1 / "labelstudio_tasks.json").read_text())
    assert [t["data"]["region_id"] for t in tasks] == [r["region_id"] for r in rows]
    assert tasks[0]["predictions"][0]["result"][0]["value"]["choices"] == [rows[0]["predicted"]]
    xml = (q1 / "labelstudio_config.xml").read_text()
    assert all(f'<Choice value="{c}"/>' in xml for c in [*CLASSES, "not a target cell"])
    assert (q1 / "queries.png").stat().st_size > 0
    # Ray Data and the local loop score alike, in input order.
    paths = [r["crop_path"] for r in rows]
    p_ray, e_ray = score(paths, str(q1 / "model"), QueryConfig(), 32, "ray")
    p_loc, e_loc = score(paths, str(q1 / "model"), QueryConfig(), 32, "local")
    np.testing.assert_allclose(p_ray, p_loc, atol=1e-5)
    assert e_ray.shape == (4, 192) and np.allclose(e_ray, e_loc, atol=1e-4)

    # A second query (local, more than is left) proposes only the 6 cells never queried.
    s2 = run_query(str(query_run), str(tmp_path / "q2"), 50, QueryConfig(strategy="diversity"),
                   labeled=str(labeled_crops), executor="local")
    with open(tmp_path / "q2" / "queries.csv") as fh:
        second = [r["region_id"] for r in csv.DictReader(fh)]
    assert s2["already_taken"] == 4 and len(second) == 6 and not set(second) & {r["region_id"] for r in rows}

    answers = tmp_path / "answers.csv"
    answers.write_text(f"region_id,label\n{rows[0]['region_id']},BA\n{rows[1]['region_id']},not a target cell\n")
    code = main(["label", "import", "--run", str(query_run), "--labels", str(answers),
                 "--output", str(tmp_path / "v1"), "--base", str(labeled_crops)])
    assert code == 0
    table = readable(load_inputs(str(tmp_path / "v1" / "labeled.csv"), labeled=True))
    assert table.num_rows == 6 * len(CLASSES) + 1 and table["label"].to_pylist().count("BA") == 7
