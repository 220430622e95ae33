"""``activessf predict`` in-process: real smears and cell crops, every input accounted for, resumable."""

import json

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from activessf.stages import predict as predict_mod
from activessf.stages.predict import run_predict
from activessf.inference.bundle import load_bundle
from activessf.inference.cells import normalize
from activessf.inference.config import PredictConfig
from activessf.pretrain.images import load_image
from tests.trained import CLASSES


@pytest.fixture(scope="module")
def smears(tmp_path_factory, shared_data):
    """5 real BCCD smear fields and one broken file."""
    root = tmp_path_factory.mktemp("smears")
    for p in sorted((shared_data / "bccd" / "JPEGImages").glob("*.jpg"))[:5]:
        (root / p.name).symlink_to(p)
    (root / "broken.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    return root


def _pred(out):
    return pq.read_table(out / "predictions.parquet").to_pandas()


def test_cells_of_smears(smears, bundle, tmp_path):
    out = tmp_path / "p"
    s = run_predict(str(smears), str(bundle), str(out), PredictConfig(chunk_size=2), executor="local")
    man = pq.read_table(out / "manifest.parquet").to_pandas()
    assert s["inputs"] == len(man) == 6 and s["ok"] == 5 and s["rejected"] == 1
    assert man.loc[man.source_path.str.endswith("broken.jpg"), "reason"].item()
    pred = _pred(out)
    assert len(pred) == s["cells"] == man.n_cells.sum() > 0
    probs = pred[[f"p_{c}" for c in CLASSES]].to_numpy()
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-5)
    assert (pred.predicted == np.array(CLASSES)[probs.argmax(1)]).all()
    assert (pred.low_confidence == (pred.confidence < 0.5)).all() and pred.region_id.is_unique
    summary = (out / "summary.csv").read_text().splitlines()
    assert len(summary) == 1 + 6 + 1 and summary[-1].startswith(f"ALL,6 inputs,{len(pred)},")
    counts = summary[-1].split(",")[4:4 + len(CLASSES)]
    assert [int(n) for n in counts] == [int((pred.predicted == c).sum()) for c in CLASSES]
    sheets = sorted(p.stem for p in (out / "contact_sheets").glob("*.png"))
    assert sheets == sorted(set(pred.predicted))


def test_crops_mode_matches_the_model(bundle, labeled_crops, tmp_path):
    out = tmp_path / "c"
    run_predict(str(labeled_crops), str(bundle), str(out), PredictConfig(mode="crops"), executor="local")
    pred = _pred(out).sort_values("source_path")
    assert len(pred) == 24 and (pred.kind == "crop").all()
    b = load_bundle(str(bundle))
    x = np.stack([load_image(p, b.size) for p in pred.source_path])
    with torch.no_grad():
        ref = b.model(torch.from_numpy(normalize(x, b.meta["input"]["mean"], b.meta["input"]["std"]))).numpy()
    assert np.abs(pred[[f"p_{c}" for c in CLASSES]].to_numpy() - ref).max() <= 1e-4


def test_rerun_skips_and_an_interrupted_run_resumes(smears, bundle, tmp_path, monkeypatch):
    cfg = PredictConfig(chunk_size=2)
    fresh = tmp_path / "fresh"
    run_predict(str(smears), str(bundle), str(fresh), cfg, executor="local")
    out, real_write, calls = tmp_path / "cut", predict_mod.write_part, []

    def write_then_die(*args):
        real_write(*args)
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(predict_mod, "write_part", write_then_die)
    with pytest.raises(KeyboardInterrupt):
        run_predict(str(smears), str(bundle), str(out), cfg, executor="local")
    assert not (out / "_SUCCESS.json").exists() and not (out / "predictions.parquet").exists()
    monkeypatch.setattr(predict_mod, "write_part", real_write)
    resumed = run_predict(str(smears), str(bundle), str(out), cfg, executor="local")
    assert resumed["skipped"] == 4 and resumed["inputs"] == 6
    # Identical predictions, whatever was done in which attempt.
    assert _pred(out).equals(_pred(fresh))
    again = run_predict(str(smears), str(bundle), str(out), cfg, executor="local")
    assert again["cells"] == resumed["cells"] and json.loads((out / "_SUCCESS.json").read_text())


def test_another_bundle_never_reuses_parts(smears, bundle, finished_run, tmp_path):
    from activessf.inference.export import export_bundle

    out = tmp_path / "p"
    run_predict(str(smears), str(bundle), str(out), PredictConfig(), executor="local")
    ens = tmp_path / "ens"
    export_bundle(str(finished_run), str(ens), ensemble=True)
    s = run_predict(str(smears), str(ens), str(out), PredictConfig(), executor="local")
    assert s["skipped"] == 0 and len(list((out / "parts").iterdir())) == 1
