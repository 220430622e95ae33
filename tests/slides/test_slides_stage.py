"""The region stage on whole slides, in this process: real BCCD smears tiled from a pyramidal TIFF."""

import shutil

import numpy as np
import pyarrow.parquet as pq
import pytest

from activessf.stages.regions import run_regions
from activessf.regions.config import RegionsConfig
from activessf.slides import tiling
from activessf.slides.reader import open_slide
from tests.slides.builders import bccd_slide

TILE, OVERLAP = 512, 128


def slide_config(**slides) -> RegionsConfig:
    """Half resolution (0.5 um/px on a 0.25 um/px slide: level 1 is read), 512 px tiles."""
    cfg = RegionsConfig(contact_sheet_images=2)
    cfg.slides.tile, cfg.slides.overlap, cfg.slides.mpp = TILE, OVERLAP, 0.5
    for k, v in slides.items():
        setattr(cfg.slides, k, v)
    return cfg


@pytest.fixture(scope="module")
def slide_folder(tmp_path_factory, shared_data):
    """A real-smear slide, a truncated copy of it, a non-slide with a slide name, and one JPEG field."""
    root = tmp_path_factory.mktemp("slides")
    known = bccd_slide(root / "smear.tif", shared_data, margin=1024)
    data = (root / "smear.tif").read_bytes()
    (root / "truncated.tif").write_bytes(data[: len(data) // 3])
    (root / "junk.svs").write_text("not a slide\n")
    shutil.copy(shared_data / "bccd" / "JPEGImages" / "BloodImage_00001.jpg", root / "field.jpg")
    return root, known


def matches(known, regions, iou=0.5):
    """Per known box ``(x0, y0, x1, y1)``: how many region boxes overlap it by ``iou`` or more."""
    boxes = regions[["x", "y", "w", "h"]].to_numpy()
    gt = np.array([[x0, y0, x1 - x0, y1 - y0] for _, (x0, y0, x1, y1) in known])
    return (tiling.box_iou(gt, boxes) >= iou).sum(axis=1)


def check_slide_outputs(out, known, cfg):
    """Every known white cell found once, none twice at tile borders, counts reconcile."""
    man = pq.read_table(out / "manifest.parquet").to_pandas().set_index("source_path")
    reg = pq.read_table(out / "regions.parquet").to_pandas()
    row = man.loc[str(out.parent / "in" / "smear.tif")]
    assert row.status == "ok" and row.width == 3968 and row.height == 3008
    on_slide = reg[reg.image_id == row.image_id]
    assert len(on_slide) == row.n_regions and on_slide.region_id.is_unique
    assert matches(known, on_slide[on_slide.kind == "nucleated"]).tolist() == [1] * len(known)
    pair = tiling.box_iou(on_slide[["x", "y", "w", "h"]].to_numpy(), on_slide[["x", "y", "w", "h"]].to_numpy())
    np.fill_diagonal(pair, 0)
    assert pair.max() < 0.3  # no cell kept twice, at a tile border or anywhere
    # Tiles read + skipped as glass = the whole grid at the working resolution (half of level 0).
    grid = [len(tiling.grid_starts(n // 2, TILE, OVERLAP)) for n in (3968, 3008)]
    assert row.tiles_read + row.tiles_skipped == grid[0] * grid[1] and row.tiles_skipped > 0
    # The test means something: some known cell crosses an inner tile border at working scale.
    xs = tiling.grid_starts(3968 // 2, TILE, OVERLAP)[1:]
    assert any(x0 / 2 < x < x1 / 2 for _, (x0, _, x1, _) in known for x in xs)
    crops = sorted(p.relative_to(out).as_posix() for p in (out / "crops").rglob("*.png"))
    assert crops == sorted(reg.crop_path)  # a crop per kept region, none left of a dropped one
    return man


def test_slide_cells_found_once_and_broken_slides_rejected(slide_folder, tmp_path):
    root, known = slide_folder
    shutil.copytree(root, tmp_path / "in")
    cfg = slide_config()
    summary = run_regions(str(tmp_path / "in"), str(tmp_path / "out"), cfg, executor="local")
    man = check_slide_outputs(tmp_path / "out", known, cfg)
    assert summary.inputs == 4 and summary.ok == 2 and summary.rejected == 2
    for name in ("truncated.tif", "junk.svs"):
        bad = man.loc[str(tmp_path / "in" / name)]
        assert bad.status == "rejected" and "slide" in bad.reason and bad.n_regions == 0
    field = man.loc[str(tmp_path / "in" / "field.jpg")]  # an image beside slides: decoded whole
    assert field.status == "ok" and field.n_regions >= 1 and np.isnan(field.tiles_read)
    assert (tmp_path / "out" / "contact_sheet.png").stat().st_size > 0
    # A rerun with the same inputs and config is skipped.
    assert run_regions(str(tmp_path / "in"), str(tmp_path / "out"), cfg, executor="local") is None


def test_one_slide_path_as_input_and_levels_without_mpp(slide_folder, tmp_path, shared_data):
    """One file as ``--input``; a slide that records no resolution is read at ``slides.level``."""
    path = tmp_path / "in" / "smear.tif"
    path.parent.mkdir()
    known = bccd_slide(path, shared_data, mpp=None, margin=1024)
    slide = open_slide(str(path))
    assert slide.mpp is None and slide.dimensions[1] == (1984, 1504)
    slide.close()
    run_regions(str(path), str(tmp_path / "out"), slide_config(mpp=None, level=1), executor="local")
    man = check_slide_outputs(tmp_path / "out", known, None)
    assert len(man) == 1


def test_reader_pads_outside_the_slide_with_glass(slide_folder):
    root, _ = slide_folder
    slide = open_slide(str(root / "smear.tif"))
    try:
        w, h = slide.dimensions[0]
        window = slide.read(w - 10, h - 10, 0, 20, 20)
        assert window.shape == (20, 20, 3) and (window[10:, :] == 255).all() and (window[:, 10:] == 255).all()
        assert slide.reader == "openslide" and slide.mpp == pytest.approx(0.25)
    finally:
        slide.close()
