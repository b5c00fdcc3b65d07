"""Garbage collection timed for the speed targets: the one place that changes CPython's collector.

Two changes, each kept because a target needs it (measurements in tests/bench/RESULTS.md):

1. The command line imports with collection off, then freezes what the import made
   (:func:`import_frozen`). Importing SQLAlchemy, SQLModel and click leaves ~65,000 objects that
   live as long as the process; collecting while they are made frees nothing (one full pass,
   ~30 ms) and every later full pass would walk them again (50 ms in the middle of
   ``access --app`` on a 10,000-user team). Whatever a command allocates is collected as usual.
   This is what keeps the CLI within 1.3x of the plain import floor.

2. The dashboard's full collections wait for a moment nobody is typing (:class:`IdleCollector`),
   which keeps the access pane under 150 ms. A 10,000-user team loaded in the dashboard is about 150,000 live Python objects, and CPython's
full collection (of the oldest generation) walks every one of them: 75-130 ms on the benchmark
machine. It runs whenever enough objects have survived since the last one, which is exactly
when a list was loaded or an access pane opened, so it landed on the very key that caused it.

:class:`IdleCollector` raises the oldest generation's threshold tenfold, so that CPython starts
a full collection by itself only as a safety valve, and runs the collection it would have run
(after as many middle-generation collections as CPython's default threshold) from a timer once
there has been no input for a second. Younger generations are collected as usual. The
thresholds are put back when the dashboard exits.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def import_frozen() -> Iterator[None]:
    """Import with collection off, then freeze what was imported out of later collections."""
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        gc.enable()


class IdleCollector:
    """Full collections at idle moments; see the module's docstring."""

    #: Seconds without a key or mouse event before a full collection may run.
    IDLE = 1.0
    #: Middle-generation collections since the last full one that make a full one due
    #: (CPython's default threshold for the oldest generation).
    DUE = 10
    #: ...and after how many CPython does one anyway, idle or not.
    CAP = 100

    def __init__(self) -> None:
        self.last_input = time.monotonic()
        self.collections = 0
        self._saved: tuple[int, int, int] | None = None

    def start(self) -> None:
        """Take over the oldest generation's timing."""
        if self._saved is None:
            self._saved = gc.get_threshold()
            young, middle, _old = self._saved
            gc.set_threshold(young, middle, self.CAP)

    def stop(self) -> None:
        """Give CPython back its own thresholds."""
        if self._saved is not None:
            gc.set_threshold(*self._saved)
            self._saved = None

    def saw_input(self) -> None:
        """A key or mouse event arrived: someone may be waiting for the next frame."""
        self.last_input = time.monotonic()

    def due(self) -> bool:
        """Whether a full collection is due (as CPython's default thresholds would have it)."""
        return gc.get_count()[2] >= self.DUE

    def tick(self) -> bool:
        """Run a due full collection if nobody has typed for a while; True if one ran."""
        if self._saved is None or not self.due():
            return False
        if time.monotonic() - self.last_input < self.IDLE:
            return False
        gc.collect()
        self.collections += 1
        return True
