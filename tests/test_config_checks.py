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
    # The shared run / AdamW / view parts name the field under the stage that holds them.
    (FinetuneConfig, "finetune", ["train.keep_checkpoints=0"], "train.keep_checkpoints"),
    (FinetuneConfig, "finetune", ["optim.min_lr=-1"], "optim.min_lr"),
    (FinetuneConfig, "finetune", ["aug.hflip=2"], "aug.hflip"),
    (PretrainConfig, "pretrain", ["train.stop_after_epochs=0"], "train.stop_after_epochs"),
    (PretrainConfig, "pretrain", ["optim.clip_grad=0"], "optim.clip_grad"),
    (PretrainConfig, "pretrain", ["aug.mean=[0.5]"], "aug.mean"),
])
def test_bad_value_fails_naming_the_field(cls, section, sets, field):
    with pytest.raises(ConfigError, match=rf"^{field}: "):
        build_config(cls, None, sets, section=section)


def test_direct_construction_is_checked_too():
    with pytest.raises(ConfigError, match="crop_margin"):
        RegionsConfig(crop_margin=math.inf)
    with pytest.raises(ConfigError, match="selection.alpha"):
        SelectionConfig(alpha=math.inf)


def test_shared_parts_keep_each_stages_defaults():
    pre, ft = PretrainConfig(), FinetuneConfig()
    assert (pre.optim.betas, pre.optim.epochs, ft.optim.betas, ft.optim.epochs) == ([0.9, 0.95], 400, [0.9, 0.999], 50)
    assert (pre.optim.min_lr, ft.optim.min_lr, pre.aug.crop_scale, ft.aug.crop_scale) == (0.0, 1e-6, [0.2, 1.0], [0.5, 1.0])
    assert (pre.train.keep_checkpoints, ft.train.keep_checkpoints, pre.train.run_name, ft.train.run_name) == (
        2, 1, "pretrain", "finetune")
    with pytest.raises(ConfigError, match=r"^optim\.batch_size: must be >= 2"):  # the stage's own, stricter rule
        build_config(FinetuneConfig, None, ["optim.batch_size=1"])


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


def test_pipeline_finetunes_each_encoder_as_its_descriptor_says(tmp_path):
    """A timm encoder is fine-tuned as that timm model; a ConvMAE one is rebuilt from encoder.json,
    so only its init is set (the plan and the sweep share ``EncoderDescriptor.finetune_model``)."""
    import yaml

    from activessf.pipeline.plan import build_plan

    small = {"dims": [8, 16, 32], "depths": [1, 1, 2], "heads": 2, "decoder": {"dim": 32, "depth": 1, "heads": 2}}
    tree = {"pipeline": {"output": str(tmp_path / "run"), "arms": [
                {"name": "MAE", "pretrain": "selected"},
                {"name": "ConvMAE", "pretrain": "selected", "pretrain_overrides": ["model.method=convmae"]}]},
            "pretrain": {"model": {"encoder": "vit_tiny_patch16_224", "img_size": 32, "patch_size": 8,
                                   "encoder_kwargs": {"depth": 2}, "convmae": small}},
            "finetune": {"model": {"name": "vit_small_patch16_224", "img_size": 32}}}
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(tree))
    plan = build_plan(str(path))
    mae, conv = plan.arms["mae"], plan.arms["convmae"]
    assert plan.pretrains[conv.pretrain][1].model.encoder_descriptor().builder == "convmae"
    assert (mae.finetune.model.name, mae.finetune.model.patch_size, mae.finetune.model.encoder_kwargs) == (
        "vit_tiny_patch16_224", 8, {"depth": 2})
    assert conv.finetune.model.name == "vit_small_patch16_224"  # the section's; the descriptor builds it
    assert conv.finetune.model.init == str(tmp_path / "run" / conv.pretrain / "encoder.safetensors")
