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


def test_ray_matches_local_on_a_whole_slide(bundle, shared_data, tmp_path, ray_session):
    """A pyramidal TIFF of real smears through the Ray path (slides planned into tiles, tiles cut by
    CPU tasks, classified by the actor pool, merged per slide on the driver): the local loop's cells
    and probabilities, every known white cell once, a broken slide a rejected row."""
    from tests.slides.builders import bccd_slide
    from tests.slides.test_slides_stage import matches

    folder = tmp_path / "in"
    folder.mkdir()
    known = bccd_slide(folder / "smear.tif", shared_data, margin=1024)
    (folder / "junk.svs").write_text("not a slide\n")
    cfg = PredictConfig(chunk_size=4)
    local = run_predict(str(folder), str(bundle), str(tmp_path / "local"), cfg, executor="local")
    on_ray = run_predict(str(folder), str(bundle), str(tmp_path / "ray"), cfg, executor="ray")
    assert on_ray["inputs"] == 2 and on_ray["rejected"] == 1 and on_ray["cells"] == local["cells"] > len(known)
    ray_pred, local_pred = (pq.read_table(tmp_path / run / "predictions.parquet").to_pandas()
                            .sort_values("region_id", ignore_index=True) for run in ("ray", "local"))
    assert ray_pred.region_id.is_unique and ray_pred.equals(local_pred)
    assert matches(known, ray_pred[ray_pred.kind == "nucleated"]).tolist() == [1] * len(known)
    man = pq.read_table(tmp_path / "ray" / "manifest.parquet").to_pandas().set_index("source_path")
    assert "not a readable slide" in man.loc[str(folder / "junk.svs")].reason
    assert man.loc[str(folder / "smear.tif")].n_cells == len(ray_pred)
    assert (tmp_path / "ray" / "summary.csv").read_text() == (tmp_path / "local" / "summary.csv").read_text()
