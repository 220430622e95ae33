"""Sweep search algorithms on the real Tune objects, without a cluster: the Optuna searcher takes
the sweep's space and its suggestions become valid pipeline overrides."""

from __future__ import annotations

import pytest
import yaml

from activessf.config import ConfigError
from activessf.distributed.sweep import make_search, search_space
from activessf.sweep.config import SweepConfig, as_overrides

SPACE = {"selection.alpha": {"uniform": [0.25, 2.0]}, "selection.k": {"randint": [4, 9]},
         "selection.ub_quantile": {"choice": [None, 0.9, 0.75]}, "pretrain.optim.blr": {"loguniform": [1e-4, 1e-2]}}


def _suggest(sweep: SweepConfig, n: int) -> list[dict]:
    search = make_search(sweep, concurrency=2)
    assert search.set_search_properties(metric="cv_mean", mode="max", config=search_space(sweep))
    out = []
    for i in range(n):
        params = search.suggest(f"t{i}")
        search.on_trial_complete(f"t{i}", {"cv_mean": params["selection.alpha"]})
        out.append(params)
    return out


def test_optuna_suggestions_stay_in_the_space_and_are_seeded():
    pytest.importorskip("optuna", reason="optuna is in the dev extra; `make test` installs it")
    sweep = SweepConfig(search="optuna", num_samples=6, seed=3, space=SPACE)
    first, again = _suggest(sweep, 6), _suggest(sweep, 6)
    assert first == again
    for p in first:
        assert set(p) == set(SPACE)
        assert 0.25 <= p["selection.alpha"] <= 2.0 and 4 <= p["selection.k"] < 9 and isinstance(p["selection.k"], int)
        assert p["selection.ub_quantile"] in (None, 0.9, 0.75) and 1e-4 <= p["pretrain.optim.blr"] <= 1e-2
        # Each suggestion round-trips through the --set form trials pass to the pipeline.
        assert {o.split("=", 1)[0]: yaml.safe_load(o.split("=", 1)[1]) for o in as_overrides(p)} == p
    assert len({p["selection.alpha"] for p in first}) == 6


def test_optuna_refuses_grid_keys():
    with pytest.raises(ConfigError, match="sweep.search"):
        SweepConfig(search="optuna", space={"selection.k": {"grid": [4, 8]}})
