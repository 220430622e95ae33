"""``activessf predict`` on a whole slide, in this process: the region stage's cells, each classified once.

The classifier is a stand-in (a fixed function of each crop's mean colour) so the test needs no
trained model: what is under test is the slide path (tiles planned and cut with the bundle's
region config, classified per tile, merged per slide), not the model.
"""

import numpy as np
import pyarrow.parquet as pq
import pytest

from activessf.config import to_dict
from activessf.inference import slides as slides_mod
from activessf.stages import predict as predict_mod
from activessf.stages.predict import run_predict
from activessf.stages.regions import run_regions
from activessf.inference import batches
from activessf.inference.config import PredictConfig
from tests.slides.builders import bccd_slide
from tests.slides.test_slides_stage import matches, slide_config

CLASSES = ["dark", "light"]


class MeanColourClassifier:
    """Stands in for ``CellClassifier``: P(dark) is the crop's darkness."""

    def __init__(self, folder, runtime="auto", threads=1, use_gpu=False, batch_size=64):
        self.meta = META

    def probabilities(self, crops: np.ndarray) -> np.ndarray:
        dark = 1.0 - crops.reshape(len(crops), 32 * 32 * 3).mean(axis=1) / 255.0
        return np.stack([dark, 1.0 - dark], axis=1).astype(np.float32)


META = {"classes": CLASSES, "files": {"model": "stand-in"}, "input": {"size": 32, "mean": [0.5] * 3, "std": [0.5] * 3},
        "regions": to_dict(slide_config())}


@pytest.fixture
def stand_in(monkeypatch, tmp_path):
    monkeypatch.setattr(batches, "CellClassifier", MeanColourClassifier)
    monkeypatch.setattr(predict_mod, "read_meta", lambda folder: META)
    monkeypatch.setattr(slides_mod, "read_meta", lambda folder: META)
    model = tmp_path / "model"
    model.mkdir()
    return model


def test_predict_on_a_slide_matches_the_region_stage(stand_in, tmp_path, shared_data):
    folder = tmp_path / "in"
    folder.mkdir()
    known = bccd_slide(folder / "smear.tif", shared_data, margin=1024)
    (folder / "junk.ndpi").write_text("not a slide\n")
    out = tmp_path / "pred"
    s = run_predict(str(folder), str(stand_in), str(out), PredictConfig(chunk_size=2), executor="local")
    man = pq.read_table(out / "manifest.parquet").to_pandas().set_index("source_path")
    pred = pq.read_table(out / "predictions.parquet").to_pandas()
    slide = man.loc[str(folder / "smear.tif")]
    assert s["inputs"] == 2 and s["ok"] == 1 and "not a readable slide" in man.loc[str(folder / "junk.ndpi")].reason
    assert slide.width == 3968 and len(pred) == slide.n_cells == s["cells"] > 0 and pred.region_id.is_unique
    np.testing.assert_allclose(pred[[f"p_{c}" for c in CLASSES]].to_numpy().sum(1), 1.0, atol=1e-5)
    assert matches(known, pred[pred.kind == "nucleated"]).tolist() == [1] * len(known)
    # The same cells, in level-0 pixels, as the region stage cuts with the bundle's region config.
    run_regions(str(folder), str(tmp_path / "regions"), slide_config(), executor="local")
    reg = pq.read_table(tmp_path / "regions" / "regions.parquet").to_pandas()
    key = ["x", "y", "w", "h", "kind"]
    assert sorted(map(tuple, pred[key].to_numpy().tolist())) == sorted(map(tuple, reg[key].to_numpy().tolist()))
    assert any((out / "contact_sheets").glob("*.png"))  # cut from windows of the slide, never decoded whole
    # A rerun is skipped whole.
    again = run_predict(str(folder), str(stand_in), str(out), PredictConfig(chunk_size=2), executor="local")
    assert again["cells"] == s["cells"]
