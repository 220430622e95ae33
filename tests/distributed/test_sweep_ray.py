"""Real sweeps on a small real subset: identical folds, restore, a best YAML that runs; the full
objective. Both tests read one set of shared stages (regions, features), as sweeps over one
dataset do with ``sweep.shared_output``."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml

from activessf.distributed.sweep import FAIL_ONE_ENV
from activessf.pipeline.plan import build_plan
from activessf.pipeline.sweep import run_sweep
from activessf.sweep.state_digest import UntrustedStateError
from tests.jobs.test_job_submit import _tiny_inputs


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict[str, Path]:
    """Tiny labeled set and pool, and the folder of the shared stages both sweeps reuse."""
    root = tmp_path_factory.mktemp("sweep_inputs")
    labeled, pool = _tiny_inputs(root)
    return {"labeled": labeled, "pool": pool, "shared": root / "shared"}


def _sweep_yaml(root: Path, inputs: dict[str, Path]) -> Path:
    tree = yaml.safe_load((Path(__file__).parents[2] / "configs" / "sweep.yaml").read_text())
    tree["sweep"].update(name="t", output=str(root / "sweep"), num_samples=3,
                         shared_output=str(inputs["shared"]),
                         space={"selection.alpha": {"uniform": [0.25, 2.0]}, "selection.k": {"choice": [2, 4]}})
    tree["pipeline"].update(labeled=str(inputs["labeled"]), unlabeled=str(inputs["pool"]))
    tree["features"]["source"] = "random"  # the labeled backbone has its own tests
    tree["pretrain"]["model"].update(img_size=32, encoder_kwargs={"depth": 2})
    tree["pretrain"]["optim"].update(epochs=1, warmup_epochs=0)
    tree["finetune"]["train"]["n_folds"] = 3
    path = root / "sweep.yaml"
    path.write_text(yaml.safe_dump(tree))
    return path


def _attempts(out: Path) -> dict[str, int]:
    """Attempts per point of the space (a failed trial may be restarted under a new trial id)."""
    counts: dict[str, int] = {}
    for d in (out / "trials").iterdir():
        if d.is_dir():
            key = (d / "params.json").read_text()
            counts[key] = counts.get(key, 0) + (d / "attempts.txt").read_text().count("\n")
    return counts


def _key(row: dict) -> str:
    return json.dumps(row["params"], sort_keys=True)


def _assert_trials_tracked(out, rows):
    """Ray Tune's MLflow callback logged each trial (the failed attempt too) with its CV mean."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{out}/mlruns/mlflow.db")
    runs = client.search_runs([client.get_experiment_by_name("activessf").experiment_id])
    done = [r for r in runs if r.info.status == "FINISHED"]
    assert len(runs) == len(rows) + 1 and len(done) == len(rows)
    assert sorted(r.data.metrics["cv_mean"] for r in done) == pytest.approx(sorted(r["mean"] for r in rows))


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_cheap_sweep_restores_and_writes_a_runnable_best(ray_session, tmp_path, inputs, monkeypatch):
    monkeypatch.setenv("ACTIVESSF_STATE_KEY_FILE", str(tmp_path / "state_key"))
    monkeypatch.setenv(FAIL_ONE_ENV, "1")  # the first trial to start fails once (test-only fault)
    config = _sweep_yaml(tmp_path, inputs)
    first = run_sweep(str(config))
    status = {_key(r): r["status"] for r in first["rows"]}
    assert sorted(status.values()) == ["DONE", "DONE", "ERROR"], first["rows"]
    failed = next(k for k, s in status.items() if s == "ERROR")
    assert _attempts(tmp_path / "sweep") == dict.fromkeys(status, 1)

    # A tampered tuner.pkl (what Tune unpickles on restore) is refused, naming it; nothing ran.
    tuner_pkl = tmp_path / "sweep" / "tune" / "t" / "tuner.pkl"
    original = tuner_pkl.read_bytes()
    tuner_pkl.write_bytes(original + b"tampered")
    with pytest.raises(UntrustedStateError, match=r"tuner\.pkl was changed"):
        run_sweep(str(config))
    tuner_pkl.write_bytes(original)
    assert _attempts(tmp_path / "sweep") == dict.fromkeys(status, 1)

    second = run_sweep(str(config))
    rows = second["rows"]
    assert {_key(r) for r in rows} == set(status) and all(r["status"] == "DONE" for r in rows), rows
    # Finished trials were not rerun; only the failed one ran again.
    assert _attempts(tmp_path / "sweep") == {k: (2 if k == failed else 1) for k in status}
    # Every trial was scored on the sweep's one folds file, all 3 folds.
    assert {r["folds_digest"] for r in rows} == {second["folds_digest"]} and {r["folds_done"] for r in rows} == {3}
    assert rows[0]["mean"] >= rows[-1]["mean"] and 0.0 <= rows[-1]["mean"] <= 1.0
    _assert_trials_tracked(tmp_path / "sweep", rows)

    best = second["best"]
    plan = build_plan(second["paths"]["best"])
    assert plan.selection.alpha == pytest.approx(best["params"]["selection.alpha"])
    assert plan.selection.k == best["params"]["selection.k"]
    assert plan.pipe.output == str(tmp_path / "sweep" / "best_run") and plan.pipe.labeled.endswith("labeled")
    md = (tmp_path / "sweep" / "results.md").read_text()
    assert md.count("| DONE |") == 3 and os.path.getsize(tmp_path / "sweep" / "objective.png") > 1000


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_full_objective_trial_fine_tunes_every_fold(ray_session, tmp_path, inputs):
    config = _sweep_yaml(tmp_path, inputs)
    tree = yaml.safe_load(config.read_text())
    tree["sweep"].update(objective="full", num_samples=1, asha=True,
                         space={"selection.alpha": {"choice": [1.0]}, "selection.k": {"choice": [4]}})
    tree["finetune"] = {"model": {"img_size": 32}, "optim": {"epochs": 1, "warmup_epochs": 0, "batch_size": 8},
                        "train": {"n_folds": 2}}
    config.write_text(yaml.safe_dump(tree))
    markers = [inputs["shared"] / name / "_SUCCESS.json" for name in ("regions_pool", "features_pool")]
    before = [m.stat().st_mtime_ns if m.exists() else None for m in markers]
    result = run_sweep(str(config))
    # After the cheap sweep (or any earlier one) the shared stages are found done, not recomputed.
    after = [m.stat().st_mtime_ns for m in markers]
    assert all(b is None or b == a for b, a in zip(before, after))
    (row,) = result["rows"]
    assert row["status"] == "DONE" and row["folds_done"] == 2 and 0.0 <= row["mean"] <= 1.0
    trial = tmp_path / "sweep" / "trials" / row["trial_id"]
    assert (trial / "pretrain" / "encoder.safetensors").exists()
    assert sorted(p.name for p in (trial / "finetune").glob("fold_*")) == ["fold_0", "fold_1"]
