"""Session fixtures (a pytest plugin of tests/conftest.py): a finished fine-tune with a final fit
on real pbc11 crops, and its exported bundle.

Built once per session (one Ray Train run per fold plus the final fit, tiny ViT at 32 px), then
shared by the export, predict and serve tests.
"""

from __future__ import annotations

import pytest

from activessf.config import build_config

CLASSES = ("BA", "EO", "LY", "SNE")
TINY = [
    "model.name=vit_tiny_patch16_224", "model.img_size=32", "model.patch_size=8", "model.encoder_kwargs={depth: 2}",
    "optim.epochs=2", "optim.warmup_epochs=0", "optim.batch_size=8", "optim.blr=0.01", "aug.randaug_ops=0",
    "train.n_folds=2", "train.num_workers=1", "train.cpus_per_worker=0.5", "train.final_fit=true",
    "train.method_name=vit-tiny",
]


@pytest.fixture(scope="session")
def labeled_crops(tmp_path_factory, shared_data):
    """An ImageFolder of 6 real pbc11 cells for each of 4 classes (symlinks)."""
    root = tmp_path_factory.mktemp("labeled")
    for name in CLASSES:
        (root / name).mkdir()
        for p in sorted((shared_data / "pbc11" / "labeled" / name).glob("*.jpg"))[:6]:
            (root / name / p.name).symlink_to(p)
    return root


@pytest.fixture(scope="session")
def finished_run(tmp_path_factory, labeled_crops, ray_session):
    """A fine-tune folder with 2 folds and the final fit (``final/model.safetensors``)."""
    from activessf.stages.finetune import run_finetune
    from activessf.finetune.config import FinetuneConfig

    out = tmp_path_factory.mktemp("ft") / "vit"
    paths = run_finetune(str(labeled_crops), str(out), build_config(FinetuneConfig, None, TINY))
    assert paths["completed"]
    return out


@pytest.fixture(scope="session")
def bundle(tmp_path_factory, finished_run):
    """The run's final model exported as a bundle folder."""
    from activessf.inference.export import export_bundle

    out = tmp_path_factory.mktemp("bundle") / "model"
    export_bundle(str(finished_run), str(out))
    return out
