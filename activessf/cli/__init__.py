"""The ``activessf`` command: one subcommand per stage, each with ``--config`` and ``--set``."""

from __future__ import annotations

import argparse
import os
import sys

from activessf import console, progress
from activessf.cli import commands, errors
from activessf.cli.active_commands import ACTIVE_COMMANDS
from activessf.cli.model_commands import MODEL_COMMANDS
from activessf.io.atomic import remove_stale_temps

# Files this tool writes at the top of an output folder (first thing, in the stages): their
# presence says the folder's ``.tmp-*`` leftovers are ours to remove.
_OWN_FILES = ("config.yaml", "_SUCCESS.json", "pipeline_config.yaml", "pipeline_state.json", "folds.parquet",
              "predict_config.yaml")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="activessf", description=__doc__)
    parser.add_argument("--debug", action="store_true", help="print the full traceback of any error")
    parser.add_argument("--verbose", action="store_true",
                        help="show Ray's own logs, warnings and worker output (else in OUTPUT/logs/)")
    subs = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    # Stage commands, then those that use a trained model, then active learning.
    for command in [*commands.COMMANDS, *MODEL_COMMANDS, *ACTIVE_COMMANDS]:
        sub = subs.add_parser(command.name, help=command.help, description=command.help)
        sub.add_argument("--config", help="YAML file with config values (defaults: configs/<stage>.yaml)")
        sub.add_argument(
            "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
            help="override one config field, e.g. --set preset=paper (repeatable)",
        )
        # Also accepted after the subcommand; SUPPRESS keeps a global --debug from being reset.
        sub.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
        sub.add_argument("--verbose", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
        command.add_arguments(sub)
        sub.set_defaults(handler=command.run)
    return parser


def _shutdown_ray() -> None:
    """Stop the local Ray runtime this command started, however the command ends."""
    runtime = sys.modules.get("activessf.distributed.runtime")
    if runtime is not None:
        runtime.shutdown_local()


def _sweep_leftovers(args: argparse.Namespace) -> None:
    """Remove the temporary files an interrupted or killed earlier attempt left in ``--output``."""
    out = getattr(args, "output", None)
    if not isinstance(out, str) or not os.path.isdir(out):
        return
    if any(os.path.exists(os.path.join(out, name)) for name in _OWN_FILES):
        removed = remove_stale_temps(out)
        if removed:
            print(f"removed {len(removed)} temporary file(s) an interrupted run left in {out}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``activessf`` console script."""
    args = build_parser().parse_args(argv)
    progress.reset()
    # A stage command is its own stage; ``run`` names its stages as it goes.
    progress.start(args.command)
    console.configure(verbose=args.verbose)
    out = getattr(args, "output", None)
    console.set_log_folder(out if isinstance(out, str) else None)
    previous = errors.install_signal_handlers()
    try:
        _sweep_leftovers(args)
        return int(args.handler(args) or 0)
    except (Exception, KeyboardInterrupt) as exc:
        folder = progress.folder() or getattr(args, "output", None)
        return errors.report(exc, args.command, args.debug, folder, console.log_path())
    finally:
        _shutdown_ray()
        console.restore_logs()
        errors.restore_signal_handlers(previous)


if __name__ == "__main__":
    sys.exit(main())
