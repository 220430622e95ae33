"""What every subcommand module shares: the ``Command`` record, ``UsageError``, ``--set`` assembly.

Below the subcommand modules (``commands``, ``model_commands``, ``active_commands``), so that
none of them imports another.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from typing import Callable


class UsageError(Exception):
    """A command-line problem worth a one-line message rather than a traceback."""


@dataclass
class Command:
    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


def overrides(args: argparse.Namespace, **shortcuts: str) -> list[str]:
    """``--set`` values plus the command's shortcut flags (flag name -> config key).

    A flag's value is the value itself, not YAML: it is JSON-quoted so that a path such as
    ``run #2.pt`` stays whole (YAML would read ``run`` and drop the rest as a comment).
    """
    extra = [f"{key}={json.dumps(getattr(args, flag))}" for flag, key in shortcuts.items() if getattr(args, flag, None)]
    return list(args.overrides) + extra
