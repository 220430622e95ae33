"""``activessf features --source labeled``: trains its backbone with ``--train-on`` first, and
without a trained backbone fails with a one-line usage error, before any work."""

import json

import pyarrow.parquet as pq

from activessf.cli import main
from activessf.data import SAMPLE_LABELED
from tests.images import small_labeled


def test_labeled_source_without_a_backbone_is_a_usage_error(tmp_path, capsys):
    out = tmp_path / "f"
    assert main(["features", "--input", str(SAMPLE_LABELED), "--labeled", "--output", str(out),
                 "--source", "labeled"]) == 2
    assert "--train-on" in capsys.readouterr().err
    assert not out.exists()


def test_train_on_trains_then_featurizes(tmp_path):
    labeled, out = str(small_labeled(tmp_path / "labeled", per_class=3)), tmp_path / "f"
    args = ["features", "--input", labeled, "--labeled", "--output", str(out), "--source", "labeled",
            "--train-on", labeled, "--local", "--set", "backbone=resnet10t", "--set", "labeled.epochs=1",
            "--set", "labeled.img_size=32", "--set", "device=cpu"]
    assert main(args) == 0
    assert (out / "feature_backbone" / "final" / "model.safetensors").is_file()
    meta = json.loads(pq.read_schema(out / "features.parquet").metadata[b"activessf"])
    assert meta["source"] == "labeled" and meta["weights"].endswith("model.safetensors") and meta["warning"] is None
