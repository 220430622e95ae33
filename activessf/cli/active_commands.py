"""Active-learning subcommands: ``query`` (which pool cells to label next) and ``label import``."""

from __future__ import annotations

import argparse
import os

from activessf.active.config import STRATEGIES, QueryConfig
from activessf.cli.base import Command, UsageError, overrides
from activessf.config import build_config


def _query_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--run", required=True, help="finished `activessf run` folder (its pool crops and final model)")
    p.add_argument("--budget", required=True, type=int, help="cells to propose")
    p.add_argument("--output", required=True, help="new query folder (queries.csv, queries.png, Label Studio files)")
    p.add_argument("--strategy", choices=STRATEGIES, help="shortcut for --set strategy=... (default: default)")
    p.add_argument("--arm", help="arm whose final fit scores the pool (default: best by macro PR-AUC)")
    p.add_argument("--pool", help="pool region folder (default: RUN/regions_pool)")
    p.add_argument("--labeled", help="labeled set the model saw (default: the run's labeled crops)")
    p.add_argument("--local", action="store_true", help="score in this process instead of Ray Data")


def _run_query(args: argparse.Namespace) -> int:
    cfg = build_config(QueryConfig, args.config, overrides(args, strategy="strategy"), section="query")
    if not os.path.isdir(args.run):
        raise UsageError(f"{args.run}: no such run folder")
    if args.budget < 1:
        raise UsageError(f"--budget must be >= 1, got {args.budget}")
    from activessf.stages.query import run_query

    s = run_query(args.run, args.output, args.budget, cfg, args.arm, args.pool, args.labeled,
                  "local" if args.local else "ray")
    mix = ", ".join(f"{c} {n}" for c, n in sorted(s["per_class"].items(), key=lambda kv: -kv[1]))
    print(f"query ({s['strategy']}, model {s['arm']!r}): {s['proposed']} of {s['available']} available pool cells "
          f"({s['pool']} in the pool, {s['already_taken']} already labeled or queried); predicted: {mix or 'none'}")
    print(f"outputs in {args.output}: queries.csv, queries.png, labelstudio_tasks.json, labelstudio_config.xml; "
          f"logged in {s['files']['log']}")
    return 0


def _label_args(p: argparse.ArgumentParser) -> None:
    verbs = p.add_subparsers(dest="verb", required=True, metavar="VERB")
    imp = verbs.add_parser("import", help="answers (CSV region_id,label or a Label Studio JSON export) -> "
                           "a new labeled manifest version")
    imp.add_argument("--run", required=True, help="the run whose queries were answered")
    imp.add_argument("--labels", required=True, help="CSV with region_id,label or a Label Studio JSON export")
    imp.add_argument("--output", required=True, help="new folder for the labeled version (labeled.csv, negatives.csv)")
    imp.add_argument("--base", help="labeled set to extend (default: the run's pipeline.labeled)")


def _run_label(args: argparse.Namespace) -> int:
    from activessf.active.label_import import import_labels

    if not os.path.isdir(args.run):
        raise UsageError(f"{args.run}: no such run folder")
    s = import_labels(args.run, args.labels, args.output, args.base)
    added = ", ".join(f"{c} {n}" for c, n in sorted(s["added"].items())) or "none"
    print(f"label import: {s['answers']} answers; added {added}; {s['negatives']} negatives (not a target cell); "
          f"{s['rows']} labeled rows = {s['base_rows']} from {s['base']} + {s['rows'] - s['base_rows']} new")
    print(f"next: activessf run --config ... --set pipeline.labeled={s['manifest']}")
    return 0


ACTIVE_COMMANDS = [
    Command("query", "Which pool cells to label next: rank a run's pool with its final model (Ray Data)",
            _query_args, _run_query),
    Command("label", "Take labels back: `label import` writes a new labeled manifest version", _label_args, _run_label),
]
