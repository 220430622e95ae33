"""What the running command is doing, so an interrupt can say what finished and what did not.

A tiny process-wide record (no Ray, no I/O): the pipeline marks each stage as it starts and
finishes; the CLI reads it when Ctrl-C or SIGTERM stops the command.
"""

from __future__ import annotations

_current: str | None = None
_finished: list[str] = []
_folder: str | None = None


def start(stage: str) -> None:
    """Record that ``stage`` is now running."""
    global _current
    _current = stage


def finish(stage: str) -> None:
    """Record that ``stage`` finished (its outputs are complete)."""
    global _current
    if stage not in _finished:
        _finished.append(stage)
    if _current == stage:
        _current = None


def current() -> str | None:
    """The stage running now, or None."""
    return _current


def finished() -> list[str]:
    """Stages finished in this process, in order."""
    return list(_finished)


def reset() -> None:
    """Forget everything (a new command in the same process, as in tests)."""
    global _current, _folder
    _current = _folder = None
    _finished.clear()



def set_folder(path: str | None) -> None:
    """Record the run folder the command writes (named in error messages)."""
    global _folder
    _folder = path


def folder() -> str | None:
    """The run folder recorded by ``set_folder``, or None."""
    return _folder
