from dataclasses import dataclass, field
from typing import Literal

from pathlib import Path

import pytest
import yaml

from activessf.config import ConfigError, build_config, from_dict, parse_override, require, save_config
from activessf.features.config import FeaturesConfig
from activessf.finetune.config import FinetuneConfig
from activessf.pretrain.config import PretrainConfig
from activessf.regions.config import RegionsConfig
from activessf.selection.config import SelectionConfig
from tests.conftest import PROJECT_ROOT


@dataclass
class Inner:
    rate: float = 0.5
    names: list[str] = field(default_factory=list)


@dataclass
class Outer:
    mode: Literal["a", "b"] = "a"
    n: int = 3
    flag: bool = False
    maybe: int | None = None
    inner: Inner = field(default_factory=Inner)

    def __post_init__(self):
        require(self.n > 0, "n", "must be > 0")


def test_overrides_parse_yaml_scalars():
    assert parse_override("a.b=1") == ("a.b", 1)
    assert parse_override("x=0.25") == ("x", 0.25)
    assert parse_override("flag=true") == ("flag", True)
    assert parse_override("l=[1, 2]") == ("l", [1, 2])
    with pytest.raises(ConfigError, match="key=value"):
        parse_override("novalue")


def test_yaml_then_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("n: 5\ninner:\n  rate: 1\n")
    cfg = build_config(Outer, path, ["inner.names=[x]", "maybe=4", "mode=b"])
    assert cfg.n == 5 and cfg.inner.rate == 1.0 and isinstance(cfg.inner.rate, float)
    assert cfg.inner.names == ["x"] and cfg.maybe == 4 and cfg.mode == "b"


@pytest.mark.parametrize(
    "overrides,field_name",
    [
        (["nope=1"], "nope"),
        (["inner.nope=1"], "inner.nope"),
        (["n=abc"], "n"),
        (["n=1.5"], "n"),
        (["flag=3"], "flag"),
        (["mode=c"], "mode"),
        (["inner.rate=fast"], "inner.rate"),
        (["n=0"], "n"),
    ],
)
def test_bad_fields_are_named(overrides, field_name):
    with pytest.raises(ConfigError) as err:
        build_config(Outer, None, overrides)
    assert field_name in str(err.value)


def test_section_of_pipeline_yaml(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("regions:\n  preset: paper\nfeatures:\n  x: 1\n")
    cfg = build_config(RegionsConfig, path, ["regions.crop_size=64"], section="regions")
    assert cfg.preset == "paper" and cfg.crop_size == 64


def test_misspelled_section_of_pipeline_yaml_fails_naming_it(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("regoins:\n  seed: 3\nfeatures:\n  seed: 1\n")
    with pytest.raises(ConfigError, match=r"unknown section\(s\) regoins"):
        build_config(RegionsConfig, path, section="regions")


def test_other_sections_overrides_are_skipped_but_typos_fail():
    cfg = build_config(RegionsConfig, None, ["features.backbone=resnet18", "regions.seed=3"], section="regions")
    assert cfg.seed == 3
    with pytest.raises(ConfigError, match="regoins"):
        build_config(RegionsConfig, None, ["regoins.seed=3"], section="regions")


def test_saved_config_round_trips(tmp_path):
    cfg = build_config(RegionsConfig, None, ["preset=paper", "paper.min_box_w=40"])
    path = Path(save_config(cfg, tmp_path))
    again = from_dict(RegionsConfig, yaml.safe_load(path.read_text()))
    assert again == cfg


@pytest.mark.parametrize(
    "name,cls",
    [
        ("regions", RegionsConfig),
        ("features", FeaturesConfig),
        ("selection", SelectionConfig),
        ("pretrain", PretrainConfig),
        ("finetune", FinetuneConfig),
    ],
)
def test_shipped_yaml_defaults_match_dataclass_defaults(name, cls):
    assert build_config(cls, PROJECT_ROOT / "configs" / f"{name}.yaml") == cls()
