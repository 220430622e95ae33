"""Pipeline config resolution: sections, arms, derived fine-tuning of pretrained encoders."""

from __future__ import annotations

import pytest
import yaml

from activessf.config import ConfigError
from activessf.pipeline.config import ArmConfig, PipelineConfig
from activessf.pipeline.plan import build_plan
from tests.conftest import PROJECT_ROOT


def _yaml(tmp_path, tree: dict) -> str:
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(tree))
    return str(path)


def test_demo_and_pipeline_configs_resolve():
    # The demo trains the method's arm and the supervised baseline; the paper recipe also the ablation.
    expected = {"demo.yaml": (["MAE w/ selection", "ResNet18 (supervised)"], {"pretrain_selected"}),
                "pipeline.yaml": (["MAE w/ selection", "MAE w/o selection"], {"pretrain_selected", "pretrain_all"})}
    for name, (arms, pretrains) in expected.items():
        plan = build_plan(str(PROJECT_ROOT / "configs" / name))
        assert [a.name for a, _, _ in plan.arms.values()][:2] == arms
        assert set(plan.pretrains) == pretrains


def test_pretrained_arm_finetunes_the_exported_encoder(tmp_path):
    tree = {"pipeline": {"output": str(tmp_path / "run"), "arms": [{"name": "A", "pretrain": "selected"},
                                                                    {"name": "B", "pretrain": "none"}]},
            "pretrain": {"model": {"encoder": "vit_tiny_patch16_224", "patch_size": 8, "encoder_kwargs": {"depth": 2}}},
            "finetune": {"model": {"name": "vit_small_patch16_224"}}}
    plan = build_plan(_yaml(tmp_path, tree), ["finetune.optim.epochs=3"])
    _, folder, a = plan.arms["a"]
    assert folder == "pretrain_selected" and plan.pretrains[folder][0] == "selection"
    assert a.model.name == "vit_tiny_patch16_224" and a.model.patch_size == 8 and a.model.encoder_kwargs == {"depth": 2}
    assert a.model.init == str(tmp_path / "run" / "pretrain_selected" / "encoder.safetensors")
    assert a.optim.epochs == 3 and a.train.method_name == "A" and a.train.run_name == "a"
    _, none_folder, b = plan.arms["b"]
    assert none_folder is None and b.model.name == "vit_small_patch16_224" and b.model.init == "none"


def test_arms_with_other_pretrain_overrides_get_their_own_pretraining(tmp_path):
    arms = [{"name": "mae", "pretrain": "selected"},
            {"name": "moco", "pretrain": "selected", "pretrain_overrides": ["model.method=mocov3"]}]
    plan = build_plan(_yaml(tmp_path, {"pipeline": {"arms": arms}}))
    methods = {f: cfg.model.method for f, (_, cfg) in plan.pretrains.items()}
    assert len(methods) == 2 and sorted(methods.values()) == ["mae", "mocov3"]


@pytest.mark.parametrize("override, field", [
    ("finetune.optim.epochs=-1", "optim.epochs"),
    ("pipeline.labeled_regions=some", "labeled_regions"),
    ("pretrain.model.mae.mask_ratio=2", "model.mae.mask_ratio"),
    ("pretrain.model.mocov3.temperature=0", "model.mocov3.temperature"),
    ("selection.k=0", "k"),
])
def test_bad_config_anywhere_fails_before_work(override, field):
    with pytest.raises(ConfigError, match=field.replace(".", r"\.")):
        build_plan(None, [override])


def test_bad_arm_override_names_the_field(tmp_path):
    arms = [{"name": "x", "pretrain": "none", "finetune_overrides": ["optim.nonexistent=1"]}]
    with pytest.raises(ConfigError, match="nonexistent"):
        build_plan(_yaml(tmp_path, {"pipeline": {"arms": arms}}))


def test_arm_names_must_give_distinct_folders():
    with pytest.raises(ConfigError, match="pipeline.arms"):
        PipelineConfig(arms=[ArmConfig("MAE w/ sel"), ArmConfig("mae-w-sel")])
    with pytest.raises(ConfigError, match="pretrain_overrides"):
        ArmConfig("sup", "none", pretrain_overrides=["model.method=mae"])
