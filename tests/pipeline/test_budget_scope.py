"""Equal-step pretraining budget, the random-subset arm, and --until / --only scoping of a run."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from activessf.config import ConfigError, build_config
from activessf.io.items import crop_items
from activessf.io.markers import write_marker
from activessf.pipeline.budget import budget_summary, step_budget, steps_per_epoch, with_step_budget
from activessf.pipeline.plan import build_plan
from activessf.pipeline.run import stages
from activessf.pipeline.scope import scope_stages
from activessf.pretrain.config import PretrainConfig
from activessf.selection.random_subset import run_random_subset

ARMS = [{"name": "MAE w/ selection", "pretrain": "selected"}, {"name": "MAE random subset", "pretrain": "random"},
        {"name": "MAE w/o selection", "pretrain": "all"}, {"name": "ViT", "pretrain": "none"}]
TINY = {"model": {"encoder": "vit_tiny_patch16_224", "img_size": 32, "patch_size": 8, "encoder_kwargs": {"depth": 1}},
        "optim": {"epochs": 6, "warmup_epochs": 1, "batch_size": 64}}


def _plan(tmp_path, **pipeline):
    tree = {"pipeline": {"output": str(tmp_path / "run"), "arms": ARMS, **pipeline}, "pretrain": TINY,
            "finetune": {"model": {"name": "vit_tiny_patch16_224", "img_size": 32, "patch_size": 8,
                                   "encoder_kwargs": {"depth": 1}}}}
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(tree))
    return build_plan(str(path))


def _fake_stage(folder, name, table):
    folder.mkdir(parents=True)
    pq.write_table(table, folder / name)
    write_marker(str(folder), name.split(".")[0], f"fp-{folder.name}", {})


def _fake_pool_and_selection(root, n_pool=4060, n_selected=1624):
    ids = [f"r{i:05d}" for i in range(n_pool)]
    _fake_stage(root / "regions_pool", "regions.parquet", pa.table(
        {"region_id": ids, "crop_path": [f"crops/{i}.png" for i in ids], "label": pa.nulls(n_pool, pa.string())}))
    _fake_stage(root / "selection", "selection.parquet", pa.table(
        {"id": ids, "path": [f"/x/{i}.png" for i in ids], "selected": [i < n_selected for i in range(n_pool)]}))


def test_an_arm_on_fewer_crops_runs_more_epochs_for_the_same_steps():
    cfg = build_config(PretrainConfig, None, ["optim.batch_size=64", "optim.epochs=6", "optim.warmup_epochs=1"])
    assert steps_per_epoch(cfg, 4060) == 64 and steps_per_epoch(cfg, 1624) == 26 and steps_per_epoch(cfg, 1) == 1
    assert step_budget(cfg, 4060) == 6 * 64 and step_budget(cfg, 4060, 1000) == 1000
    sel = with_step_budget(cfg, 1624, 384)
    # ceil(384 / 26) = 15 epochs = 390 steps: at most one epoch above the budget, never below.
    assert sel.optim.epochs == 15 and sel.optim.warmup_epochs == pytest.approx(2.5)
    assert budget_summary(sel, 1624) == {"crops": 1624, "epochs": 15, "steps": 390, "images": 15 * 1624}
    assert cfg.optim.epochs == 6  # the input config is not modified
    with pytest.raises(ValueError):
        with_step_budget(cfg, 0, 384)


def test_every_pretraining_of_a_run_gets_the_pool_budget(tmp_path):
    plan = _plan(tmp_path)
    assert plan.pretrains["pretrain_random"][0] == "random_subset"
    _fake_pool_and_selection(tmp_path / "run")
    summary = run_random_subset(plan.path("selection"), plan.path("random_subset"), seed=0)
    assert summary == {"n_rows": 4060, "n_selected": 1624, "seed": 0}
    steps = {f: budget_summary(plan.pretrain_config(f), n)["steps"]
             for f, n in (("pretrain_selected", 1624), ("pretrain_random", 1624), ("pretrain_all", 4060))}
    assert steps == {"pretrain_selected": 390, "pretrain_random": 390, "pretrain_all": 384}
    assert plan.pretrain_config("pretrain_all").optim.epochs == 6
    # pretrain_budget: epochs is the old rule: the configured epochs whatever the crop count.
    old = _plan(tmp_path / "o", pretrain_budget="epochs")
    assert old.pretrain_config("pretrain_selected").optim.epochs == 6
    with pytest.raises(ConfigError, match="pipeline.pretrain_steps"):
        _plan(tmp_path / "x", pretrain_budget="epochs", pretrain_steps=100)


def test_random_subset_is_seeded_as_large_as_the_selection_and_read_like_one(tmp_path):
    _fake_pool_and_selection(tmp_path, n_pool=200, n_selected=37)
    first = run_random_subset(str(tmp_path / "selection"), str(tmp_path / "rand0"), seed=0)
    items = crop_items(str(tmp_path / "rand0"))
    assert first["n_selected"] == items.num_rows == 37
    again = crop_items(str(tmp_path / "rand0"))["id"].to_pylist()
    run_random_subset(str(tmp_path / "selection"), str(tmp_path / "rand0"), seed=0)  # complete: skipped
    assert crop_items(str(tmp_path / "rand0"))["id"].to_pylist() == again
    run_random_subset(str(tmp_path / "selection"), str(tmp_path / "rand1"), seed=1)
    other = set(crop_items(str(tmp_path / "rand1"))["id"].to_pylist())
    assert len(other) == 37 and other != set(again)
    # Not a copy of the selection (the first 37 ids): drawn from the whole pool.
    assert set(again) != {f"r{i:05d}" for i in range(37)}
    assert set(pq.read_table(tmp_path / "rand0" / "selection.parquet").column_names) == {"id", "path", "selected"}
    with pytest.raises(FileNotFoundError):
        run_random_subset(str(tmp_path / "nothing"), str(tmp_path / "rand2"))


def _names(plan, until=None, only=()):
    return [st.name for st in scope_stages(stages(plan, None), plan, until, only)]


def test_until_stops_after_the_named_stage_or_group(tmp_path):
    plan = _plan(tmp_path)
    every = _names(plan)
    assert every.index("random_subset") < every.index("pretrain_random") and every[-1] == "report"
    assert _names(plan, "selection")[-1] == "selection" == _names(plan, "select")[-1]
    assert "pretrain_selected" not in _names(plan, "selection")
    upto_pre = _names(plan, "pretrain")
    assert {"pretrain_selected", "pretrain_random", "pretrain_all"} <= set(upto_pre)
    assert not any(n.startswith("finetune/") for n in upto_pre)
    assert _names(plan, "features")[-1] == "features_pool"
    assert _names(plan, "finetune")[-1] == "finetune/vit"
    with pytest.raises(ConfigError, match="--until: no stage 'pretrian'.*selection"):
        _names(plan, "pretrian")


def test_only_runs_one_arm_and_what_it_needs(tmp_path):
    plan = _plan(tmp_path)
    names = _names(plan, only=["MAE random subset"])
    assert {"selection", "random_subset", "pretrain_random", "finetune/mae_random_subset"} <= set(names)
    assert not {"pretrain_selected", "pretrain_all", "finetune/vit", "compare", "report"} & set(names)
    sup = _names(plan, only=["vit"])  # by slug; a supervised arm needs no pretraining
    assert "finetune/vit" in sup and not any(n.startswith("pretrain_") or n == "random_subset" for n in sup)
    both = _names(plan, "pretrain", only=["MAE w/ selection"])
    assert both[-1] == "pretrain_selected" and "finetune/mae_w_selection" not in both
    with pytest.raises(ConfigError, match="--only: no arm 'MAE'.*'MAE w/ selection'"):
        _names(plan, only=["MAE"])


def test_the_budget_rule_is_part_of_the_pretraining_stage_key(tmp_path):
    keys = {}
    for mode in ("equal_steps", "epochs"):
        plan = _plan(tmp_path / mode, pretrain_budget=mode)
        st = next(s for s in stages(plan, None) if s.name == "pretrain_selected")
        keys[mode] = json.dumps(st.key, sort_keys=True, default=str)
        assert "regions_pool" in st.upstream
    assert keys["equal_steps"] != keys["epochs"]


def test_run_command_refuses_an_unknown_stage_or_arm_before_any_work(tmp_path, capsys):
    from activessf.cli import main

    out = tmp_path / "run"
    assert main(["run", "--output", str(out), "--until", "pretrian"]) == 2
    err = capsys.readouterr().err
    assert "--until: no stage 'pretrian'" in err and "pretrain_selected" in err
    assert main(["run", "--output", str(out), "--only", "MAE w/ nothing"]) == 2
    assert "'MAE w/ selection'" in capsys.readouterr().err
    assert not out.exists()
