"""One headless run of the dashboard for the benchmark; prints one line of JSON and exits.

Run by tests/bench/run.py in a fresh process per run, with ``TEAMACCESS_DB`` and
``TEAMACCESS_AS`` naming the big team's database and admin, and ``TEAMACCESS_BENCH_SPAWNED``
holding the parent's ``time.time()`` just before the spawn (so launch time includes starting
Python and importing Textual). It drives the dashboard as a person would, with Textual's Pilot:

1. launch: until the app says the roster showed its first rows (``app.roster_shown_at``, the
   dashboard's documented hook for this) and the screen has processed what that queued;
2. roster: ``/`` then a filter typed and erased one key at a time; each key is timed from its
   arrival until the view has re-filtered for it and the screen has processed what that
   queued (see :func:`timed_key`);
3. apps: ``2``, wait for the list, then the same typing on the apps filter;
4. access pane: filter the apps to the open app, ``enter`` on it, timed until its access pane
   shows rows; then ``store.queries.app_access`` alone, in this process, as the floor;
5. peak memory: this process's high-water resident set (VmHWM) at the end.

With ``--bare`` it runs the floors instead: a Textual app with one empty DataTable, timed to its
first screen, with the same keys pressed where nothing listens.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import sys
import time

SPAWNED = float(os.environ.get("TEAMACCESS_BENCH_SPAWNED") or time.time())

#: Typed one key at a time, then erased: narrowing and widening the match, as a person does.
ROSTER_QUERY = "user0000"
APPS_QUERY = "app-0000"


#: CPU milliseconds (every thread of this process) of each key timed by :func:`timed_key`, so
#: that a run on a busy machine can be told apart from a slow dashboard.
CPU_MS: list[float] = []


def wall_of(perf: float) -> float:
    """The ``time.time()`` of a past ``time.perf_counter()`` reading."""
    return time.time() - (time.perf_counter() - perf)


def peak_rss_mb() -> float:
    """This process's peak resident memory, in MiB.

    VmHWM, not ``ru_maxrss``: Linux carries ru_maxrss over from the parent through fork and
    exec, so a child of a big benchmark runner would report the runner's peak, not its own.
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


async def until(pilot, ready, what: str, timeout: float = 120.0) -> None:
    """Wait until ``ready()`` holds, then until the screen has processed what is queued.

    The check is a bare 2 ms sleep, not ``pilot.pause()``: pausing does work on the UI thread
    that would compete for the GIL with the dashboard's own worker threads and slow them.
    """
    deadline = time.perf_counter() + timeout
    while not ready():
        if time.perf_counter() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        await asyncio.sleep(0.002)
    await pilot._wait_for_screen()


def send_key(app, key: str) -> None:
    """Queue one key event the way a terminal's input does (and as Pilot.press does inside).

    Pilot.press then waits for the process to look idle, in steps of 20 ms, which would bury a
    50 ms target in the waiting; the caller times the work itself instead.
    """
    import unicodedata

    from textual import events
    from textual.keys import REPLACED_KEYS, _character_to_key, _get_unicode_name_from_key

    if len(key) == 1 and not key.isalnum():
        key = _character_to_key(key)
    try:
        char = unicodedata.lookup(_get_unicode_name_from_key(REPLACED_KEYS.get(key, key)))
    except KeyError:
        char = key if len(key) == 1 else None
    event = events.Key(key, char)
    event.set_sender(app)
    app._driver.send_message(event)


async def timed_key(pilot, key: str, handled) -> float:
    """Milliseconds from a key's arrival until ``handled()`` and every message it caused on
    the screen (layout, refresh of the table) have been processed."""
    start, cpu = time.perf_counter(), time.process_time()
    send_key(pilot.app, key)
    deadline = start + 60
    while not handled():
        if time.perf_counter() > deadline:
            raise TimeoutError(f"key {key!r} was not handled")
        await asyncio.sleep(0)
    await pilot._wait_for_screen()
    CPU_MS.append((time.process_time() - cpu) * 1000)
    return (time.perf_counter() - start) * 1000


async def type_timed(pilot, view, query: str) -> list[float]:
    """Type ``query`` into the view's filter and erase it, timing each key (ms).

    A key counts as done when the view has re-filtered for it (its ``after_refilter`` hook ran
    with the new text) and the screen has processed what that queued.
    """
    refiltered: list[str] = []
    original = view.after_refilter

    def after_refilter() -> None:
        original()
        refiltered.append(view.filter_text)

    view.after_refilter = after_refilter
    keys = [*query, *["backspace"] * len(query)]
    typed = ""
    out = []
    try:
        for key in keys:
            typed = typed[:-1] if key == "backspace" else typed + key
            refiltered.clear()
            out.append(await timed_key(pilot, key, lambda t=typed: t in refiltered))
            if typed and view.table.row_count == 0:
                raise RuntimeError(f"the filter {typed!r} matched nothing")
    finally:
        view.after_refilter = original
    return out


async def run_full(team: str, app_name: str) -> dict:
    from teamaccess.store import queries
    from teamaccess.store.db import Database
    from teamaccess.store.ops import Actor
    from teamaccess.tui.app import TeamAccessApp
    from teamaccess.tui.screens.access import AccessScreen

    db = Database(os.environ["TEAMACCESS_DB"])
    app = TeamAccessApp(db, Actor(os.environ["TEAMACCESS_AS"], "bench"), team)
    async with app.run_test(headless=True, size=(120, 40)) as pilot:
        await until(pilot, lambda: app.roster_shown_at is not None, "the roster's first rows")
        # Counted once the screen has also processed what showing the rows queued (layout,
        # refresh), a little after the app's own mark.
        first_rows = time.time() - SPAWNED
        first_rows_cpu = time.process_time()
        first_rows_hook = wall_of(app.roster_shown_at) - SPAWNED
        roster = app.main.view("roster")
        if roster.table.row_count == 0:
            raise RuntimeError("the roster showed no rows")
        await until(pilot, lambda: app.settled, "the dashboard to settle")
        await pilot.press("slash")
        CPU_MS.clear()
        roster_keys = await type_timed(pilot, roster, ROSTER_QUERY)
        roster_cpu = list(CPU_MS)
        await pilot.press("escape")

        await pilot.press("2")
        apps = app.main.view("apps")
        await until(pilot, lambda: apps.loaded and not apps.pending and app.settled,
                    "the apps list")
        await pilot.press("slash")
        CPU_MS.clear()
        apps_keys = await type_timed(pilot, apps, APPS_QUERY)
        apps_cpu = list(CPU_MS)
        short = app_name.split("-app-")[-1]
        await pilot.press(*f"app-{short}", "enter")
        await until(pilot, lambda: apps.table.row_count == 1 and not apps.pending,
                    f"the apps list filtered to {app_name}")
        start, cpu = time.perf_counter(), time.process_time()
        send_key(app, "enter")
        await until(pilot, lambda: isinstance(app.screen, AccessScreen), "the access pane")
        pane = app.screen.view
        await until(pilot, lambda: pane.loaded and not pane.pending, "the access pane's rows")
        pane_ms = (time.perf_counter() - start) * 1000
        pane_cpu = (time.process_time() - cpu) * 1000
        if pane.refusal is not None or pane.table.row_count == 0:
            raise RuntimeError(f"the access pane shows no rows: {pane.refusal}")
        pane_rows = len(pane.items)
        query_ms, query_cpu = [], []
        for _ in range(3):
            start, cpu = time.perf_counter(), time.process_time()
            queries.app_access(db, app.actor.email, app_name)
            query_ms.append((time.perf_counter() - start) * 1000)
            query_cpu.append((time.process_time() - cpu) * 1000)
        rss = peak_rss_mb()
    db.close()
    return {
        "first_rows_s": first_rows,
        "first_rows_cpu_s": first_rows_cpu,
        "first_rows_hook_s": first_rows_hook,
        "roster_key_ms": statistics.median(roster_keys),
        "roster_key_cpu_ms": statistics.median(roster_cpu),
        "roster_key_worst_ms": max(roster_keys),
        "apps_key_ms": statistics.median(apps_keys),
        "apps_key_cpu_ms": statistics.median(apps_cpu),
        "apps_key_worst_ms": max(apps_keys),
        "access_pane_ms": pane_ms,
        "access_pane_cpu_ms": pane_cpu,
        "access_pane_rows": pane_rows,
        "access_query_ms": statistics.median(query_ms),
        "access_query_cpu_ms": statistics.median(query_cpu),
        "peak_rss_mb": rss,
    }


async def run_bare() -> dict:
    from textual.app import App, ComposeResult
    from textual.widgets import DataTable, Footer, Header

    class Bare(App[None]):
        keys_seen = 0

        def on_key(self) -> None:
            self.keys_seen += 1

        def compose(self) -> ComposeResult:
            yield Header()
            yield DataTable()
            yield Footer()

    app = Bare()
    async with app.run_test(headless=True, size=(120, 40)) as pilot:
        await pilot._wait_for_screen()
        first = time.time() - SPAWNED
        first_cpu = time.process_time()
        keys = []
        CPU_MS.clear()
        for key in [*ROSTER_QUERY, *["backspace"] * len(ROSTER_QUERY)]:
            seen = app.keys_seen
            keys.append(await timed_key(pilot, key, lambda s=seen: app.keys_seen > s))
        rss = peak_rss_mb()
    key_ms, key_cpu = statistics.median(keys), statistics.median(CPU_MS)
    return {"first_rows_s": first, "first_rows_cpu_s": first_cpu,
            "roster_key_ms": key_ms, "roster_key_cpu_ms": key_cpu,
            "apps_key_ms": key_ms, "apps_key_cpu_ms": key_cpu, "peak_rss_mb": rss}


def main() -> None:
    parser = argparse.ArgumentParser(description="One headless dashboard run for the benchmark.")
    parser.add_argument("--team", required=True)
    parser.add_argument("--app", required=True, help="an app whose access pane to open")
    parser.add_argument("--bare", action="store_true", help="measure the floors instead")
    args = parser.parse_args()
    result = asyncio.run(run_bare() if args.bare else run_full(args.team, args.app))
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
