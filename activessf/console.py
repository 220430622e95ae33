"""What a person sees: one live bar per stage on a terminal, plain lines elsewhere, logs in a file.

No Ray here. The CLI calls ``configure`` once (``--verbose``); a command that writes a run folder
calls ``route_logs(folder)``, which sends the Python loggers of Ray, MLflow and ``warnings`` to
``<folder>/logs/activessf.log`` instead of the terminal (``--verbose`` keeps them on the
terminal too). ``Bar`` is a tqdm bar when stdout is a terminal and a plain line every
``PLAIN_EVERY_S`` seconds otherwise (CI, ``ray job logs``), so logs stay short and readable.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from typing import Any, Iterable, Iterator

from tqdm import tqdm

# Loggers whose records are Ray's (and its helpers') business, not the user's: their terminal
# handlers are swapped for the run's log file.
NOISY_LOGGERS = ("ray", "ray.data", "ray.train", "ray.tune", "ray.serve", "mlflow", "alembic", "py.warnings")
LOG_FILE = "activessf.log"
# Plain (non-terminal) progress: one line at most this often, so a CI log stays short.
PLAIN_EVERY_S = 30.0

_verbose = False
_details = True
_log_path: str | None = None
_log_folder: str | None = None
_label: str | None = None
_swapped: list[tuple[logging.Logger, list[logging.Handler], bool]] = []
_handler: logging.Handler | None = None
_open_bars: list["Bar"] = []


def configure(verbose: bool = False) -> None:
    """Start a command: ``verbose`` keeps Ray's output on the terminal; details are shown."""
    global _verbose, _details, _label, _log_folder
    restore_logs()
    _verbose, _details, _label, _log_folder = verbose, True, None, None


def verbose() -> bool:
    """Whether ``--verbose`` is on (Ray's logs and worker output on the terminal)."""
    return _verbose


def live() -> bool:
    """Live bars only on a terminal; pipes, files, CI and ``ray job logs`` get plain lines."""
    return sys.stdout.isatty() and os.environ.get("TERM", "") != "dumb"


def hide_details(hidden: bool = True) -> None:
    """Inside ``activessf run`` the stages' own summary lines go to the log only (the stage
    loop prints one result line per stage instead)."""
    global _details
    _details = not hidden


def log_path() -> str | None:
    """The log file ``route_logs`` opened, or None."""
    return _log_path


def _terminal(handler: logging.Handler) -> bool:
    return isinstance(handler, logging.StreamHandler) and not isinstance(handler, logging.FileHandler)


def set_log_folder(folder: str | None) -> None:
    """The folder whose ``logs/`` ``route_logs`` writes to; nothing is created yet (a command
    that fails its checks leaves no folder behind)."""
    global _log_folder
    _log_folder = folder if folder and "://" not in folder else None


def set_label(text: str | None) -> None:
    """What the running stage's bar is called (``[3/13] features_pool``); None: the command's."""
    global _label
    _label = text


def label(default: str) -> str:
    """The bar label ``set_label`` gave, else ``default``."""
    return _label or default


def route_logs(folder: str | None = None) -> str | None:
    """Send Ray's, MLflow's and warnings' Python log records to ``<folder>/logs/activessf.log``.

    Args:
        folder: The run folder; default the one ``set_log_folder`` named (None: do nothing,
            as when a library caller or a test starts Ray).

    Returns:
        The log file's path (named in error messages), or None.
    """
    global _log_path, _handler
    folder = folder or _log_folder
    if folder is None or _handler is not None:
        return _log_path
    os.makedirs(os.path.join(folder, "logs"), exist_ok=True)
    _log_path = os.path.join(os.path.abspath(folder), "logs", LOG_FILE)
    _handler = logging.FileHandler(_log_path)
    _handler.setLevel(logging.INFO)  # Ray Data's logger is at DEBUG for its own session file
    _handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.captureWarnings(True)
    for name in NOISY_LOGGERS:
        logger = logging.getLogger(name)
        kept = logger.handlers if _verbose else [h for h in logger.handlers if not _terminal(h)]
        _swapped.append((logger, list(logger.handlers), logger.propagate))
        logger.handlers = kept + [_handler]
        # py.warnings and mlflow have no handler of their own: stop them reaching the root's.
        logger.propagate = False
        if logger.level == logging.NOTSET:
            logger.setLevel(logging.INFO)
    return _log_path


def restore_logs() -> None:
    """Undo ``route_logs`` (the end of a command; tests run many in one process)."""
    global _handler, _log_path
    for logger, handlers, propagate in reversed(_swapped):
        logger.handlers, logger.propagate = handlers, propagate
    _swapped.clear()
    if _handler is not None:
        _handler.close()
        _handler = _log_path = None
        logging.captureWarnings(False)


def reroute_logs() -> None:
    """Swap terminal handlers added since ``route_logs`` (Ray configures some loggers lazily)."""
    if _handler is None or _verbose:
        return
    for name in NOISY_LOGGERS:
        logger = logging.getLogger(name)
        logger.handlers = [h for h in logger.handlers if not _terminal(h)] or [_handler]
        if _handler not in logger.handlers:
            logger.handlers.append(_handler)


def log(text: str) -> None:
    """One line for the log file only."""
    if _handler is not None:
        _handler.handle(logging.LogRecord("activessf", logging.INFO, __file__, 0, text, None, None))


def say(text: str, err: bool = False) -> None:
    """Print a line of ours (above any live bar) and log it."""
    stream = sys.stderr if err else sys.stdout
    if _open_bars and live():
        tqdm.write(text, file=stream)
    else:
        print(text, file=stream, flush=True)
    log(text)


def detail(text: str, err: bool = True) -> None:
    """A stage's own summary line: printed when the stage runs on its own, logged always."""
    if _details:
        say(text, err=err)
    else:
        log(text)


class Bar:
    """Progress of one stage: tqdm on a terminal, a plain line every ``PLAIN_EVERY_S`` otherwise.

    Args:
        desc: What is counted, e.g. ``"[1/13] regions_pool"``.
        total: Units expected (None: unknown).
        unit: ``"img"``, ``"epoch"``, ...
    """

    def __init__(self, desc: str, total: int | None, unit: str = "img") -> None:
        self.desc, self.total, self.unit, self.n = desc, total, unit, 0
        self.postfix: dict[str, Any] = {}
        self._start = self._last = time.monotonic()
        self._tqdm = None
        if live():
            self._tqdm = tqdm(total=total, desc=desc, unit=unit, file=sys.stdout, leave=False, dynamic_ncols=True,
                              mininterval=0.5)
        _open_bars.append(self)

    def update(self, n: int = 1, **postfix: Any) -> None:
        """Add ``n`` units done; ``postfix`` (e.g. ``loss=0.41``) is shown beside the bar."""
        self.n += n
        self.postfix.update(postfix)
        if self._tqdm is not None:
            if postfix:
                self._tqdm.set_postfix(self.postfix, refresh=False)
            self._tqdm.update(n)
        elif time.monotonic() - self._last >= PLAIN_EVERY_S:
            self._last = time.monotonic()
            say(self.plain_line())

    def plain_line(self) -> str:
        """``desc: 40/120 img, 3.1 img/s, ETA 26 s, loss=0.41``."""
        spent = max(time.monotonic() - self._start, 1e-9)
        rate = self.n / spent
        parts = [f"{self.n}/{self.total if self.total is not None else '?'} {self.unit}", f"{rate:.2g} {self.unit}/s"]
        if self.total and rate > 0:
            parts.append(f"ETA {max(0.0, (self.total - self.n) / rate):.0f} s")
        parts += [f"{k}={_fmt(v)}" for k, v in self.postfix.items()]
        return f"{self.desc}: " + ", ".join(parts)

    def close(self) -> None:
        """Remove the bar (the stage's result line takes its place)."""
        if self._tqdm is not None:
            self._tqdm.close()
            self._tqdm = None
        if self in _open_bars:
            _open_bars.remove(self)

    def __enter__(self) -> "Bar":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _fmt(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def track_rows(batches: Iterable[Any], desc: str, total: int, unit: str = "img") -> Iterator[Any]:
    """Yield ``batches`` (tables or dicts of columns), counting their rows on a ``Bar``."""
    with Bar(desc, total, unit) as bar:
        for batch in batches:
            bar.update(_rows(batch))
            yield batch


def _rows(batch: Any) -> int:
    if hasattr(batch, "num_rows"):
        return int(batch.num_rows)
    if isinstance(batch, dict) and batch:
        return len(next(iter(batch.values())))
    return len(batch)
