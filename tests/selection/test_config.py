import pytest

from activessf.config import ConfigError, build_config
from activessf.selection import SelectionConfig


def test_defaults_follow_the_paper():
    c = SelectionConfig()
    assert (c.k, c.alpha, c.metric, c.budget) == (11, 1.0, "euclidean", None)
    assert c.lb_quantile is None and c.ub_quantile is None


def test_overrides_and_validation(tmp_path):
    sets = ["selection.alpha=0.5", "selection.metric=cosine"]
    c = build_config(SelectionConfig, overrides=sets, section="selection")
    assert (c.alpha, c.metric) == (0.5, "cosine")
    with pytest.raises(ConfigError, match="selection.alpha"):
        SelectionConfig(alpha=-0.1)
    with pytest.raises(ConfigError, match="selection.lb_quantile"):
        SelectionConfig(lb_quantile=0.9, ub_quantile=0.1)
    with pytest.raises(ConfigError, match="selection.ub_quantile"):
        SelectionConfig(ub_quantile=1.5)
    with pytest.raises(ConfigError, match="metric"):
        build_config(SelectionConfig, overrides=["metric=manhattan"])
    with pytest.raises(ConfigError, match="selection.k"):
        SelectionConfig(k=0)
