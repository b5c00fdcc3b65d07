"""Benchmark rows for watching changes on PostgreSQL (issue 16): what idle watching costs the
server, and how soon a commit reaches a second watcher and a second dashboard.

Run alone (from the repository root)::

    .venv/bin/python tests/bench/run.py --only watch [--watch-events 10000,1000000]
        [--watch-watchers 1,20] [--watch-seconds 10] [--watch-commits 20] [--pg-url URL]

It uses the PostgreSQL server at ``--pg-url`` / ``TEAMACCESS_TEST_PG_URL`` (on this machine: the
server's processes are read from /proc), else starts a throwaway one from the local PostgreSQL
binaries, as the tests do. For each audit-log size it builds the demo team in a fresh schema,
fills the log to that size (VACUUM ANALYZE after, as a live server's autovacuum would), then:

- idle cost: N watchers, each with its own Database and so its own connection (as N dashboards
  in N processes have), wait for changes while nothing happens; the CPU time of all the
  server's processes (utime + stime from /proc/PID/stat, the postmaster and its children) per
  second of waiting, in % of one core. Beside it the old way, the dashboard's poll of
  ``SELECT count(*) FROM audit_event`` twice a second, and the idle server with no watcher.
- latency: with those N watchers still waiting, a second process (a watcher, or a headless
  dashboard) is told of each of ``--watch-commits`` changes committed here; the time from the
  start of the writing operation until that process woke (or until its roster showed the
  change), on the machine-wide monotonic clock, median and worst.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # postgres_server, as the tests use it

TEAM = "acme-widgets"
ADMIN = "ada@acme.com"
#: The user whose MFA the latency rounds toggle: a change every roster shows.
TOGGLED = "ken@acme.com"
POLL_INTERVAL = 0.5  # what the dashboard polled at before LISTEN/NOTIFY
CPU_TARGET = 2.0  # % of one core, 20 idle watchers at the largest log
LATENCY_TARGET_MS = 100.0


# -- the server ------------------------------------------------------------------------------------


@contextlib.contextmanager
def server(pg_url: str | None) -> Iterator[str]:
    """A PostgreSQL database URL: the one given, or a throwaway server's for the duration."""
    import postgres_server

    url = pg_url or os.environ.get(postgres_server.URL_ENV)
    if url:
        yield url
        return
    bindir = postgres_server.find_bindir()
    if bindir is None:
        raise RuntimeError(postgres_server.HOW_TO_ENABLE)
    throwaway = postgres_server.ThrowawayServer(bindir)
    try:
        yield throwaway.start()
    finally:
        throwaway.stop()


def _stat(pid: int) -> tuple[int, int] | None:
    """(parent pid, utime + stime in clock ticks) of a process, None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            raw = f.read()
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2:].split()  # after the command name, which may hold spaces
    return int(fields[1]), int(fields[11]) + int(fields[12])


def postmaster_of(db) -> int:
    """The pid of the server's postmaster: the parent of one of our backends."""
    from sqlalchemy import text

    with db.engine.connect() as conn:
        backend = int(conn.execute(text("SELECT pg_backend_pid()")).scalar_one())
    stat = _stat(backend)
    if stat is None:
        raise RuntimeError("the PostgreSQL server is not on this machine: its CPU can't be read")
    return stat[0]


def server_cpu_seconds(postmaster: int) -> float:
    """CPU seconds used so far by the postmaster and every process it started."""
    ticks = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        stat = _stat(int(entry))
        if stat is not None and (int(entry) == postmaster or stat[0] == postmaster):
            ticks += stat[1]
    return ticks / os.sysconf("SC_CLK_TCK")


# -- the database ----------------------------------------------------------------------------------


def prepare(base_url: str, events: int):
    """A fresh schema with the demo team and an audit log of ``events`` events; (url, schema)."""
    import postgres_server
    from sqlalchemy import text
    from teamaccess.store.db import Database
    from teamaccess.store.demo import build_demo
    from teamaccess.store.watch import NOTIFY_TRIGGER

    url, schema = postgres_server.fresh_schema_url(base_url)
    db = Database(url)
    try:
        build_demo(db)
        with db.engine.begin() as conn:
            have = conn.execute(text("SELECT count(*) FROM audit_event")).scalar_one()
            # A million announcements nobody listens to would only fill the queue: off meanwhile.
            conn.execute(text(f"ALTER TABLE audit_event DISABLE TRIGGER {NOTIFY_TRIGGER}"))
            conn.execute(text(
                "INSERT INTO audit_event (at, actor_email, action, team_id, team_name, app_name, "
                "outcome) SELECT now() - make_interval(secs => g), 'history@acme.com', 'app.lock', "
                "t.id, t.name, 'test', 'ok' FROM team t, generate_series(1, :n) g "
                "WHERE t.name = :team"), {"n": max(0, events - have), "team": TEAM})
            conn.execute(text(f"ALTER TABLE audit_event ENABLE TRIGGER {NOTIFY_TRIGGER}"))
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE audit_event"))
    finally:
        db.close()
    return url, schema


# -- idle watchers -----------------------------------------------------------------------------------


class Watchers:
    """``count`` watchers of the team, each on its own Database (its own connections)."""

    def __init__(self, url: str, count: int, mode: str) -> None:
        from teamaccess.store.db import Database

        self.mode = mode
        self.stop = threading.Event()
        self.dbs = [Database(url) for _ in range(count)]
        self.watchers = []
        self.threads = []
        for db in self.dbs:
            if mode == "notify":
                watcher = db.watcher([TEAM], ADMIN)
                self.watchers.append(watcher)
                target = self._waiting(watcher)
            else:
                target = self._polling(db)
            thread = threading.Thread(target=target, daemon=True)
            thread.start()
            self.threads.append(thread)
        if mode == "notify" and not all(w.listening for w in self.watchers):
            raise RuntimeError("a watcher is not listening: the notify trigger is missing?")

    def _waiting(self, watcher):
        def run() -> None:
            while not self.stop.is_set():
                watcher.wait(timeout=1.0)
        return run

    def _polling(self, db):
        def run() -> None:  # the dashboard's watch loop before LISTEN/NOTIFY
            last = db.change_token()
            while not self.stop.wait(POLL_INTERVAL):
                token = db.change_token()
                if token != last:
                    last = token
        return run

    def close(self) -> None:
        self.stop.set()
        for watcher in self.watchers:
            watcher.close()
        for thread in self.threads:
            thread.join(timeout=10)
        for db in self.dbs:
            db.close()


def idle_cpu_percent(postmaster: int, seconds: float) -> float:
    """The server's CPU time over ``seconds`` of waiting, in % of one core."""
    time.sleep(min(1.0, seconds))  # connections settle (their first queries) before the window
    before, start = server_cpu_seconds(postmaster), time.monotonic()
    time.sleep(seconds)
    used, took = server_cpu_seconds(postmaster) - before, time.monotonic() - start
    return 100.0 * used / took


# -- latency ------------------------------------------------------------------------------------------


def latencies(url: str, mode: str, commits: int) -> list[float]:
    """Milliseconds from the start of each of ``commits`` changes to a second process noticing."""
    from teamaccess.store import ops
    from teamaccess.store.db import Database

    probe = subprocess.Popen([sys.executable, str(Path(__file__)), "--probe", mode, url],
                             cwd=ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    db = Database(url)
    out: list[float] = []
    try:
        line = probe.stdout.readline()
        if line.strip() != "ready":
            raise RuntimeError(f"latency probe ({mode}) failed: {probe.stderr.read()[-2000:]}")
        from sqlalchemy import text

        with db.read() as s:
            mfa = bool(s.execute(text("SELECT mfa_enabled FROM account WHERE email = :e"),
                                 {"e": TOGGLED}).scalar_one())
        for _ in range(commits):
            # At a random moment: a poller's wake-up is somewhere in its interval, as in life.
            time.sleep(random.uniform(0.05, POLL_INTERVAL + 0.1))
            mfa = not mfa
            started = time.monotonic()
            ops.set_mfa(db, ops.Actor(TOGGLED, "bench"), mfa)
            woke = probe.stdout.readline()
            if not woke:
                raise RuntimeError(f"latency probe ({mode}) ended: {probe.stderr.read()[-2000:]}")
            out.append((float(woke) - started) * 1000)
    finally:
        probe.terminate()
        probe.wait(timeout=30)
        db.close()
    return out


def _probe_store(url: str, mode: str) -> None:
    from teamaccess.store.db import Database

    db = Database(url)
    if mode == "notify":
        watcher = db.watcher([TEAM], ADMIN)
        print("ready", flush=True)
        while True:
            if watcher.wait(timeout=60):
                print(repr(time.monotonic()), flush=True)
    last = db.change_token()
    print("ready", flush=True)
    while True:
        time.sleep(POLL_INTERVAL)
        token = db.change_token()
        if token != last:
            last = token
            print(repr(time.monotonic()), flush=True)


def _probe_dashboard(url: str) -> None:
    """A headless dashboard on the roster; prints when the toggled user's row changes."""
    from teamaccess.store.db import Database
    from teamaccess.store.ops import Actor
    from teamaccess.tui.app import TeamAccessApp

    db = Database(url)

    async def run() -> None:
        app = TeamAccessApp(db, Actor(ADMIN, "bench"), TEAM, watch=True)
        async with app.run_test(headless=True, size=(120, 40)):
            def row() -> str | None:
                try:
                    table = app.main.active_view.table
                    return str(table.get_row(TOGGLED))
                except Exception:  # noqa: BLE001 - not loaded yet
                    return None

            while row() is None or not app.settled:
                await asyncio.sleep(0.01)
            if app.watcher is None or not app.watcher.listening:
                raise RuntimeError("the dashboard is not listening")
            shown = row()
            print("ready", flush=True)
            while True:
                await asyncio.sleep(0.002)
                now = row()
                if now is not None and now != shown:
                    shown = now
                    print(repr(time.monotonic()), flush=True)

    asyncio.run(run())


# -- the rows -----------------------------------------------------------------------------------------


def _ms(values: Sequence[float]) -> str:
    return f"{statistics.median(values):.0f} / {max(values):.0f} ms"


def run(events_sizes: Sequence[int], watcher_counts: Sequence[int], seconds: float,
        commits: int, pg_url: str | None = None, log=print) -> str:
    """Measure every row at every log size; return the table (Markdown)."""
    import postgres_server
    from teamaccess.store.db import Database

    cells: dict[str, dict[int, str]] = {}
    labels: dict[str, tuple[str, str]] = {}

    def put(key: str, label: str, target: str, events: int, cell: str) -> None:
        labels.setdefault(key, (label, target))
        cells.setdefault(key, {})[events] = cell

    with server(pg_url) as base:
        for events in events_sizes:
            started = time.monotonic()
            url, schema = prepare(base, events)
            probe_db = Database(url)
            postmaster = postmaster_of(probe_db)
            probe_db.close()
            try:
                put("floor", "server CPU with no watcher (its own background work)", "", events,
                    f"{idle_cpu_percent(postmaster, seconds):.2f}%")
                for count in watcher_counts:
                    for mode in ("notify", "poll"):
                        watchers = Watchers(url, count, mode)
                        try:
                            cpu = idle_cpu_percent(postmaster, seconds)
                            lat = latencies(url, mode, commits)
                            if mode == "notify" and count == max(watcher_counts):
                                dash = latencies(url, "dashboard", commits)
                        finally:
                            watchers.close()
                        if mode == "notify":
                            judged = count >= 20 and events == max(events_sizes)
                            verdict = (" ok" if cpu < CPU_TARGET else " **MISS**") if judged else ""
                            put(f"cpu.notify.{count}", f"server CPU, {count} idle watcher(s), "
                                "LISTEN/NOTIFY", f"< {CPU_TARGET:g}% (20 at 1M)" if count >= 20 else "",
                                events, f"{cpu:.2f}%{verdict}")
                            ok = statistics.median(lat) < LATENCY_TARGET_MS
                            put(f"lat.notify.{count}", f"commit to a second watcher waking, "
                                f"{count} other watcher(s), NOTIFY (median / worst)",
                                f"< {LATENCY_TARGET_MS:g} ms", events,
                                _ms(lat) + (" ok" if ok else " **MISS**"))
                            if count == max(watcher_counts):
                                ok = statistics.median(dash) < LATENCY_TARGET_MS
                                put("lat.dashboard", f"commit to a second dashboard showing it, "
                                    f"{count} other watcher(s) (median / worst)",
                                    f"< {LATENCY_TARGET_MS:g} ms", events,
                                    _ms(dash) + (" ok" if ok else " **MISS**"))
                        else:
                            put(f"cpu.poll.{count}", f"before: server CPU, {count} idle "
                                "dashboard(s) polling count(*) every 0.5 s", "", events, f"{cpu:.2f}%")
                            put(f"lat.poll.{count}", f"before: commit to a second poller "
                                f"noticing, {count} other poller(s) (median / worst)", "",
                                events, _ms(lat))
            finally:
                postgres_server.drop_schema(base, schema)
            log(f"[watch {events:,} events] done in {time.monotonic() - started:.1f} s")
    rank = ["cpu.notify", "cpu.poll", "floor", "lat.notify", "lat.dashboard", "lat.poll"]
    order = sorted(labels, key=lambda k: (
        next(i for i, prefix in enumerate(rank) if k.startswith(prefix)),
        int(k.rsplit(".", 1)[-1]) if k.rsplit(".", 1)[-1].isdigit() else 0))
    head = ("| watching on PostgreSQL | target | "
            + " | ".join(f"{_short(e)} audit events" for e in events_sizes) + " |")
    lines = [head, "|---|---|" + "---|" * len(events_sizes)]
    for key in order:
        label, target = labels[key]
        lines.append(f"| {label} | {target} | "
                     + " | ".join(cells[key].get(e, "") for e in events_sizes) + " |")
    note = (f"\nIdle windows of {seconds:g} s; CPU of all the server's processes in % of one "
            f"core; latency over {commits} changes (MFA toggles) from the start of the write "
            "to the other process noticing, on the machine-wide monotonic clock.\n")
    return "\n".join(lines) + "\n" + note


def _short(n: int) -> str:
    if n >= 1_000_000 and n % 1_000_000 == 0:
        return f"{n // 1_000_000}M"
    if n >= 1000 and n % 1000 == 0:
        return f"{n // 1000}k"
    return str(n)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--probe", nargs=2, metavar=("MODE", "URL"), help=argparse.SUPPRESS)
    args, rest = parser.parse_known_args(argv)
    if args.probe:
        mode, url = args.probe
        if mode == "dashboard":
            _probe_dashboard(url)
        else:
            _probe_store(url, mode)
        return
    from run import main as run_main  # the benchmark's own entry point

    run_main(["--only", "watch", *rest])


if __name__ == "__main__":
    main()
