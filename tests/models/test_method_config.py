"""Each method's own config section: defaults, registry, only the chosen module imported,
invalid values named by their full path, sections of other methods checked and kept."""

import sys

import pytest
import yaml

from activessf.config import ConfigError, build_config, from_dict, to_dict
from activessf.models.registry import METHOD_MODULES, available_methods, method_config_class
from activessf.pretrain.config import PretrainConfig


def test_methods_registered_and_paper_defaults():
    assert {"convmae", "mae", "mixmim", "mocov3"} <= set(available_methods())  # tests may add more
    moco = method_config_class("mocov3")()
    assert (moco.temperature, moco.momentum, moco.proj_dim, moco.proj_hidden_dim) == (0.2, 0.99, 256, 4096)
    # BYOL / MoCo v3 views: jitter 0.4/0.4/0.2/0.1 at p 0.8, grayscale 0.2, blur 1.0/0.1, solarize 0/0.2.
    assert (moco.color_jitter, moco.color_jitter_p, moco.grayscale_p) == ([0.4, 0.4, 0.2, 0.1], 0.8, 0.2)
    assert (moco.blur_p, moco.blur_sigma, moco.solarize_p, moco.solarize_threshold) == ([1.0, 0.1], [0.1, 2.0], [0.0, 0.2], 128)
    conv = method_config_class("convmae")()
    assert (conv.dims, conv.depths, conv.heads, conv.mask_ratio) == ([256, 384, 768], [2, 2, 11], 12, 0.75)
    mix = method_config_class("mixmim")()
    assert (mix.mix_ratio, mix.decoder.dim, mix.decoder.depth, mix.decoder.heads) == (0.5, 512, 8, 16)


def test_config_holds_only_the_chosen_section_and_round_trips(tmp_path):
    cfg = build_config(PretrainConfig, None, ["model.method=mocov3", "model.mocov3.temperature=0.1"])
    assert set(cfg.model.sections) == {"mocov3"} and cfg.model.params.temperature == 0.1
    tree = to_dict(cfg)
    assert tree["model"]["mocov3"]["temperature"] == 0.1 and "sections" not in tree["model"]
    assert tree["model"]["mocov3"]["blur_p"] == [1.0, 0.1]  # the saved config shows every value
    again = from_dict(PretrainConfig, yaml.safe_load(yaml.safe_dump(tree)))
    assert to_dict(again) == tree


def test_another_methods_section_is_checked_and_kept():
    cfg = build_config(PretrainConfig, None, ["model.method=mocov3", "model.mae.decoder.dim=64"])
    assert cfg.model.sections["mae"].decoder.dim == 64 and cfg.model.params.proj_dim == 256
    with pytest.raises(ConfigError, match=r"model\.mae\.mask_ratio: must be in \[0, 1\)"):
        build_config(PretrainConfig, None, ["model.method=mocov3", "model.mae.mask_ratio=1.5"])


def test_building_a_config_imports_only_the_chosen_method(monkeypatch):
    import activessf.models
    import activessf.models.registry as registry

    # As in a fresh process: no method registered or imported (all restored afterwards).
    monkeypatch.setattr(registry, "_METHODS", {})
    for module in METHOD_MODULES.values():
        monkeypatch.delitem(sys.modules, module, raising=False)
        monkeypatch.delattr(activessf.models, module.rsplit(".", 1)[1], raising=False)
    cfg = build_config(PretrainConfig, None, ["model.method=mocov3"])
    assert [m for m in sorted(METHOD_MODULES.values()) if m in sys.modules] == ["activessf.models.mocov3"]
    assert list(registry._METHODS) == ["mocov3"] and cfg.model.params.temperature == 0.2


@pytest.mark.parametrize(
    "overrides, field",
    [
        (["model.method=mocov3", "model.mocov3.temperature=0"], "model.mocov3.temperature"),
        (["model.mocov3.momentum=1.5"], "model.mocov3.momentum"),
        (["model.mocov3.proj_dim=0"], "model.mocov3.proj_dim"),
        (["model.mocov3.color_jitter=[0.4, 0.4, 0.2]"], "model.mocov3.color_jitter"),
        (["model.mocov3.blur_p=[1.0, 1.5]"], "model.mocov3.blur_p"),
        (["model.mocov3.solarize_threshold=300"], "model.mocov3.solarize_threshold"),
        (["model.mocov3.nope=1"], "model.mocov3.nope"),
        (["model.convmae.dims=[8, 16]"], "model.convmae.dims"),
        (["model.convmae.depths=[1, 0, 2]"], "model.convmae.depths"),
        (["model.convmae.heads=5"], "model.convmae.heads"),
        (["model.convmae.decoder.dim=30", "model.convmae.decoder.heads=2"], "model.convmae.decoder.dim"),
        (["model.method=convmae", "model.img_size=36", "model.patch_size=6"], "model.patch_size"),
        (["model.method=convmae", "model.img_size=40"], "model.img_size"),
        (["model.mixmim.mix_ratio=1.0"], "model.mixmim.mix_ratio"),
        (["model.nomethod.x=1"], "model.nomethod"),
    ],
)
def test_invalid_method_fields_are_named(overrides, field):
    with pytest.raises(ConfigError, match=field.replace(".", r"\.")):
        build_config(PretrainConfig, None, overrides)
