"""Whole slides on Ray Data: tile tasks spread over workers find every known cell once."""

import shutil

import pyarrow.parquet as pq

from activessf.stages.regions import run_regions
from tests.slides.test_slides_stage import check_slide_outputs, slide_config, slide_folder  # noqa: F401


def test_ray_slide_stage_matches_known_cells(slide_folder, tmp_path, ray_session):  # noqa: F811
    root, known = slide_folder
    (tmp_path / "in").mkdir()
    shutil.copy(root / "smear.tif", tmp_path / "in" / "smear.tif")
    shutil.copy(root / "junk.svs", tmp_path / "in" / "junk.svs")
    # Two tiles per batch: the slide's tiles spread over several tasks (and both CPUs).
    cfg = slide_config(tiles_per_batch=2)
    summary = run_regions(str(tmp_path / "in"), str(tmp_path / "out"), cfg, executor="ray")
    man = check_slide_outputs(tmp_path / "out", known, cfg)
    assert summary.inputs == 2 and summary.ok == 1
    junk = man.loc[str(tmp_path / "in" / "junk.svs")]
    assert junk.status == "rejected" and "not a readable slide" in junk.reason
    regions = pq.read_table(tmp_path / "out" / "regions.parquet")
    assert regions.num_rows == summary.regions == int(man.n_regions.sum())
