"""``activessf sweep``: Ray Tune over the selection (and any pretrain / finetune field) on saved folds.

The shared data stages of the pipeline (regions, labeled crops, feature backbone, features) run
once into ``sweep.shared_output``; one folds file is written (the folds stage); the trials then
run on Ray Tune (``activessf.distributed.sweep``), and the results, the best trial's YAML and a
plot are written. Rerunning the command restores the experiment: finished trials keep their
results, unfinished or failed ones run again.
"""

from __future__ import annotations

import json
import os
from typing import Any

from activessf.config import build_config
from activessf.distributed.runtime import ensure_ray
from activessf.distributed.sweep import trial_configs, tune_sweep
from activessf.evaluation.folds import folds_digest
from activessf.io import fs as afs
from activessf.pipeline.plan import Plan, build_plan
from activessf.pipeline.run import StateLog, run_stage, stages
from activessf.pipeline.sweep_full import full_objective
from activessf.stages.folds import run_folds
from activessf.sweep.config import SweepConfig, example_values
from activessf.sweep.results import write_best_yaml, write_results

SHARED_STAGES = ("regions_pool", "regions_labeled", "labeled_crops", "feature_backbone", "features_labeled", "features_pool")


def prepare_shared(plan: Plan, folds_path: str) -> dict[str, Any]:
    """Run the shared data stages once and write the sweep's folds; what every trial reads."""
    log, fps = StateLog(plan.root), {}
    todo = [st for st in stages(plan, log) if st.name in SHARED_STAGES]
    for i, st in enumerate(todo, 1):
        run_stage(st, fps, log, f"[shared {i}/{len(todo)}] {st.name}")
    ft = plan.first_finetune().train
    folds = run_folds(plan.labeled_crops(), folds_path, ft.n_folds, ft.folds_seed)
    return {"features_labeled": plan.path("features_labeled"), "features_pool": plan.path("features_pool"),
            "labeled_crops": plan.labeled_crops(), "folds_path": folds_path, "folds_digest": folds_digest(folds)}


def run_sweep(sweep_yaml: str, overrides: list[str] | None = None) -> dict[str, Any]:
    """Run (or resume) the sweep described by ``sweep_yaml``; write results, best YAML and plot.

    Args:
        sweep_yaml: Pipeline YAML with a ``sweep`` section.
        overrides: ``section.key=value`` strings (as for ``activessf run``).

    Returns:
        ``rows`` (one per trial, best first), ``best`` (row or None), ``paths`` and ``folds_digest``.
    """
    overrides = list(overrides or [])
    sweep = build_config(SweepConfig, sweep_yaml, overrides, section="sweep")
    out = sweep.output if "://" in sweep.output else os.path.abspath(sweep.output)
    shared_dir = sweep.shared_output or afs.join(out, "shared")
    plan = build_plan(sweep_yaml, overrides + [f"pipeline.output={json.dumps(shared_dir)}"])
    for values in example_values(sweep.parsed_space()):
        trial_configs(sweep_yaml, overrides, values)  # fail fast on a value no config accepts
    ensure_ray()
    shared = prepare_shared(plan, afs.join(out, "folds.parquet"))
    ft = trial_configs(sweep_yaml, overrides, {})[2]
    ctx = {"sweep": sweep, "yaml": os.path.abspath(sweep_yaml), "overrides": overrides, "output": out, "shared": shared,
           "full_objective": full_objective}
    rows = tune_sweep(sweep, ctx, ft, plan.tracking)
    params = list(sweep.parsed_space())
    paths = {"json": afs.join(out, "results.json"), "md": afs.join(out, "results.md"), "png": afs.join(out, "objective.png")}
    write_results(paths, rows, params, sweep.metric)
    best = next((r for r in rows if r["status"] == "DONE" and r["mean"] is not None), None)
    if best is not None:
        paths["best"] = write_best_yaml(afs.join(out, "best.yaml"), sweep_yaml, best, sweep.metric, afs.join(out, "best_run"))
    return {"rows": rows, "best": best, "paths": paths, "folds_digest": shared["folds_digest"]}
