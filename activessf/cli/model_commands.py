"""Subcommands that use a trained classifier: ``export``, ``predict`` and ``serve``."""

from __future__ import annotations

import argparse
import json
import os
import signal
import threading

from activessf.cli.base import Command, UsageError, overrides
from activessf.config import build_config
from activessf.inference.config import PredictConfig


def _export_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--run", required=True, help="`activessf run` folder, or one `activessf finetune` folder")
    p.add_argument("--arm", help="arm display name or folder name (default: best by macro PR-AUC)")
    p.add_argument("--output", required=True, help="bundle folder to write (replaced whole)")
    p.add_argument("--ensemble", action="store_true", help="ship the mean of the fold models instead of the final fit")


def _run_export(args: argparse.Namespace) -> int:
    from activessf.inference.export import export_bundle

    if not os.path.isdir(args.run):
        raise UsageError(f"{args.run}: no such run folder")
    meta = export_bundle(args.run, args.output, args.arm, args.ensemble)
    pr = meta["cv"]["macro_pr_auc"]
    print(f"exported {meta['arm']!r} ({meta['kind']}; CV macro PR-AUC {pr['mean']:.3f} ± {pr['std']:.3f}) to "
          f"{args.output}: model.safetensors, model.onnx (max |onnx - torch| "
          f"{meta['onnx']['max_abs_diff_vs_torch']:.1e}), model.json, README.md")
    return 0


def _predict_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, help="bundle folder (from `activessf export`)")
    p.add_argument("--input", required=True, help="image folder, CSV/Parquet manifest, or one image")
    p.add_argument("--output", required=True, help="output folder")
    p.add_argument("--mode", choices=["cells", "crops"], help="shortcut for --set mode=...")
    p.add_argument("--local", action="store_true", help="run in this process instead of Ray Data")
    p.add_argument("--force", action="store_true", help="redo every input")


def _run_predict(args: argparse.Namespace) -> int:
    cfg = build_config(PredictConfig, args.config, overrides(args, mode="mode"), section="predict")
    from activessf.stages.predict import run_predict

    s = run_predict(args.input, args.model, args.output, cfg, "local" if args.local else "ray", args.force)
    top = ", ".join(f"{c} {n}" for c, n in sorted(s.get("per_class", {}).items(), key=lambda kv: -kv[1]))
    print(f"predict: inputs={s['inputs']} = ok {s['ok']} + rejected {s['rejected']}; {s['cells']} cells "
          f"({s['low_confidence']} low-confidence): {top or 'none'}")
    print(f"outputs in {args.output}: predictions.parquet, manifest.parquet, summary.csv, contact_sheets/")
    return 0


def _serve_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, help="bundle folder (from `activessf export`)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0 for every interface)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--replicas", type=int, default=1, help="model replicas")
    p.add_argument("--gpu", action="store_true", help="one GPU per replica")


def _run_serve(args: argparse.Namespace) -> int:
    cfg = build_config(PredictConfig, args.config, args.overrides, section="predict")
    if args.replicas < 1:
        raise UsageError("--replicas must be >= 1")
    from activessf.distributed.serve import describe, start_service, stop_service

    url = start_service(args.model, cfg, args.host, args.port, args.replicas, args.gpu)
    print(describe(url, args.model), flush=True)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        stop.wait()
    finally:
        stop_service()
    print(json.dumps({"served": url, "stopped": True}))
    return 0


MODEL_COMMANDS = [
    Command("export", "A finished run's classifier -> a self-describing bundle (safetensors, ONNX, card)",
            _export_args, _run_export),
    Command("predict", "Find and classify the cells of new images with a bundle (Ray Data)", _predict_args, _run_predict),
    Command("serve", "Serve a bundle over HTTP with Ray Serve (POST an image, get its cells as JSON)",
            _serve_args, _run_serve),
]
