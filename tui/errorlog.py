"""Unexpected errors, written with their traceback to a log file the user can find later.

The faces show every error as one line; for an error the store did not expect (not a
:class:`~teamaccess.store.errors.StoreError`) that line can't hold the traceback a bug report
needs, so :func:`unexpected` writes it to ``teamaccess.log`` in the user's data folder (beside
the default database; ``$XDG_DATA_HOME/teamaccess`` on Linux) and the line says where.
The log is rotated (three files of 1 MiB at most) and readable by its owner only: tracebacks can
quote emails and team names.
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import threading
from pathlib import Path

from teamaccess.tui.text import plain

_LOG_NAME = "teamaccess.log"
_MAX_BYTES = 1 << 20
_BACKUPS = 3

_logger = logging.getLogger("teamaccess.unexpected")
_logger.propagate = False  # never onto a console handler someone else configured
_setup_lock = threading.Lock()


def log_path() -> Path:
    """Where unexpected errors are written: the user's data folder, as platformdirs names it."""
    from platformdirs import user_data_dir

    return Path(user_data_dir("teamaccess", appauthor=False)) / _LOG_NAME


class _PrivateRotatingHandler(logging.handlers.RotatingFileHandler):
    """A rotating log whose every file (the first and each one after a rollover) is mode 0600."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600))
        os.chmod(path, 0o600)  # a file made earlier by someone else's umask
        super().__init__(path, maxBytes=_MAX_BYTES, backupCount=_BACKUPS, encoding="utf-8")

    def doRollover(self) -> None:  # noqa: N802 - logging's own name
        super().doRollover()
        os.chmod(self.baseFilename, 0o600)


def _handler_for(path: Path) -> logging.Handler:
    """The handler writing to ``path``, made on first use (and again if the path moved, as tests
    move the data folder)."""
    with _setup_lock:
        for handler in _logger.handlers:
            if isinstance(handler, _PrivateRotatingHandler) and Path(handler.baseFilename) == path:
                return handler
        for handler in list(_logger.handlers):
            _logger.removeHandler(handler)
            handler.close()
        handler = _PrivateRotatingHandler(path)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        _logger.addHandler(handler)
        _logger.setLevel(logging.ERROR)
        return handler


def unexpected(err: BaseException, doing: str) -> str:
    """Log ``err`` with its traceback, and return the one line to show the user.

    ``doing`` says, in the log, what was being done ("reading the roster"). The line names the
    error and the log file, or says why the log could not be written; it raises nothing.
    """
    first = plain(str(err).splitlines()[0] if str(err) else "", one_line=True)[:200]
    what = f"unexpected {type(err).__name__}" + (f": {first}" if first else "")
    try:
        path = log_path()
        _handler_for(path)
        _logger.error("while %s", doing, exc_info=(type(err), err, err.__traceback__))
    except OSError as log_err:
        return f"{what} (please report this; the log could not be written: {log_err.strerror or log_err})"
    return f"{what} (please report this; details in {plain(path, one_line=True)})"


def log_quietly(err: BaseException, doing: str) -> None:
    """Log ``err`` where nothing is shown to the user (shell completion, a background poll)."""
    unexpected(err, doing)
