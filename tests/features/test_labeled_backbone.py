"""``features.source: labeled`` without Ray: the short supervised backbone trained on real pbc11
crops embeds them far better than the random backbone the selection used to run on."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.neighbors import KNeighborsClassifier

from activessf.config import build_config
from activessf.features.backbone import FeatureExtractor
from activessf.features.config import FeaturesConfig
from activessf.features.labeled import backbone_finetune_config, train_local
from activessf.pretrain.images import load_images

CLASSES = ("EO", "LY", "PLATELET", "SNE")
SETS = ["backbone=resnet10t", "labeled.img_size=48", "labeled.epochs=10", "labeled.batch_size=16", "labeled.lr=0.003"]


@pytest.fixture(scope="module")
def crops(shared_data):
    """20 real pbc11 cells per class: 14 to train the backbone, 6 held out."""
    root = shared_data / "pbc11" / "labeled"
    train, test = [], []
    for y, cls in enumerate(CLASSES):
        files = sorted((root / cls).glob("*.jpg"))[:20]
        train += [(str(f), y) for f in files[:14]]
        test += [(str(f), y) for f in files[14:]]
    return train, test


def _knn_accuracy(cfg: FeaturesConfig, train, test) -> float:
    fx = FeatureExtractor(cfg)
    embed = lambda rows: fx({"image": load_images([p for p, _ in rows], 48)})["feature"]  # noqa: E731
    knn = KNeighborsClassifier(n_neighbors=3, metric="cosine").fit(embed(train), [y for _, y in train])
    return float((knn.predict(embed(test)) == np.asarray([y for _, y in test])).mean())


def test_recipe_is_a_class_balanced_scratch_fit():
    ft = backbone_finetune_config(build_config(FeaturesConfig, None, SETS))
    assert (ft.model.name, ft.model.init, ft.model.img_size) == ("resnet10t", "none", 48)
    assert ft.optim.class_balance == "sampling" and ft.optim.layer_decay is None and ft.optim.lr == 0.003


def test_labeled_backbone_features_beat_random_ones(tmp_path, crops):
    from safetensors.torch import save_file

    train, test = crops
    cfg = build_config(FeaturesConfig, None, SETS + ["source=labeled", "device=cpu"])
    run = train_local([p for p, _ in train], [y for _, y in train], len(CLASSES), backbone_finetune_config(cfg))
    assert run.history[-1]["loss"] < run.history[0]["loss"]
    weights = tmp_path / "model.safetensors"
    save_file({k: v.contiguous() for k, v in run.model.items()}, str(weights))
    trained = _knn_accuracy(build_config(FeaturesConfig, None, SETS + ["source=labeled", f"weights={weights}",
                                                                       "device=cpu"]), train, test)
    random = _knn_accuracy(build_config(FeaturesConfig, None, SETS + ["source=random", "img_size=48",
                                                                      "device=cpu"]), train, test)
    # Held-out cells (never trained on), 4 classes: chance is 0.25.
    assert trained >= random + 0.15, (trained, random)
