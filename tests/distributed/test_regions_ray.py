"""The region stage on Ray Data: bad inputs mixed with good ones lose nothing."""

import pyarrow.parquet as pq

from activessf.config import build_config
from activessf.stages.regions import run_regions
from activessf.regions.config import RegionsConfig
from tests.images import write_mixed_folder


def test_ray_stage_bad_inputs_reconcile(tmp_path, shared_data, ray_session):
    good = sorted((shared_data / "pbc11" / "unlabeled").glob("*.jpg"))[:9]
    folder = tmp_path / "in"
    expected = write_mixed_folder(folder, good)
    out = tmp_path / "out"
    cfg = build_config(RegionsConfig, None, ["crop_size=48", "batch_size=4"])
    summary = run_regions(str(folder), str(out), cfg, executor="ray")
    manifest = pq.read_table(out / "manifest.parquet").to_pylist()
    assert summary.inputs == len(expected) == len(manifest)
    assert summary.inputs == summary.ok + summary.rejected
    by_name = {r["source_path"].split("/")[-1]: r for r in manifest}
    assert set(by_name) == set(expected)
    for name, (status, reason) in expected.items():
        assert by_name[name]["status"] == status and reason in by_name[name]["reason"], name
    assert summary.rejected == 4
    regions = pq.read_table(out / "regions.parquet")
    assert regions.num_rows == sum(r["n_regions"] for r in manifest) > 0
    assert all((out / p).exists() for p in regions["crop_path"].to_pylist())
