"""``activessf run``: every stage of ActiveSSF in one run folder, resumable stage by stage.

Stages: regions (pool, and the labeled images when ``labeled_regions``) -> features (labeled,
pool) -> prototypes and selection -> one pretraining per distinct (source, overrides) -> 5-fold
fine-tuning per arm on one shared folds file -> comparison -> (with ``predict_holdout``: export of
the best arm and predict on held-back images) -> report. A stage is skipped when
``pipeline_state.json`` records it finished with the same fingerprint (its config, inputs and
upstream fingerprints), so a rerun after an interruption resumes at the first unfinished stage;
inside a stage, pretraining and fine-tuning resume from their Ray Train checkpoints.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import yaml

from activessf import console, progress
from activessf.config import to_dict
from activessf.features.config import RANDOM_WARNING
from activessf.io import fs as afs
from activessf.io.atomic import atomic_write_text, remove_stale_temps
from activessf.io.markers import fingerprint, read_marker
from activessf.pipeline.holdout import export_best, holdout_input, holdout_key, predict_holdout
from activessf.pipeline.labeled import write_central_crops
from activessf.pipeline.plan import Plan
from activessf.pipeline.scope import scope_stages
from activessf.pipeline.verdict import verdict
from activessf.pipeline.track import PipelineTracking

STATE_FILE = "pipeline_state.json"


class StageStopped(RuntimeError):
    """A stage checkpointed and stopped early (``stop_after_epochs``); rerun to resume."""


@dataclass
class Stage:
    name: str
    describe: str
    # Everything the stage's outputs depend on, besides upstream stages.
    key: Any
    upstream: tuple[str, ...]
    run: Callable[[], dict]
    # Data stages (regions, features, selection) skip themselves by their own fingerprint of
    # inputs and config; they always run, and their marker's fingerprint feeds downstream.
    marker_dir: str | None = None


class StateLog:
    """Finished stages of a run folder: name -> fingerprint, summary, seconds."""

    def __init__(self, root: str):
        self.path = afs.join(root, STATE_FILE)
        self.stages: dict[str, dict] = {}
        if afs.exists(self.path):
            self.stages = json.loads(afs.read_bytes(self.path)).get("stages", {})

    def done(self, name: str, fp: str) -> bool:
        return self.stages.get(name, {}).get("fingerprint") == fp

    def record(self, name: str, fp: str, summary: dict, seconds: float) -> None:
        self.stages[name] = {"fingerprint": fp, "summary": summary, "seconds": round(seconds, 1)}
        atomic_write_text(self.path, json.dumps({"stages": self.stages}, indent=1, default=str))


def _marker_summary(out_dir: str) -> dict:
    """The summary a data stage recorded in its completion marker (also when it skipped itself)."""
    summary = (read_marker(out_dir) or {}).get("summary") or {}
    return {k: v for k, v in summary.items() if isinstance(v, (int, float, str))}


def _regions(plan: Plan, source: str, name: str, labeled: bool) -> dict:
    from activessf.stages.regions import run_regions

    out = plan.path(name)
    run_regions(source, out, plan.regions, labeled=labeled)
    return _marker_summary(out)


def _features(plan: Plan, source: str, name: str, labeled: bool) -> dict:
    from activessf.stages.features import run_features

    out = plan.path(name)
    run_features(source, out, plan.features_config(), labeled=labeled)
    return _marker_summary(out)


def _feature_backbone(plan: Plan) -> dict:
    from activessf.stages.feature_backbone import train_feature_backbone

    out = plan.path("feature_backbone")
    train_feature_backbone(plan.labeled_crops(), out, plan.features)
    return _marker_summary(out)


def _select(plan: Plan) -> dict:
    from activessf.selection.negatives import negatives_beside
    from activessf.selection.stage import run_select

    out = plan.path("selection")
    # A label import's "not a target cell" answers, beside its manifest, keep their look-alikes out.
    run_select(plan.path("features_labeled"), plan.path("features_pool"), out, plan.selection,
               negatives=negatives_beside(plan.labeled_input()))
    report = json.loads(afs.read_bytes(afs.join(out, "report.json")))
    return {k: report[k] for k in ("n_rows", "n_candidates", "n_selected", "k", "alpha") if k in report}


def _random_subset(plan: Plan) -> dict:
    from activessf.selection.random_subset import run_random_subset

    return run_random_subset(plan.path("selection"), plan.path("random_subset"), plan.pipe.random_seed)


def _pretrain(plan: Plan, folder: str) -> dict:
    from activessf.pipeline.budget import budget_summary
    from activessf.stages.pretrain import run_pretrain

    source = plan.pretrains[folder][0]
    cfg = plan.pretrain_config(folder)  # its epochs under the shared step budget
    paths = run_pretrain(plan.path(source), plan.path(folder), cfg)
    if not paths["completed"]:
        raise StageStopped(f"{folder} stopped after epoch {paths['epochs_done']}")
    from activessf.io.items import crop_items

    budget = budget_summary(cfg, crop_items(plan.path(source)).num_rows)
    return {"method": cfg.model.method, "source": source, **budget, "epochs": paths["epochs_done"]}


def _folds(plan: Plan) -> dict:
    from activessf.evaluation.folds import num_folds
    from activessf.stages.folds import run_folds

    ft = plan.first_finetune().train
    folds = run_folds(plan.labeled_crops(), plan.path("folds.parquet"), ft.n_folds, ft.folds_seed, remake=True)
    return {"crops": folds.num_rows, "folds": num_folds(folds)}


def _finetune(plan: Plan, slug: str) -> dict:
    from activessf.stages.finetune import run_finetune

    arm = plan.arms[slug]
    paths = run_finetune(plan.labeled_crops(), plan.path("finetune", slug), arm.finetune,
                         folds_path=plan.path("folds.parquet"))
    if not paths["completed"]:
        raise StageStopped(f"arm {arm.arm.name!r} stopped in fold {paths['stopped_fold']}")
    return {m: paths["report"]["summary"][m] for m in ("accuracy", "macro_pr_auc", "macro_f1")}


def _compare(plan: Plan) -> dict:
    from activessf.evaluation.compare import write_comparison

    runs = [plan.path("finetune", slug) for slug in plan.arms]
    paths = write_comparison(runs, plan.path("compare"), [a.arm.name for a in plan.arms.values()])
    console.log(paths["markdown"])  # the run's summary prints each arm's scores
    return {"markdown": paths["md"]}


def _report(plan: Plan, log: StateLog) -> dict:
    from activessf.pipeline.report import write_report

    return write_report(plan, log.stages)


def stages(plan: Plan, log: StateLog) -> list[Stage]:
    """The run's stages in order, each with what its outputs depend on."""
    p = plan.pipe
    out = [Stage("regions_pool", "Cell Region Filtering of the unlabeled pool", [plan.unlabeled_input(), to_dict(plan.regions)],
                 (), lambda: _regions(plan, plan.unlabeled_input(), "regions_pool", False), plan.path("regions_pool"))]
    up_lab: tuple[str, ...] = ()
    if p.labeled_regions != "none":
        out.append(Stage("regions_labeled", "Cell Region Filtering of the labeled images",
                         [plan.labeled_input(), to_dict(plan.regions)], (),
                         lambda: _regions(plan, plan.labeled_input(), "regions_labeled", True), plan.path("regions_labeled")))
        up_lab = ("regions_labeled",)
    if p.labeled_regions == "central":
        out.append(Stage("labeled_crops", "the central region of each labeled image", [], up_lab,
                         lambda: write_central_crops(plan.path("regions_labeled"), plan.labeled_crops())))
        up_lab = ("labeled_crops",)
    up_feat: tuple[str, ...] = ()
    if plan.features.source == "labeled":
        # The selection's features come from a backbone trained on the labeled crops first.
        out.append(Stage("feature_backbone", f"{plan.features.backbone} trained on the labeled crops for features "
                         "(Ray Train)", [plan.labeled_crops(), to_dict(plan.features)], up_lab,
                         lambda: _feature_backbone(plan), plan.path("feature_backbone")))
        up_feat = ("feature_backbone",)
    out += [
        Stage("features_labeled", f"{plan.features.backbone} features of the labeled crops ({plan.features.source})",
              [plan.labeled_crops(), to_dict(plan.features)], up_lab + up_feat,
              lambda: _features(plan, plan.labeled_crops(), "features_labeled", p.labeled_regions == "none"),
              plan.path("features_labeled")),
        Stage("features_pool", f"{plan.features.backbone} features of the pool crops ({plan.features.source})",
              [to_dict(plan.features)], ("regions_pool",) + up_feat, lambda: _features(plan, plan.path("regions_pool"), "features_pool", False),
              plan.path("features_pool")),
        Stage("selection", "prototypes and Active Sample Selection", [to_dict(plan.selection)],
              ("features_labeled", "features_pool"), lambda: _select(plan), plan.path("selection")),
    ]
    if any(src == "random_subset" for src, _ in plan.pretrains.values()):
        out.append(Stage("random_subset", "a seeded random subset of the pool as large as the selection",
                         [p.random_seed], ("selection",), lambda: _random_subset(plan), plan.path("random_subset")))
    for folder, (source, cfg) in plan.pretrains.items():
        what = {"selection": "the selected crops", "random_subset": "a random subset of the pool's crops"}.get(
            source, "every pool crop")
        # The pool's size sets the shared step budget, hence the pool's regions upstream.
        ups = tuple(dict.fromkeys((source, "regions_pool")))
        out.append(Stage(folder, f"{cfg.model.method.upper()} pretraining on {what} (Ray Train)",
                         [to_dict(cfg), p.pretrain_budget, p.pretrain_steps], ups, lambda f=folder: _pretrain(plan, f)))
    ft = plan.first_finetune().train
    # One assignment for every arm (paired scores), made before the first of them.
    out.append(Stage("folds", f"{ft.n_folds} stratified folds of the labeled crops",
                     [plan.labeled_crops(), ft.n_folds, ft.folds_seed], up_lab, lambda: _folds(plan)))
    for slug, a in plan.arms.items():
        ups = ("folds",) + ((a.pretrain,) if a.pretrain else ())
        out.append(Stage(f"finetune/{slug}", f"{a.finetune.train.n_folds}-fold fine-tuning: {a.arm.name}",
                         [plan.labeled_crops(), to_dict(a.finetune)], ups, lambda s=slug: _finetune(plan, s)))
    out.append(Stage("compare", "comparison tables and figures", [list(plan.arms)],
                     tuple(f"finetune/{s}" for s in plan.arms), lambda: _compare(plan)))
    holdout = holdout_input(p)
    if holdout:
        out += [Stage("export", "bundle of the best arm's final fit (activessf export)", [list(plan.arms)],
                      tuple(f"finetune/{s}" for s in plan.arms), lambda: export_best(plan)),
                Stage("predict", "the final model on held-back images (activessf predict)", holdout_key(holdout),
                      ("export",), lambda: predict_holdout(plan))]
    if p.report:
        out.append(Stage("report", "report.md and report.html", [time.time()], ("compare",), lambda: _report(plan, log)))
    return out


def _marker_fp(st: Stage) -> str | None:
    """Fingerprint of a data stage's completion marker (None: no marker stage or none written)."""
    if st.marker_dir is None:
        return None
    marker = read_marker(st.marker_dir)
    return fingerprint(st.name, marker.get("fingerprint")) if marker else None


def run_stage(st: Stage, fps: dict[str, str], log: StateLog, head: str) -> None:
    """Run one stage unless the log has it finished with the same fingerprint; record it."""
    fp = fingerprint(st.name, st.key, [fps[u] for u in st.upstream])
    if st.marker_dir is None and log.done(st.name, fp):
        fps[st.name] = fp
        progress.finish(st.name)
        console.say(f"{head}: complete, skipped")
        return
    console.say(f"{head}: {st.describe} ...")
    progress.start(st.name)
    console.set_label(head)
    before = _marker_fp(st)
    t0 = time.time()
    summary = st.run()
    if st.marker_dir is not None:
        fp = _marker_fp(st)
    fps[st.name] = fp
    if st.marker_dir is not None and fp == before and log.done(st.name, fp):
        # The data stage found its own outputs complete: keep the time it took when it ran.
        progress.finish(st.name)
        console.say(f"{head}: complete, skipped")
        return
    log.record(st.name, fp, summary, time.time() - t0)
    progress.finish(st.name)
    console.say(f"{head}: done in {time.time() - t0:.0f} s {_short(summary)}")


def run_pipeline(plan: Plan, until: str | None = None, only: Sequence[str] = ()) -> dict[str, Any]:
    """Run (or resume) every stage of ``plan``, printing a line per stage and a final summary.

    Args:
        plan: The resolved run.
        until: Stop after this stage (``activessf run --until``; see ``pipeline.scope``).
        only: Run only these arms' stages (``--only``; names or slugs), no comparison.

    Returns:
        ``root`` (run folder), ``stages`` (name -> summary) and ``report`` (path or None).
    """
    from activessf.pipeline.checks import check_inputs

    check_inputs(plan)  # before Ray starts and before any stage: a typo costs nothing
    progress.set_folder(plan.root)
    console.set_log_folder(plan.root)
    console.hide_details()  # one result line per stage; the stages' own lines go to the log
    # Temporary files of an interrupted or killed attempt (see atomic.remove_stale_temps).
    if remove_stale_temps(plan.root):
        console.say(f"removed temporary files an interrupted run left in {plan.root}")
    # No ensure_ray() here: each stage that uses Ray starts (or joins) it, so a finished run's
    # rerun, or one whose remaining stages are Ray-free, answers in seconds.
    afs.makedirs(plan.root)
    atomic_write_text(plan.path("pipeline_config.yaml"), yaml.safe_dump(plan.resolved(), sort_keys=False))
    log = StateLog(plan.root)
    todo = scope_stages(stages(plan, log), plan, until, only)
    fps: dict[str, str] = {}
    start = time.time()
    tracking = PipelineTracking(plan, plan.tracking)
    tracking.begin()
    ok = False
    try:
        for i, st in enumerate(todo, 1):
            run_stage(st, fps, log, f"[{i}/{len(todo)}] {st.name}")
            # Skipped stages too: every MLflow run of a resumed pipeline is complete.
            tracking.stage_done(st.name, log.stages.get(st.name, {}).get("summary", {}))
        ok = True
    finally:
        tracking.end(ok)
        console.hide_details(False)
        console.set_label(None)
    report = log.stages.get("report", {}).get("summary", {}).get("html")
    console.say(final_summary(plan, log.stages, time.time() - start, report))
    if until or only:
        console.say(f"ran {len(todo)} stage(s) ({'--until ' + until if until else ''}"
                    f"{' ' if until and only else ''}{'--only ' + ', '.join(only) if only else ''}); "
                    "rerun without them to continue with the rest")
    return {"root": plan.root, "stages": {k: v["summary"] for k, v in log.stages.items()}, "report": report}


def _short(summary: dict) -> str:
    # Paths (report, contact sheet) are in the run folder and the final summary, not here;
    # cross-validated scores show their mean.
    items = [f"{k}={v}" for k, v in summary.items() if isinstance(v, (int, float)) or (isinstance(v, str) and "/" not in v)]
    items += [f"{k}={v['mean']:.3f}" for k, v in summary.items() if isinstance(v, dict) and isinstance(v.get("mean"), float)]
    return f"({', '.join(items)})" if items else ""


def final_summary(plan: Plan, done: dict[str, dict], seconds: float, report: str | None) -> str:
    """What was kept, selected and scored, as a few lines of text."""
    get = lambda name: done.get(name, {}).get("summary", {})  # noqa: E731
    pool, sel = get("regions_pool"), get("selection")
    lines = ["", f"== run {plan.root} finished in {seconds:.0f} s",
             f"regions: {pool.get('inputs', '?')} pool images = {pool.get('ok', '?')} ok + {pool.get('rejected', '?')} "
             f"rejected; {pool.get('regions', '?')} cell regions kept",
             f"selection: {sel.get('n_selected', '?')} of {sel.get('n_rows', '?')} pool crops selected "
             f"(features: {plan.features.source})"]
    if plan.features.source == "random":
        lines.append(RANDOM_WARNING)
    for slug, a in plan.arms.items():
        s = get(f"finetune/{slug}")
        if s:
            lines.append(f"{a.arm.name}: " + ", ".join(f"{m} {v['mean']:.3f} ± {v['std']:.3f}" for m, v in s.items()))
    result = verdict(plan, done)
    if result:
        lines.append(result)
    held = get("predict")
    if held:
        lines.append(f"held-back images: {held.get('correct')} of {held.get('with_true_class')} classified correctly by "
                     f"the final model of {get('export').get('arm')} (bundle: {plan.path('bundle')})")
    if report:
        lines.append(f"report: {report}")
    return "\n".join(lines)
