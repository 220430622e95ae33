"""The cheap sweep objective pretrains every trial for the same optimizer steps (pipeline budget rule)."""

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from activessf.config import build_config
from activessf.io.markers import write_marker
from activessf.pretrain.config import PretrainConfig
from activessf.selection.config import SelectionConfig
from activessf.sweep import objective
from activessf.sweep.config import ProbeConfig


class _Stop(Exception):
    pass


@pytest.mark.parametrize("n_selected, epochs", [(1600, 16), (4000, 6), (640, 38)])
def test_trial_epochs_spend_the_pool_budget(tmp_path, monkeypatch, n_selected, epochs):
    (tmp_path / "pool").mkdir()
    pq.write_table(pa.table({"id": [f"u{i}" for i in range(4000)]}), tmp_path / "pool" / "features.parquet")

    def fake_select(lab, unl, out, cfg):  # a selection of n_selected crops, as the stage writes it
        ids = [f"u{i}" for i in range(4000)]
        (tmp_path / "trial" / "selection").mkdir(parents=True)
        pq.write_table(pa.table({"id": ids, "path": ids, "selected": [i < n_selected for i in range(4000)]}),
                       f"{out}/selection.parquet")
        write_marker(out, "select", "fp", {})

    seen = {}

    def fake_pretrain(images, cfg):
        seen["epochs"], seen["warmup"], seen["n"] = cfg.optim.epochs, cfg.optim.warmup_epochs, len(images)
        raise _Stop

    monkeypatch.setattr(objective, "run_select", fake_select)
    monkeypatch.setattr(objective, "load_images", lambda paths, size: np.zeros((len(paths), 1)))
    monkeypatch.setattr(objective, "pretrain_in_process", fake_pretrain)
    pre = build_config(PretrainConfig, None, ["optim.epochs=6", "optim.warmup_epochs=1", "optim.batch_size=64"])
    with pytest.raises(_Stop):
        objective.cheap_objective("lab", str(tmp_path / "pool"), pa.table({}), pa.table({}), str(tmp_path / "trial"),
                                  SelectionConfig(), pre, ProbeConfig())
    # 6 epochs x ceil(4000 / 64) = 378 steps for every trial; a trial on n crops runs
    # ceil(378 / ceil(n / 64)) epochs, its warm-up scaled alike.
    assert seen == {"epochs": epochs, "warmup": pytest.approx(epochs / 6), "n": n_selected}
