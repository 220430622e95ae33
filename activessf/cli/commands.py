"""Subcommands of the ``activessf`` CLI. Each parses its config before any work starts."""

from __future__ import annotations

import argparse

from activessf.cli.base import Command, UsageError, overrides as _overrides
from activessf.config import build_config
from activessf.io import fs as afs
from activessf.io.sources import InputError
from activessf.features.config import FeaturesConfig
from activessf.regions.config import RegionsConfig
from activessf.selection.config import SelectionConfig


def _regions_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--input", required=True, help="image folder, or CSV/Parquet manifest (local, s3://, gs://)")
    p.add_argument("--output", required=True, help="output folder")
    p.add_argument("--preset", choices=["default", "paper"], help="shortcut for --set preset=...")
    p.add_argument("--labeled", action="store_true", help="take labels from ImageFolder sub-folders")
    p.add_argument("--local", action="store_true", help="run in this process instead of Ray Data")
    p.add_argument("--force", action="store_true", help="rerun even if the outputs are complete")


def _run_regions(args: argparse.Namespace) -> int:
    cfg = build_config(RegionsConfig, args.config, _overrides(args, preset="preset"), section="regions")
    from activessf.stages.regions import run_regions

    try:
        run_regions(args.input, args.output, cfg, labeled=args.labeled,
                    executor="local" if args.local else "ray", force=args.force)
    except InputError as exc:
        raise UsageError(str(exc)) from exc
    print(f"outputs in {args.output}: manifest.parquet, regions.parquet, crops/, contact_sheet.png")
    return 0


def _features_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--input", required=True, help="region stage folder, or image folder/manifest")
    p.add_argument("--output", required=True, help="output folder")
    p.add_argument("--backbone", help="timm model name (shortcut for --set backbone=...)")
    p.add_argument("--weights", help="local .safetensors or state-dict file (shortcut for --set weights=...)")
    p.add_argument("--labeled", action="store_true", help="image folder input: labels from sub-folders")
    p.add_argument("--source", choices=["labeled", "pool_ssl", "weights", "random"],
                   help="where the features come from (shortcut for --set source=...)")
    p.add_argument("--train-on", help="source labeled: train the backbone on these labeled crops first "
                   "(into OUTPUT/feature_backbone; later runs pass its final/model.safetensors as --weights)")
    p.add_argument("--local", action="store_true", help="run in this process instead of Ray Data")
    p.add_argument("--force", action="store_true", help="rerun even if the outputs are complete")


def _run_features(args: argparse.Namespace) -> int:
    overrides = _overrides(args, backbone="backbone", weights="weights", source="source")
    cfg = build_config(FeaturesConfig, args.config, overrides, section="features")
    from activessf.stages.features import run_features

    try:
        if args.train_on:
            from activessf.stages.feature_backbone import train_feature_backbone, with_backbone

            if cfg.source != "labeled":
                raise UsageError(f"--train-on trains a labeled backbone; features.source is {cfg.source}")
            out = afs.join(args.output, "feature_backbone")
            cfg = with_backbone(cfg, train_feature_backbone(args.train_on, out, cfg, "local" if args.local else "ray"))
        elif cfg.source == "labeled" and cfg.weights is None:
            raise UsageError("features.source is labeled: give --train-on LABELED_CROPS, or --weights with a "
                             "trained backbone (feature_backbone/final/model.safetensors)")
        run_features(args.input, args.output, cfg, labeled=args.labeled,
                     executor="local" if args.local else "ray", force=args.force)
    except InputError as exc:
        raise UsageError(str(exc)) from exc
    print(f"outputs in {args.output}: features.parquet, status.parquet")
    return 0


def _select_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--labeled", required=True, help="feature stage folder of the labeled crops")
    p.add_argument("--unlabeled", required=True, help="feature stage folder of the unlabeled crops")
    p.add_argument("--output", required=True, help="output folder")
    p.add_argument("--force", action="store_true", help="rerun even if the outputs are complete")


def _run_select(args: argparse.Namespace) -> int:
    cfg = build_config(SelectionConfig, args.config, args.overrides, section="selection")
    from activessf.selection.stage import features_path, run_select

    for path in (args.labeled, args.unlabeled):
        if not afs.exists(features_path(path)):
            raise UsageError(f"{path}: no features.parquet (run `activessf features` first)")
    run_select(args.labeled, args.unlabeled, args.output, cfg, force=args.force)
    print(f"outputs in {args.output}: selection.parquet, prototypes.npy, report.json, selected_crops.png")
    return 0


def _pretrain_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", required=True, help="selection folder (selected crops), region folder, or image folder")
    p.add_argument("--output", required=True, help="output folder")
    p.add_argument("--method", help="self-supervised method (shortcut for --set model.method=...)")


def _run_pretrain(args: argparse.Namespace) -> int:
    from activessf.pretrain.config import PretrainConfig

    cfg = build_config(PretrainConfig, args.config, _overrides(args, method="model.method"), section="pretrain")
    from activessf.stages.pretrain import run_pretrain
    from activessf.pipeline.track import track_command

    try:
        with track_command("pretrain", args.output, cfg, args.config, args.overrides) as tracked:  # MLflow
            paths = run_pretrain(args.data, args.output, cfg)
            tracked.finish(paths["completed"])
    except (InputError, FileNotFoundError) as exc:
        raise UsageError(str(exc)) from exc
    state = "complete" if paths["completed"] else f"stopped after epoch {paths['epochs_done']}"
    print(f"pretraining {state}; encoder weights: {paths['encoder']}; metrics: {paths['metrics']}")
    return 0


def _finetune_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--labeled", required=True, help="labeled crops: ImageFolder <CLASS>/<image>, region folder or manifest")
    p.add_argument("--init", help="encoder weights file or 'none' (shortcut for --set model.init=...)")
    p.add_argument("--model", help="timm model name (shortcut for --set model.name=...)")
    p.add_argument("--output", required=True, help="output folder of this run")
    p.add_argument("--folds", help="shared folds file (created on first use; default <output>/folds.parquet)")


def _run_finetune(args: argparse.Namespace) -> int:
    from activessf.finetune.config import FinetuneConfig

    cfg = build_config(FinetuneConfig, args.config, _overrides(args, init="model.init", model="model.name"), section="finetune")
    from activessf.stages.finetune import run_finetune
    from activessf.pipeline.track import track_command

    try:
        with track_command("finetune", args.output, cfg, args.config, args.overrides) as tracked:  # MLflow
            paths = run_finetune(args.labeled, args.output, cfg, folds_path=args.folds)
            tracked.finish(paths["completed"])
    except (InputError, FileNotFoundError) as exc:
        raise UsageError(str(exc)) from exc
    if not paths["completed"]:
        print(f"fine-tuning stopped in fold {paths['stopped_fold']}; rerun the same command to resume")
        return 0
    acc = paths["report"]["summary"]["accuracy"]
    print(f"fine-tuned {cfg.method_name()}: accuracy {acc['mean']:.4f} ± {acc['std']:.4f}; "
          f"metrics: {paths['metrics']}; folds: {paths['folds']}")
    return 0


def _compare_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("runs", nargs="+", help="fine-tuning output folders; the first is the t-test reference")
    p.add_argument("--output", required=True, help="folder for compare.md/json and figures")
    p.add_argument("--names", nargs="+", help="display names, one per run")


def _run_compare(args: argparse.Namespace) -> int:
    from activessf.evaluation.compare import write_comparison

    if args.names and len(args.names) != len(args.runs):
        raise UsageError("--names needs one name per run")
    for run in args.runs:
        if not afs.exists(afs.join(run, "metrics.json")):
            raise UsageError(f"{run}: no metrics.json (run `activessf finetune` first)")
    try:
        paths = write_comparison(args.runs, args.output, args.names)
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    print(paths["markdown"])
    print(f"outputs in {args.output}: compare.md, compare.json, confusion_matrices.png, per_class_pr_auc.png")
    return 0


def _pipeline_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--output", help="run folder (shortcut for --set pipeline.output=...)")
    p.add_argument("--labeled", help="labeled ImageFolder (shortcut for --set pipeline.labeled=...)")
    p.add_argument("--unlabeled", help="unlabeled images/slides (shortcut for --set pipeline.unlabeled=...)")
    p.add_argument("--until", metavar="STAGE", help="stop after this stage (e.g. selection, pretrain, finetune, or "
                   "an exact name such as features_pool); rerun without it to continue")
    p.add_argument("--only", metavar="ARM", action="append", default=[],
                   help="run only this arm's stages (its name or folder slug; repeatable); no comparison")


def _run_pipeline(args: argparse.Namespace) -> int:
    from activessf.pipeline.plan import build_plan

    shortcuts = {"output": "pipeline.output", "labeled": "pipeline.labeled", "unlabeled": "pipeline.unlabeled"}
    plan = build_plan(args.config, _overrides(args, **shortcuts))
    from activessf.pipeline.run import StageStopped, run_pipeline, stages
    from activessf.pipeline.scope import scope_stages

    if args.until or args.only:  # a wrong stage or arm name fails before Ray starts
        scope_stages(stages(plan, None), plan, args.until, args.only)
    try:
        result = run_pipeline(plan, until=args.until, only=args.only)
    except (InputError, FileNotFoundError) as exc:
        raise UsageError(str(exc)) from exc
    except StageStopped as exc:
        print(f"{exc}; rerun the same command to resume")
        return 0
    if not result["report"]:  # the run's summary names the report when there is one
        print("report: not written (pipeline.report: false)")
    return 0


def _sweep_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--output", help="sweep folder (shortcut for --set sweep.output=...)")


def _run_sweep(args: argparse.Namespace) -> int:
    if not args.config:
        raise UsageError("--config is required: a pipeline YAML with a sweep: section (see configs/sweep.yaml)")
    from activessf.pipeline.sweep import run_sweep

    result = run_sweep(args.config, _overrides(args, output="sweep.output"))
    print(afs.read_bytes(result["paths"]["md"]).decode("utf-8"))
    failed = [r["trial_id"] for r in result["rows"] if r["status"] == "ERROR"]
    if result["best"]:
        print(f"best trial {result['best']['trial_id']}: {result['best']['params']}; config: {result['paths']['best']}")
    print(f"results: {result['paths']['md']}, {result['paths']['json']}, {result['paths']['png']}")
    if failed:
        print(f"{len(failed)} trial(s) failed ({', '.join(failed)}); rerun the same command to resume them")
        return 1
    return 0


COMMANDS = [
    Command("regions", "Cell Region Filtering: images -> cell regions, crops, manifest", _regions_args, _run_regions),
    Command("features", "Backbone features of crops (Ray Data, GPU actors when present)", _features_args, _run_features),
    Command("select", "Prototypes, density-aware thresholds and Active Sample Selection", _select_args, _run_select),
    Command("pretrain", "Self-supervised pretraining on Ray Train (MAE)", _pretrain_args, _run_pretrain),
    Command("finetune", "Fine-tune an encoder or baseline over shared stratified folds (Ray Train)", _finetune_args, _run_finetune),
    Command("compare", "Compare fine-tuning runs: tables with paired t-tests, figures", _compare_args, _run_compare),
    Command("sweep", "Ray Tune sweep of selection (and other) fields over the saved folds", _sweep_args, _run_sweep),
    Command("run", "The whole pipeline in one resumable run folder, with report.md/html", _pipeline_args, _run_pipeline),
]

