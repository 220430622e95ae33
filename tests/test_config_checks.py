"""Values that used to pass validation and fail mid-run (or never) now fail up front, naming the field."""

import math

import pytest

from activessf.config import ConfigError, build_config
from activessf.finetune.config import FinetuneConfig
from activessf.pretrain.config import PretrainConfig
from activessf.regions.config import RegionsConfig
from activessf.selection.config import SelectionConfig


@pytest.mark.parametrize("cls, section, sets, field", [
    (RegionsConfig, "regions", ["seed=-1"], "seed"),
    (RegionsConfig, "regions", ["crop_margin=.inf"], "crop_margin"),
    (RegionsConfig, "regions", ["crop_margin=.nan"], "crop_margin"),
    (RegionsConfig, "regions", ["concurrency=-1"], "concurrency"),
    (SelectionConfig, "selection", ["alpha=.inf"], "alpha"),
    (SelectionConfig, "selection", ["seed=-1"], "seed"),
    (PretrainConfig, "pretrain", ["train.seed=-1"], "train.seed"),
    (PretrainConfig, "pretrain", ["model.encoder=vit_tiny_patch16_224", "model.img_size=65"], "model.img_size"),
    (PretrainConfig, "pretrain", ["init_checkpoint=/no/such/ckpt.pt"], "init_checkpoint"),
    (FinetuneConfig, "finetune", ["model.name=vit_tiny_patch16_224", "model.img_size=65"], "model.img_size"),
    (FinetuneConfig, "finetune", ["model.init=/no/such/encoder.safetensors"], "model.init"),
])
def test_bad_value_fails_naming_the_field(cls, section, sets, field):
    with pytest.raises(ConfigError, match=rf"^{field}: "):
        build_config(cls, None, sets, section=section)


def test_direct_construction_is_checked_too():
    with pytest.raises(ConfigError, match="crop_margin"):
        RegionsConfig(crop_margin=math.inf)
    with pytest.raises(ConfigError, match="selection.alpha"):
        SelectionConfig(alpha=math.inf)


def test_patch_multiple_and_existing_init_pass(tmp_path):
    enc = tmp_path / "enc.safetensors"
    enc.write_bytes(b"")
    cfg = build_config(FinetuneConfig, None, ["model.name=vit_tiny_patch16_224", "model.img_size=64",
                                              f"model.init={enc}"], section="finetune")
    assert cfg.model.init == str(enc)
    # A CNN has no patch size: any side goes.
    assert build_config(FinetuneConfig, None, ["model.name=resnet18", "model.img_size=65"]).model.img_size == 65


def test_pipeline_accepts_the_encoder_its_pretraining_will_write(tmp_path):
    from activessf.pipeline.plan import build_plan

    plan = build_plan("configs/demo.yaml", [f"pipeline.output={tmp_path / 'run'}"])
    # Arms that pretrain start from the encoder their pretraining stage will write (not yet there).
    inits = [cfg.model.init for arm, _, cfg in plan.arms.values() if arm.pretrain != "none"]
    assert inits and all(i.endswith("encoder.safetensors") for i in inits)
