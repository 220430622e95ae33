"""``activessf predict`` on Ray Data (cutting tasks + a classifier actor) gives what the local loop gives."""

import pyarrow.parquet as pq

from activessf.stages.predict import run_predict
from activessf.inference.config import PredictConfig


def test_ray_matches_local(bundle, shared_data, tmp_path, ray_session):
    smears = tmp_path / "in"
    smears.mkdir()
    for p in sorted((shared_data / "bccd" / "JPEGImages").glob("*.jpg"))[5:11]:
        (smears / p.name).symlink_to(p)
    (smears / "empty.png").write_bytes(b"")
    cfg = PredictConfig(chunk_size=2)
    local = run_predict(str(smears), str(bundle), str(tmp_path / "local"), cfg, executor="local")
    on_ray = run_predict(str(smears), str(bundle), str(tmp_path / "ray"), cfg, executor="ray")
    assert on_ray["inputs"] == 7 and on_ray["rejected"] == 1 and on_ray["cells"] == local["cells"] > 0
    for name in ("predictions.parquet", "manifest.parquet"):
        assert pq.read_table(tmp_path / "ray" / name).equals(pq.read_table(tmp_path / "local" / name))
    assert (tmp_path / "ray" / "summary.csv").read_text() == (tmp_path / "local" / "summary.csv").read_text()
