"""One place that turns an exception into what the user sees and the exit code.

Errors a user can fix (bad config, malformed YAML, missing file, weights that do not fit, no
space left) become one line naming the file or field, exit code 2; an interrupt (Ctrl-C,
SIGTERM) becomes one line saying what finished and how to resume, exit code 130. Anything else
is a bug: its traceback is kept. ``--debug`` prints the traceback in every case.
"""

from __future__ import annotations

import errno
import os
import signal
import sys
import threading
import traceback
from typing import Any

import yaml

from activessf import progress
from activessf.cli.base import UsageError
from activessf.config import ConfigError
from activessf.errors import BundleError, WeightsError
from activessf.io.sources import InputError
from activessf.sweep.state_digest import UntrustedStateError

EXIT_USAGE = 2
# 128 + SIGINT, what a shell reports for a command stopped by Ctrl-C.
EXIT_INTERRUPTED = 130


class Interrupted(KeyboardInterrupt):
    """SIGTERM, delivered like Ctrl-C so that every ``finally`` and ``except BaseException`` runs."""


def _raise_interrupted(signum: int, frame: Any) -> None:
    raise Interrupted(signal.Signals(signum).name)


def install_signal_handlers() -> Any:
    """Make SIGTERM stop the command the way Ctrl-C does; the handler it replaced.

    Returns:
        The previous SIGTERM handler (for ``restore_signal_handlers``), or None off the main
        thread, where Python cannot set handlers.
    """
    if threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signal.SIGTERM, _raise_interrupted)


def restore_signal_handlers(previous: Any) -> None:
    """Put back the SIGTERM handler ``install_signal_handlers`` replaced."""
    if previous is not None:
        signal.signal(signal.SIGTERM, previous)


def _yaml_line(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    if mark is None:
        return f"invalid YAML: {problem}"
    return f"{mark.name}: invalid YAML at line {mark.line + 1}, column {mark.column + 1}: {problem}"


def _os_line(exc: OSError) -> str:
    where = f"{exc.filename}: " if exc.filename else ""
    if exc.errno == errno.ENOSPC:
        return f"{where}no space left on device; free some space and rerun the same command"
    return f"{where}{exc.strerror or exc}"


def user_message(exc: BaseException) -> str | None:
    """The one-line message of an error a user can fix, or None for anything else (a bug)."""
    if isinstance(exc, ConfigError):
        return f"config error: {exc}"
    if isinstance(exc, yaml.YAMLError):
        return f"config error: {_yaml_line(exc)}"
    if isinstance(exc, (UsageError, InputError, WeightsError, BundleError, UntrustedStateError)):
        return str(exc)
    if isinstance(exc, OSError) and (exc.filename or exc.errno == errno.ENOSPC):
        return _os_line(exc)
    return None


def interrupt_message() -> str:
    """What an interrupted command finished and how to resume it."""
    stage = progress.current()
    during = f" during {stage}" if stage else ""
    done = ", ".join(progress.finished()) or "no stage of this command"
    return f"interrupted{during}; finished: {done}; rerun the same command to resume"


def _where(run_folder: str | None, log: str | None = None) -> str:
    parts = [f"run folder: {run_folder}"] if run_folder and os.path.exists(run_folder) else []
    if log and os.path.exists(log):
        parts.append(f"log: {log}")
    return f" ({'; '.join(parts)})" if parts else ""


def report(exc: BaseException, command: str, debug: bool, run_folder: str | None = None, log: str | None = None) -> int:
    """Print what the user needs about ``exc``; the exit code of the command.

    Args:
        exc: The exception that ended the command.
        command: Subcommand name, for the message prefix.
        debug: Print the traceback too.
        run_folder: The command's output folder, named when it exists.
        log: The command's log file (Ray's logs, warnings), named when it exists.

    Returns:
        2 for a user error, 130 for an interrupt; re-raises ``exc`` when it is a bug.
    """
    if isinstance(exc, KeyboardInterrupt):
        line, code = interrupt_message() + _where(None, log), EXIT_INTERRUPTED
    else:
        message = user_message(exc)
        if message is None:
            raise exc
        line, code = message + _where(run_folder, log), EXIT_USAGE
    if debug:
        traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.stderr)
    # An interrupt usually lands mid-line (a progress counter, the terminal's ^C): start afresh.
    lead = "\n" if code == EXIT_INTERRUPTED else ""
    print(f"{lead}activessf {command}: {line}", file=sys.stderr, flush=True)
    return code
