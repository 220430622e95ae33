"""Method-specific config fields: defaults, every method registered, invalid values named."""

import pytest

from activessf.config import ConfigError, build_config
from activessf.models.registry import available_methods
from activessf.pretrain.config import PretrainConfig


def test_methods_registered_and_paper_defaults():
    assert {"convmae", "mae", "mixmim", "mocov3"} <= set(available_methods())  # tests may add more
    m = PretrainConfig().model
    assert (m.moco_temperature, m.moco_momentum, m.proj_dim, m.proj_hidden_dim) == (0.2, 0.99, 256, 4096)
    assert (m.convmae_dims, m.convmae_depths, m.convmae_heads, m.mix_ratio) == ([256, 384, 768], [2, 2, 11], 12, 0.5)


@pytest.mark.parametrize(
    "overrides, field",
    [
        (["model.moco_temperature=0"], "model.moco_temperature"),
        (["model.moco_momentum=1.5"], "model.moco_momentum"),
        (["model.proj_dim=0"], "model.proj_dim"),
        (["model.convmae_dims=[8, 16]"], "model.convmae_dims"),
        (["model.convmae_depths=[1, 0, 2]"], "model.convmae_depths"),
        (["model.convmae_heads=5"], "model.convmae_heads"),
        (["model.method=convmae", "model.img_size=36", "model.patch_size=6"], "model.patch_size"),
        (["model.method=convmae", "model.img_size=40"], "model.img_size"),
        (["model.mix_ratio=1.0"], "model.mix_ratio"),
    ],
)
def test_invalid_method_fields_are_named(overrides, field):
    with pytest.raises(ConfigError, match=field.replace(".", r"\.")):
        build_config(PretrainConfig, None, overrides)
