"""The Ray Tune layer of a sweep: the trial function, the search space, the Tuner and its rows.

The driver (``activessf.pipeline.sweep``) runs the shared stages once (regions, features of
labeled and pool crops) and writes one folds file; every trial reads that file, so all trials are
scored on the same five folds (folds are never a search dimension). A trial is a Tune function:

* ``cheap``: selection, a short in-process pretraining and a frozen-feature probe per fold
  (``activessf.sweep.objective``), for CPU-scale sweeps;
* ``full``: selection, Ray Train pretraining, then one ``TorchTrainer`` fine-tuning run per
  fold (the Train V2 pattern: a Tune driver function that builds trainers, never
  ``Tuner(trainer)``).

Both report the running CV mean after each fold with ``folds_done`` as ASHA's time attribute.
The experiment is named ``sweep.name`` under ``sweep.storage_path``; rerunning the command
restores it (``Tuner.restore``): finished trials keep their results, unfinished or failed
ones run again. With ``tracking.enabled`` (the default) Ray Tune's own ``MLflowLoggerCallback``
logs each trial as an MLflow run (``<output>/mlruns`` unless ``tracking.tracking_uri``).
"""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np
import ray
from ray import tune

from activessf.config import build_config
from activessf.evaluation.folds import folds_digest, read_folds
from activessf.finetune.config import FinetuneConfig
from activessf.io import fs as afs
from activessf.io.items import crop_items
from activessf.pretrain.config import PretrainConfig
from activessf.selection.config import SelectionConfig
from activessf.sweep.config import SweepConfig, as_overrides
from activessf.sweep.results import sort_rows
from activessf.sweep.state_digest import record as record_state, verify as verify_state
from activessf.tracking import Tracker, TrackingConfig

# Test-only fault injection: the first trial to start fails once (exercises restore).
FAIL_ONE_ENV = "ACTIVESSF_TEST_FAIL_ONE_TRIAL"


def trial_configs(sweep_yaml: str, overrides: list[str], params: dict[str, Any]) -> tuple:
    """The trial's selection, pretrain and finetune configs: base YAML, ``--set``, then params."""
    sets = list(overrides) + as_overrides(params)
    return (build_config(SelectionConfig, sweep_yaml, sets, section="selection"),
            build_config(PretrainConfig, sweep_yaml, sets, section="pretrain"),
            build_config(FinetuneConfig, sweep_yaml, sets, section="finetune"))


def _attempt(trial_dir: str, trial_id: str, fail_one: bool) -> None:
    """Count the trial's attempts in its folder; with ``fail_one`` the first trial to start fails once.

    ``fail_one`` is a test-only fault (``FAIL_ONE_ENV``, read by the driver), not a config field.
    """
    afs.makedirs(trial_dir)
    with open(os.path.join(trial_dir, "attempts.txt"), "a") as fh:
        fh.write("attempt\n")
    if not fail_one:
        return
    try:
        # O_EXCL: exactly one trial of the experiment wins the marker, even with concurrent trials.
        os.close(os.open(os.path.join(os.path.dirname(trial_dir), ".debug_failed"), os.O_CREAT | os.O_EXCL))
    except FileExistsError:
        return
    raise RuntimeError(f"{FAIL_ONE_ENV}: trial {trial_id} fails its first attempt")


def sweep_trial(params: dict[str, Any], ctx: dict[str, Any]) -> None:
    """Tune function: score one point of the space on every fold, reporting after each fold."""
    from activessf.sweep.objective import cheap_objective

    sweep: SweepConfig = ctx["sweep"]
    trial_id = tune.get_context().get_trial_id()
    trial_dir = os.path.join(ctx["output"], "trials", trial_id)
    afs.makedirs(trial_dir)
    with open(os.path.join(trial_dir, "params.json"), "w") as fh:
        fh.write(json.dumps({k: params.get(k) for k in sweep.parsed_space()}, sort_keys=True))
    _attempt(trial_dir, trial_id, ctx.get("fail_one", False))
    sel, pre, ft = trial_configs(ctx["yaml"], ctx["overrides"], params)
    shared, folds = ctx["shared"], read_folds(ctx["shared"]["folds_path"])
    digest = folds_digest(folds)
    labeled = crop_items(shared["labeled_crops"], labeled=True)
    if sweep.objective == "cheap":
        out = cheap_objective(shared["features_labeled"], shared["features_pool"], labeled, folds, trial_dir, sel, pre,
                              sweep.probe)
        scores = [f[sweep.metric] for f in out["report"]["folds"]]
        for k in range(1, len(scores) + 1):
            _report(sweep.metric, scores[:k], digest, out["n_selected"])
        return
    # The full objective is stage-level work (selection, pretraining and fine-tuning stages), so
    # the driver hands it in (``activessf.pipeline.sweep_full``) rather than this layer importing it.
    ctx["full_objective"](shared, labeled, folds, trial_dir, trial_id, sel, pre, ft,
                   lambda scores, n_sel: _report(sweep.metric, scores, digest, n_sel), sweep.metric)


def _report(metric: str, scores: list[float], digest: str, n_selected: int) -> None:
    tune.report({"cv_mean": float(np.mean(scores)), "cv_std": float(np.std(scores, ddof=1)) if len(scores) > 1 else 0.0,
                 "folds_done": len(scores), "folds_digest": digest, "n_selected": n_selected, "metric": metric})


def search_space(sweep: SweepConfig) -> dict[str, Any]:
    make = {"uniform": lambda a: tune.uniform(*a), "loguniform": lambda a: tune.loguniform(*a),
            "randint": lambda a: tune.randint(int(a[0]), int(a[1])), "choice": tune.choice, "grid": tune.grid_search}
    grid = sweep.search == "grid"
    return {k: (tune.grid_search(a) if grid else make[d](a)) for k, (d, a) in sweep.parsed_space().items()}


def _concurrency(sweep: SweepConfig, ft: FinetuneConfig) -> int:
    if sweep.max_concurrent_trials is not None:
        return sweep.max_concurrent_trials
    total = ray.cluster_resources()
    if sweep.gpus_per_trial > 0:
        return max(1, int(total.get("GPU", 0) // sweep.gpus_per_trial))
    per = sweep.cpus_per_trial if sweep.objective == "cheap" else ft.train.num_workers * ft.train.cpus_per_worker
    return max(1, int(total.get("CPU", 1) // max(per, 1e-9)))


def make_search(sweep: SweepConfig, concurrency: int):
    """Tune search algorithm of ``sweep.search``: Optuna (TPE), Tune's random sampler, or None (grid)."""
    if sweep.search == "optuna":
        try:
            from ray.tune.search.optuna import OptunaSearch
        except ImportError as exc:
            raise RuntimeError("sweep.search=optuna needs optuna: pip install 'activessf[optuna]'") from exc
        return OptunaSearch(seed=sweep.seed)
    if sweep.search == "random":
        # Tune applies max_concurrent_trials only to Searchers; the basic generator takes its own.
        return tune.search.BasicVariantGenerator(random_state=sweep.seed, max_concurrent=concurrency)
    return None


def _mlflow_callbacks(cfg: TrackingConfig, out: str) -> list:
    """Ray Tune's own MLflow logger: one MLflow run per trial (its params, every reported result).

    The experiment is created first with its artifact folder inside the sweep output (MLflow
    would otherwise put artifacts under the current directory).
    """
    if not cfg.enabled or afs.is_remote(out):
        return []
    from ray.air.integrations.mlflow import MLflowLoggerCallback

    tracker = Tracker(cfg, out)
    return [MLflowLoggerCallback(tracking_uri=tracker.uri, experiment_name=cfg.experiment,
                                 tags={"activessf.stage": "sweep_trial"})]


def _tuner(sweep: SweepConfig, trainable, storage: str, n_folds: int, concurrency: int, out: str,
           callbacks: list | None = None) -> tune.Tuner:
    """A new Tuner, or the stored experiment restored (finished trials keep their results).

    Restoring unpickles Tune's state files, so only state whose signed digests this tool
    recorded in ``out`` is restored (``state_digest.verify`` raises otherwise).
    """
    path = afs.join(storage, sweep.name)
    if tune.Tuner.can_restore(path):
        if afs.is_remote(path):
            print(f"sweep: {path} is on object storage; its state files are not digest-checked", flush=True)
        else:
            verify_state(path, out)
        print(f"sweep: restoring {path} (finished trials are not rerun)", flush=True)
        return tune.Tuner.restore(path, trainable, resume_unfinished=True, restart_errored=True)
    search = make_search(sweep, concurrency)
    scheduler = None
    if sweep.asha:
        scheduler = tune.schedulers.ASHAScheduler(time_attr="folds_done", max_t=n_folds,
                                                  grace_period=sweep.asha_grace_folds, reduction_factor=2)
    cfg = tune.TuneConfig(metric="cv_mean", mode="max", num_samples=1 if sweep.search == "grid" else sweep.num_samples,
                          search_alg=search, scheduler=scheduler,
                          max_concurrent_trials=None if sweep.search == "random" else concurrency)
    run = tune.RunConfig(name=sweep.name, storage_path=storage, verbose=1, callbacks=callbacks or [])
    return tune.Tuner(trainable, param_space=search_space(sweep), tune_config=cfg, run_config=run)


def _trial_ids(out: str) -> dict[str, str]:
    """``params`` (JSON) -> trial id, from the ``params.json`` each trial writes in its folder."""
    root = os.path.join(out, "trials")
    ids = {}
    # Oldest first, so a trial restarted under a new id (restore of a failed one) wins.
    names = sorted(os.listdir(root), key=lambda n: os.path.getmtime(os.path.join(root, n))) if os.path.isdir(root) else []
    for name in names:
        path = os.path.join(root, name, "params.json")
        if os.path.exists(path):
            ids[open(path).read()] = name
    return ids


def _rows(grid, params: list[str], n_folds: int, out: str) -> list[dict]:
    ids, rows = _trial_ids(out), []
    for result in grid:
        m = result.metrics or {}
        # STOPPED: ended early by ASHA (scored on fewer folds).
        status = "ERROR" if result.error else ("DONE" if m.get("folds_done", 0) >= n_folds else "STOPPED")
        chosen = {p: result.config.get(p) for p in params}
        rows.append({"trial_id": ids.get(json.dumps(chosen, sort_keys=True), m.get("trial_id", "?")),
                     "params": chosen, "mean": m.get("cv_mean"),
                     "std": m.get("cv_std"), "folds_done": m.get("folds_done", 0), "n_selected": m.get("n_selected"),
                     "folds_digest": m.get("folds_digest"), "status": status})
    return sort_rows(rows)


def tune_sweep(sweep: SweepConfig, ctx: dict[str, Any], ft: FinetuneConfig, tracking: TrackingConfig) -> list[dict]:
    """Run (or restore) the Tune experiment and return one row per trial, best first.

    Args:
        sweep: The sweep section.
        ctx: What every trial reads: ``sweep``, ``yaml``, ``overrides``, ``output``, ``shared``
            (paths of the shared stages' outputs and the folds file) and ``full_objective`` (the
            function a ``full`` trial runs).
        ft: The fine-tuning config (folds and per-trial resources).
        tracking: MLflow settings (one MLflow run per trial via Ray's ``MLflowLoggerCallback``).
    """
    out = ctx["output"]
    ctx = ctx | {"fail_one": os.environ.get(FAIL_ONE_ENV) == "1"}
    # A full trial only drives its trainers (which request their own CPUs/GPUs); Tune needs a
    # non-empty bundle, so it gets a sliver of a CPU.
    resources = ({"cpu": sweep.cpus_per_trial, "gpu": sweep.gpus_per_trial} if sweep.objective == "cheap"
                 else {"cpu": 0.01})
    trainable = tune.with_resources(tune.with_parameters(sweep_trial, ctx=ctx), resources)
    storage = sweep.storage_path or afs.join(out, "tune")
    tuner = _tuner(sweep, trainable, storage, ft.train.n_folds, _concurrency(sweep, ft), out,
                   _mlflow_callbacks(tracking, out))
    try:
        grid = tuner.fit()
    finally:
        # Finished, failed or interrupted: Tune has saved its state; sign what it wrote.
        if not afs.is_remote(storage) and os.path.isdir(afs.join(storage, sweep.name)):
            record_state(afs.join(storage, sweep.name), out)
    return _rows(grid, list(sweep.parsed_space()), ft.train.n_folds, out)
