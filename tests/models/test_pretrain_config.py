"""PretrainConfig: MAE defaults, YAML + overrides, LR scaling, validation naming the field."""

from pathlib import Path

import pytest
import yaml

from activessf.config import ConfigError, build_config, save_config
from activessf.pretrain.config import PretrainConfig


def test_defaults_are_the_mae_recipe():
    cfg = PretrainConfig()
    mae = cfg.model.params
    assert cfg.model.encoder == "vit_base_patch16_224" and mae.mask_ratio == 0.75 and mae.norm_pix_loss
    assert (mae.decoder.dim, mae.decoder.depth, mae.decoder.heads, mae.decoder.mlp_ratio) == (512, 8, 16, 4.0)
    assert cfg.optim.betas == [0.9, 0.95] and cfg.optim.weight_decay == 0.05
    assert (cfg.optim.warmup_epochs, cfg.optim.epochs, cfg.optim.batch_size) == (5, 400, 64)
    assert cfg.resolved_lr() == pytest.approx(1e-3 * 64 / 256)


def test_yaml_overrides_and_effective_batch(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump({"pretrain": {"optim": {"batch_size": 32, "accum_steps": 2}}}))
    cfg = build_config(PretrainConfig, path, ["pretrain.train.num_workers=4", "model.encoder_kwargs={depth: 2}"], section="pretrain")
    assert cfg.effective_batch() == 32 * 4 * 2
    assert cfg.resolved_lr() == pytest.approx(1e-3 * 256 / 256)
    assert cfg.model.encoder_kwargs == {"depth": 2}
    assert build_config(PretrainConfig, None, ["optim.lr=0.01"]).resolved_lr() == 0.01
    saved = yaml.safe_load(Path(save_config(cfg, tmp_path)).read_text())
    assert saved["optim"]["accum_steps"] == 2


@pytest.mark.parametrize(
    "override, field",
    [
        ("model.patch_size=10", "model.patch_size"),
        ("model.mae.mask_ratio=1.0", "model.mae.mask_ratio"),
        ("model.mae.decoder.heads=5", "model.mae.decoder.heads"),
        ("model.mae.decoder={dim: 6, heads: 2}", "model.mae.decoder.dim"),
        ("model.mae.decoder.depth=0", "model.mae.decoder.depth"),
        ("model.encoder_kwargs={num_classes: 3}", "model.encoder_kwargs"),
        ("aug.crop_scale=[0.5, 0.2]", "aug.crop_scale"),
        ("optim.betas=[0.9]", "optim.betas"),
        ("optim.accum_steps=0", "optim.accum_steps"),
        ("optim.warmup_epochs=-1", "optim.warmup_epochs"),
        ("aug.std=[0.2, 0.2, 0]", "aug.std"),
        ("train.num_workers=0", "train.num_workers"),
        ("train.checkpoint_every=0", "train.checkpoint_every"),
        ("train.run_name=a/b", "train.run_name"),
        ("train.precision=fp8", "train.precision"),
        ("optim.nope=1", "optim.nope"),
    ],
)
def test_invalid_fields_are_named(override, field):
    with pytest.raises(ConfigError, match=field.replace(".", r"\.")):
        build_config(PretrainConfig, None, [override])
