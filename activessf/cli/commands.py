"""Subcommands of the ``activessf`` CLI. Each parses its config before any work starts."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Callable

from activessf.config import build_config
from activessf.io.sources import InputError
from activessf.regions.config import RegionsConfig


class UsageError(Exception):
    """A command-line problem worth a one-line message rather than a traceback."""


@dataclass
class Command:
    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


def _regions_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--input", required=True, help="image folder, or CSV/Parquet manifest (local, s3://, gs://)")
    p.add_argument("--output", required=True, help="output folder")
    p.add_argument("--preset", choices=["default", "paper"], help="shortcut for --set preset=...")
    p.add_argument("--labeled", action="store_true", help="take labels from ImageFolder sub-folders")
    p.add_argument("--local", action="store_true", help="run in this process instead of Ray Data")
    p.add_argument("--force", action="store_true", help="rerun even if the outputs are complete")


def _run_regions(args: argparse.Namespace) -> int:
    overrides = list(args.overrides) + ([f"preset={args.preset}"] if args.preset else [])
    cfg = build_config(RegionsConfig, args.config, overrides, section="regions")
    from activessf.distributed.regions import run_regions

    try:
        run_regions(args.input, args.output, cfg, labeled=args.labeled,
                    executor="local" if args.local else "ray", force=args.force)
    except InputError as exc:
        raise UsageError(str(exc)) from exc
    print(f"outputs in {args.output}: manifest.parquet, regions.parquet, crops/, contact_sheet.png")
    return 0


COMMANDS = [
    Command("regions", "Cell Region Filtering: images -> cell regions, crops, manifest", _regions_args, _run_regions),
]
