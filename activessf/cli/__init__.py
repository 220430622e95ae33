"""The ``activessf`` command: one subcommand per stage, each with ``--config`` and ``--set``."""

from __future__ import annotations

import argparse
import sys

from activessf.cli import commands
from activessf.config import ConfigError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="activessf", description=__doc__)
    subs = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in commands.COMMANDS:
        sub = subs.add_parser(command.name, help=command.help, description=command.help)
        sub.add_argument("--config", help="YAML file with config values (defaults: configs/<stage>.yaml)")
        sub.add_argument(
            "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
            help="override one config field, e.g. --set preset=paper (repeatable)",
        )
        command.add_arguments(sub)
        sub.set_defaults(handler=command.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``activessf`` console script."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except ConfigError as exc:
        print(f"activessf {args.command}: config error: {exc}", file=sys.stderr)
        return 2
    except commands.UsageError as exc:
        print(f"activessf {args.command}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
