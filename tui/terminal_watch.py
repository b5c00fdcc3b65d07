"""Close the dashboard when its terminal goes away, instead of spinning on a dead input.

Textual's input thread treats end-of-file as "no data yet" and selects again at once, so a
dashboard whose terminal disappears (``teamaccess demo </dev/null``; a tmux killed while the
dashboard runs under ``su``, where no SIGHUP arrives) burns a whole core for ever. Two guards:
the dashboard refuses to start without a terminal on both ends, and a watcher thread polls the
terminal for a hang-up and ends the app (or, if the app can't even end, the process).
"""

from __future__ import annotations

import os
import select
import sys
import threading
from collections.abc import Callable

#: How often the watcher looks (s), and how long the app may take to close after a hang-up.
POLL_SECONDS = 0.25
GRACE_SECONDS = 3.0

GONE_MESSAGE = "teamaccess: the terminal went away; the dashboard closed."


def missing_terminal() -> str | None:
    """Why the dashboard can't run here (a one-line message), or None when it can."""
    for name, stream in (("standard input", sys.stdin), ("standard output", sys.stdout)):
        try:
            ok = stream is not None and os.isatty(stream.fileno())
        except (OSError, ValueError, AttributeError):
            ok = False
        if not ok:
            return (
                f"The dashboard needs a terminal, and {name} is not one: run teamaccess in a "
                "terminal, or use a command (teamaccess help)."
            )
    return None


def hung_up(fd: int) -> bool:
    """Whether the terminal on ``fd`` has hung up (its other side closed) or is no longer open."""
    poller = select.poll()
    poller.register(fd, select.POLLIN | select.POLLPRI)
    try:
        events = poller.poll(0)
    except OSError:
        return True
    if any(mask & (select.POLLHUP | select.POLLERR | select.POLLNVAL) for _fd, mask in events):
        return True
    try:
        return not os.isatty(fd)
    except OSError:
        return True


class TerminalWatch:
    """A daemon thread that ends the dashboard once its terminal hangs up."""

    def __init__(self, fd: int, close_app: Callable[[], None]) -> None:
        self.fd = fd
        self.close_app = close_app
        self.gone = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="terminal-watch", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.wait(POLL_SECONDS):
            if hung_up(self.fd):
                self.gone.set()
                break
        else:
            return
        # The app is asked to close from a thread of its own: if its loop is wedged writing to
        # the dead terminal, the request must not wedge this watcher too.
        threading.Thread(target=self._ask_to_close, daemon=True).start()
        if not self._stop.wait(GRACE_SECONDS):
            # Still running: nothing more can be shown anywhere; leave rather than spin.
            os._exit(1)

    def _ask_to_close(self) -> None:
        try:
            self.close_app()
        except Exception:  # noqa: BLE001 - the app is already gone, or going
            pass


def say_gone() -> None:
    """The one-line goodbye, on standard error if it is still there."""
    try:
        print(GONE_MESSAGE, file=sys.stderr, flush=True)
    except (OSError, ValueError):
        pass
