"""The scale benchmark: build large synthetic teams once, time the faces on them, print a table.

Usage (from the repository root; ``python -m tests.bench`` is the same)::

    .venv/bin/python tests/bench/run.py [--sizes 1000,10000,100000] [--runs 5]
                                        [--workdir /tmp/teamaccess-bench] [--out FILE]
                                        [--only cli,tui,store,policy,ssh]
    .venv/bin/python tests/bench/run.py --only watch [--watch-events 10000,1000000] ...

A size N is a team of N users, N/5 apps and 5N grants (10,000 : 2,000 : 50,000), built with
``store.demo.generate`` into ``--workdir`` and reused by later runs (the file name carries a
hash of the schema and the generator, so a change to either builds afresh). Every measurement
is a median over ``--runs`` runs and stands beside its floor, measured in the same run and
interleaved with it so that a noisy neighbour slows both alike; the CLI and dashboard runs
also take turns across the sizes, so that a slow spell does not read as growth:

- CLI listings end to end (a fresh process each) beside starting Python and importing what a
  command needs;
- the dashboard, headless in a fresh process each (tests/bench/tui_probe.py): launch to the
  roster's first rows, one filter keystroke on the roster and on the apps list, opening the
  access pane of an app every team user can view, and peak memory, beside the same process
  running a bare Textual app;
- the store's reads in this process, beside sqlite3 fetching the same rows with no library;
- the policy: decisions per second, and effective permissions with provenance for every user
  of one app, beside calling an empty function as often;
- on demand only (``--only watch``, it needs PostgreSQL and minutes of idle windows): watching
  for changes on PostgreSQL, LISTEN/NOTIFY beside the old polling (tests/bench/bench_watch.py).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import random
import resource
import sqlite3
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
PROBE = HERE / "tui_probe.py"
TEAM = "bigco"
ADMIN = f"user000000@{TEAM}.example.com"
#: An unlocked app: every user of the team can view it, so its access pane lists them all.
OPEN_APP = f"{TEAM}-app-00001"
#: The roster's first row, sorted by email: what "first rows" waits for on an SSH client.
FIRST_EMAIL = f"user000000@{TEAM}.example.com"
#: What a CLI command has to import whatever it does: the floor the targets are judged on.
FLOOR_IMPORTS = "import store.db, store.queries, store.ops, store.identity, click, sqlalchemy.dialects.sqlite"
#: The same imports the way the console script does them (no garbage collection while
#: importing, tui/__main__.py): a stricter floor, shown beside the other for comparison.
FLOOR_IMPORTS_GC_OFF = f"import gc; gc.disable(); {FLOOR_IMPORTS}; gc.freeze(); gc.enable()"


@dataclass
class Measure:
    """One row of the table at one size: a median, its floor, and the target it is held to."""

    key: str
    label: str
    unit: str  # "s", "ms", "MB" or "/s" (higher is better only for "/s")
    value: float
    floor: float | None = None
    floor_label: str = ""
    target: str = ""
    #: whether the target holds (None: no target); judged at every size, reported for 10k
    ok: bool | None = None
    interactive: bool = False  # on the interactive path: must not grow faster than linearly
    flat: bool = False  # the first screen: must not grow at all
    samples: list[float] = field(default_factory=list)
    #: the same measured in CPU time (every thread of the process), with its floor: on a busy
    #: shared machine wall time swings with the neighbours' load, CPU time much less
    cpu: float | None = None
    cpu_floor: float | None = None

    @property
    def ratio(self) -> float | None:
        if not self.floor:
            return None
        return self.floor / self.value if self.unit == "/s" else self.value / self.floor


def team_shape(users: int) -> tuple[int, int, int]:
    """Users, apps and grants of a benchmark team of ``users`` users."""
    return users, max(1, users // 5), users * 5


def median(xs: Sequence[float]) -> float:
    return statistics.median(xs)


# -- the databases -----------------------------------------------------------------------------


def _fingerprint() -> str:
    digest = hashlib.sha256()
    for rel in ("store/models.py", "store/demo.py"):
        digest.update((ROOT / rel).read_bytes())
    return digest.hexdigest()[:10]


def build(workdir: Path, users: int) -> tuple[Path, float | None]:
    """The database of a ``users``-user team, built if missing; and the seconds it took to build.

    A ``.done`` marker is written last, so a build that was interrupted is redone, not reused.
    """
    from teamaccess.store.db import Database
    from teamaccess.store.demo import generate

    n_users, n_apps, n_grants = team_shape(users)
    path = workdir / f"team-{users}-{_fingerprint()}.db"
    done = path.with_suffix(".done")
    if path.exists() and done.exists():
        return path, None
    for stale in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        stale.unlink(missing_ok=True)
    workdir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    db = Database(path)
    generate(db, team=TEAM, users=n_users, apps=n_apps, grants=n_grants)
    db.close()
    took = time.perf_counter() - start
    done.write_text(f"{n_users} {n_apps} {n_grants} {took:.2f}\n")
    return path, took


# -- processes ---------------------------------------------------------------------------------


def child_env(db: Path, workdir: Path) -> dict[str, str]:
    """The environment of every timed process: the big team, its admin, bytecode cached aside.

    The session may set PYTHONDONTWRITEBYTECODE; an installed teamaccess has its bytecode
    compiled, so both the floor and the commands get a bytecode cache (outside the tree).
    """
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.update(
        TEAMACCESS_DB=str(db),
        TEAMACCESS_AS=ADMIN,
        TEAMACCESS_TEAM=TEAM,
        PYTHONPYCACHEPREFIX=str(workdir / "pycache"),
        NO_COLOR="1",
    )
    return env


def cli_command() -> list[str]:
    """How a person starts teamaccess: the installed console script, else ``python -m teamaccess.tui``."""
    script = Path(sys.executable).with_name("teamaccess")
    return [str(script)] if script.exists() else [sys.executable, "-m", "teamaccess.tui"]


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed_run(cmd: Sequence[str], env: dict[str, str], *, capture: bool = False,
              cpu: list[float] | None = None) -> tuple[float, str]:
    """Wall time of one process from spawn to exit; its output when ``capture``.

    Its CPU time (user + system) goes to ``cpu``: on a shared machine wall time swings with
    the neighbours' load, CPU time much less, so the table shows both.
    """
    cpu_before = _children_cpu()
    start = time.perf_counter()
    done = subprocess.run(
        cmd, env=env, cwd=ROOT, stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE if capture else subprocess.DEVNULL, stderr=subprocess.PIPE,
        text=True, timeout=600,
    )
    took = time.perf_counter() - start
    if cpu is not None:
        cpu.append(_children_cpu() - cpu_before)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({done.returncode}): {done.stderr.strip()[-500:]}")
    return took, done.stdout if capture else ""


class CliRuns:
    """CLI listings end to end on one team, beside the import floor; one ``round`` per run."""

    def __init__(self, db: Path, workdir: Path, users: int) -> None:
        self.env = env = child_env(db, workdir)
        n_users, n_apps, _ = team_shape(users)
        self.floor_cmd = [sys.executable, "-c", FLOOR_IMPORTS]
        self.strict_cmd = [sys.executable, "-c", FLOOR_IMPORTS_GC_OFF]
        self.bare_cmd = [sys.executable, "-c", "pass"]
        base = cli_command()
        self.commands = commands = {
            "cli.members": ("CLI `members --json`", [*base, "members", "--team", TEAM, "--json"]),
            "cli.apps": ("CLI `apps`", [*base, "apps", "--team", TEAM]),
            "cli.access": ("CLI `access --app` (every user)", [*base, "access", "--app", OPEN_APP]),
        }
        # Warm up (writes the bytecode cache) and check that each command did the whole job.
        timed_run(self.floor_cmd, env)
        _, out = timed_run(commands["cli.members"][1], env, capture=True)
        members = json.loads(out)
        if len(members) != n_users:
            raise RuntimeError(f"members --json listed {len(members)} users, expected {n_users}")
        _, out = timed_run(commands["cli.apps"][1], env, capture=True)
        if sum(1 for line in out.splitlines() if line.startswith(f"{TEAM}-app-")) != n_apps:
            raise RuntimeError(f"apps did not list the {n_apps} apps:\n{out[:300]}")
        _, out = timed_run(commands["cli.access"][1], env, capture=True)
        if sum(1 for line in out.splitlines() if "@" in line) < n_users:
            raise RuntimeError(f"access --app {OPEN_APP} listed fewer than {n_users} accounts")
        self.samples: dict[str, list[float]] = {k: [] for k in ("floor", "strict", "bare",
                                                                  *commands)}
        self.cpu: dict[str, list[float]] = {k: [] for k in self.samples}

    def round(self) -> None:
        """One run of each command and of the floors, taking turns."""
        samples, cpu, env = self.samples, self.cpu, self.env
        samples["bare"].append(timed_run(self.bare_cmd, env, cpu=cpu["bare"])[0])
        samples["floor"].append(timed_run(self.floor_cmd, env, cpu=cpu["floor"])[0])
        samples["strict"].append(timed_run(self.strict_cmd, env, cpu=cpu["strict"])[0])
        for key, (_label, cmd) in self.commands.items():
            samples[key].append(timed_run(cmd, env, cpu=cpu[key])[0])

    def measures(self) -> list[Measure]:
        samples, cpu = self.samples, self.cpu
        floor = median(samples["floor"])
        out_rows = [
            Measure("cli.python", "starting Python alone (`python -c pass`)", "s",
                    median(samples["bare"]), samples=samples["bare"]),
            Measure("cli.floor_gc_off", "the import floor, collection off while importing "
                    "(as the console script imports)", "s", median(samples["strict"]),
                    floor, "python + store + click imports", samples=samples["strict"],
                    cpu=median(cpu["strict"]), cpu_floor=median(cpu["floor"])),
        ]
        for key, (label, _cmd) in self.commands.items():
            value = median(samples[key])
            out_rows.append(Measure(
                key, label, "s", value, floor, "python + store + click imports", "<= 1.3x floor",
                ok=value <= 1.3 * floor, interactive=True, samples=samples[key],
                cpu=median(cpu[key]), cpu_floor=median(cpu["floor"]),
            ))
        return out_rows


class TuiRuns:
    """The dashboard, headless, on one team, beside a bare Textual app; one fresh process per
    run, one ``round`` per run."""

    def __init__(self, db: Path, workdir: Path) -> None:
        self.env = child_env(db, workdir)
        self.cmd = [sys.executable, str(PROBE), "--team", TEAM, "--app", OPEN_APP]
        timed_run([*self.cmd, "--bare"], self.env)  # warm the bytecode cache
        probe(self.cmd, self.env)
        self.bare: list[dict] = []
        self.full: list[dict] = []

    def round(self) -> None:
        """One run of the bare app, then one of the dashboard."""
        self.bare.append(probe([*self.cmd, "--bare"], self.env))
        self.full.append(probe(self.cmd, self.env))

    def measures(self) -> list[Measure]:
        bare, full = self.bare, self.full

        def med(rows: list[dict], key: str) -> float:
            return median([r[key] for r in rows])

        def cpu(key: str) -> dict:
            return {"cpu": med(full, key), "cpu_floor": med(bare, key) if key in bare[0] else None}

        first = med(full, "first_rows_s")
        roster_key = med(full, "roster_key_ms")
        apps_key = med(full, "apps_key_ms")
        pane = med(full, "access_pane_ms")
        rss = med(full, "peak_rss_mb")
        return [
            Measure("tui.first_rows", "dashboard: launch to the roster's first rows", "s", first,
                    med(bare, "first_rows_s"), "a bare Textual app's first paint", "< 1.5 s",
                    ok=first < 1.5, interactive=True, flat=True,
                    samples=[r["first_rows_s"] for r in full], **cpu("first_rows_cpu_s")),
            Measure("tui.roster_key", "dashboard: one filter keystroke, roster", "ms", roster_key,
                    med(bare, "roster_key_ms"), "a keystroke nothing listens to", "< 50 ms",
                    ok=roster_key < 50, interactive=True, samples=[r["roster_key_ms"] for r in full],
                    **cpu("roster_key_cpu_ms")),
            Measure("tui.apps_key", "dashboard: one filter keystroke, apps", "ms", apps_key,
                    med(bare, "apps_key_ms"), "a keystroke nothing listens to", "< 50 ms",
                    ok=apps_key < 50, interactive=True, samples=[r["apps_key_ms"] for r in full],
                    **cpu("apps_key_cpu_ms")),
            Measure("tui.access_pane", "dashboard: open the access pane (every user can view)", "ms",
                    pane, med(full, "access_query_ms"), "store.queries.app_access alone, same process",
                    "< 150 ms", ok=pane < 150, interactive=True,
                    samples=[r["access_pane_ms"] for r in full], cpu=med(full, "access_pane_cpu_ms"),
                    cpu_floor=med(full, "access_query_cpu_ms")),
            Measure("tui.peak_rss", "dashboard: peak memory (RSS), big team loaded", "MB", rss,
                    med(bare, "peak_rss_mb"), "a bare Textual app", "< 200 MB", ok=rss < 200,
                    samples=[r["peak_rss_mb"] for r in full]),
        ]


class SshRows:
    """`teamaccess serve` over the real ssh client on one team (tests/bench/ssh_bench.py)."""

    def __init__(self, db: Path, workdir: Path, sessions: Sequence[int]) -> None:
        sys.path.insert(0, str(HERE))
        from ssh_bench import SshRuns

        self.runs = SshRuns(db, workdir, ADMIN, FIRST_EMAIL, sessions)

    def round(self) -> None:
        self.runs.round()

    def measures(self) -> list[Measure]:
        runs = self.runs
        try:
            runs.measure_memory()
        finally:
            runs.stop()
        first, echo = median(runs.first), median(runs.echo)
        counts = sorted(runs.memory)
        per_session = (runs.memory[counts[-1]] - runs.memory[counts[0]]) / (counts[-1] - counts[0])
        rows = [
            Measure("ssh.first_rows", "ssh: start to the roster's first rows", "s", first,
                    median(runs.floor), "`ssh HOST --version` (handshake + a forked session)",
                    "< 0.8 s", ok=first < 0.8, interactive=True, flat=True, samples=runs.first),
            Measure("ssh.echo", "ssh: one filter keystroke to its redraw", "ms", echo,
                    target="< 50 ms", ok=echo < 50, interactive=True, samples=runs.echo),
        ]
        for count in counts:
            rows.append(Measure(f"ssh.memory_{count}", f"ssh: server memory (PSS), {count} "
                                f"session{'s' if count > 1 else ''}", "MB", runs.memory[count]))
        rows.append(Measure("ssh.memory_per_session", "ssh: memory per extra session", "MB",
                            per_session))
        return rows


def probe(cmd: Sequence[str], env: dict[str, str]) -> dict:
    """Run tui_probe.py once and read its JSON; launch time counts from the spawn, here."""
    env = dict(env, TEAMACCESS_BENCH_SPAWNED=repr(time.time()))
    done = subprocess.run(cmd, env=env, cwd=ROOT, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise RuntimeError(f"tui probe failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# -- in-process: the store's reads and the policy ---------------------------------------------


def _interleaved(pairs: dict[str, Callable[[], object]], runs: int,
                 cpu: dict[str, list[float]] | None = None) -> dict[str, list[float]]:
    """Wall seconds of each call, the calls taking turns; CPU seconds into ``cpu``."""
    for fn in pairs.values():
        fn()
    out: dict[str, list[float]] = {k: [] for k in pairs}
    for _ in range(runs):
        for key, fn in pairs.items():
            start, cpu_start = time.perf_counter(), time.process_time()
            fn()
            out[key].append(time.perf_counter() - start)
            if cpu is not None:
                cpu.setdefault(key, []).append(time.process_time() - cpu_start)
    return out


def measure_store(db_path: Path, users: int, runs: int) -> list[Measure]:
    """The reads the faces make, beside sqlite3 fetching the same rows bare."""
    from teamaccess.store import queries
    from teamaccess.store.db import Database

    db = Database(db_path)
    raw = sqlite3.connect(db_path)
    team_id = raw.execute("SELECT id FROM team WHERE name = ?", (TEAM,)).fetchone()[0]
    app_id = raw.execute("SELECT id FROM app WHERE name = ?", (OPEN_APP,)).fetchone()[0]

    def raw_roster():
        return raw.execute(
            "SELECT a.email, a.name, m.role, a.mfa_enabled, m.created_at FROM account a "
            "JOIN membership m ON m.account_id = a.id WHERE m.team_id = ? ORDER BY a.email",
            (team_id,),
        ).fetchall()

    def raw_access():
        members = raw.execute(
            "SELECT a.email, m.role, m.created_at, a.mfa_enabled FROM account a "
            "JOIN membership m ON m.account_id = a.id WHERE m.team_id = ?", (team_id,),
        ).fetchall()
        grants = raw.execute(
            "SELECT a.email, g.can_view, g.can_deploy, g.can_operate, g.can_manage, g.origin "
            "FROM grant g JOIN account a ON a.id = g.account_id WHERE g.app_id = ?", (app_id,),
        ).fetchall()
        return members, grants

    cpu_s: dict[str, list[float]] = {}
    try:
        got = _interleaved({
            "roster": lambda: queries.roster(db, ADMIN, TEAM),
            "raw_roster": raw_roster,
            "access": lambda: queries.app_access(db, ADMIN, OPEN_APP),
            "raw_access": raw_access,
            "apps": lambda: queries.apps(db, ADMIN, TEAM),
            "roster_sql_filter": lambda: queries.roster(db, ADMIN, TEAM, text="user0001"),
        }, runs, cpu_s)
        if len(queries.app_access(db, ADMIN, OPEN_APP).rows) < users:
            raise RuntimeError(f"{OPEN_APP}'s access pane lists fewer than {users} accounts")
    finally:
        raw.close()
        db.close()
    ms = {k: [x * 1000 for x in v] for k, v in got.items()}
    cpu = {k: median(v) * 1000 for k, v in cpu_s.items()}
    return [
        Measure("store.roster", "store: roster, every user", "ms", median(ms["roster"]),
                median(ms["raw_roster"]), "sqlite3, same rows, no library", interactive=True,
                samples=ms["roster"], cpu=cpu["roster"], cpu_floor=cpu["raw_roster"]),
        Measure("store.roster_filter", "store: roster filtered in SQL", "ms",
                median(ms["roster_sql_filter"]), interactive=True, samples=ms["roster_sql_filter"],
                cpu=cpu["roster_sql_filter"]),
        Measure("store.apps", "store: apps of the team, own permissions", "ms", median(ms["apps"]),
                interactive=True, samples=ms["apps"], cpu=cpu["apps"]),
        Measure("store.access", "store: access pane rows with provenance", "ms",
                median(ms["access"]), median(ms["raw_access"]),
                "sqlite3, same rows, no library", "< 150 ms", ok=median(ms["access"]) < 150,
                interactive=True, samples=ms["access"], cpu=cpu["access"],
                cpu_floor=cpu["raw_access"]),
    ]


def measure_policy(db_path: Path, runs: int) -> list[Measure]:
    """Decisions per second, and effective permissions with provenance for one app's users."""
    from sqlalchemy import select
    from teamaccess.store import queries
    from teamaccess.store.db import Database
    from teamaccess.store.models import Account, App, Grant, Membership, Team
    from teamaccess.store.policy import (
        AppAction,
        AppFacts,
        Standing,
        decide_app,
        effective_permissions,
    )

    rng = random.Random(5)
    t0 = datetime(2024, 1, 1, tzinfo=UTC)
    lock = datetime(2024, 6, 1, tzinfo=UTC)
    perms = [frozenset({"view"}), frozenset({"view", "deploy"}),
             frozenset({"view", "deploy", "operate", "manage"}), None]
    cases = []
    for i in range(2000):
        locked = rng.random() < 0.3
        facts = AppFacts(f"app-{i % 50}", "bigco" if rng.random() < 0.9 else None,
                         "owner@x.io", locked, lock if locked else None)
        who = Standing(f"u{i}@x.io", rng.choice(["admin", "member", "viewer", None]),
                       t0 if rng.random() < 0.5 else lock.replace(month=9), rng.choice(perms),
                       rng.choice(["granted", "creator", "join"]))
        cases.append((rng.choice(list(AppAction)), facts, who))

    def decide_all():
        for action, facts, who in cases:
            decide_app(action, facts, who)

    def noop(_a, _f, _w):
        return None

    def noop_all():
        for action, facts, who in cases:
            noop(action, facts, who)

    db = Database(db_path)
    try:
        view = queries.app_access(db, ADMIN, OPEN_APP)
        facts = view.app
        with db.read() as s:
            app_id = s.execute(select(App.id).where(App.name == OPEN_APP)).scalar()
            team_id = s.execute(select(Team.id).where(Team.name == TEAM)).scalar()
            grants = {
                email: (g.permissions, g.origin)
                for g, email in s.execute(
                    select(Grant, Account.email).join(Account, Account.id == Grant.account_id)
                    .where(Grant.app_id == app_id)
                )
            }
            standings = []
            for email, role, since in s.connection().execute(
                select(Account.email, Membership.role, Membership.created_at)
                .join(Membership, Membership.account_id == Account.id)
                .where(Membership.team_id == team_id)
            ):
                g = grants.get(email)
                standings.append(Standing(email, role, since, g[0] if g else None,
                                          g[1] if g else None))
    finally:
        db.close()

    def effective_all():
        for who in standings:
            effective_permissions(facts, who)

    def effective_noop():
        for who in standings:
            noop(None, facts, who)

    cpu: dict[str, list[float]] = {}
    got = _interleaved({"decide": decide_all, "noop": noop_all,
                        "effective": effective_all, "effective_noop": effective_noop},
                       max(runs, 5), cpu)
    rate = len(cases) / median(got["decide"])
    return [
        Measure("policy.decide", "policy: decide_app decisions per second", "/s", rate,
                len(cases) / median(got["noop"]), "calls of an empty function per second",
                samples=[len(cases) / x for x in got["decide"]]),
        Measure("policy.effective", "policy: effective permissions + provenance, every user "
                "of one app", "ms", median(got["effective"]) * 1000,
                median(got["effective_noop"]) * 1000, "an empty function per user",
                interactive=True, samples=[x * 1000 for x in got["effective"]],
                cpu=median(cpu["effective"]) * 1000, cpu_floor=median(cpu["effective_noop"]) * 1000),
    ]


# -- the table ---------------------------------------------------------------------------------


def fmt(value: float, unit: str) -> str:
    if unit == "s":
        return f"{value:.3f} s"
    if unit == "ms":
        return f"{value:.1f} ms" if value < 100 else f"{value:.0f} ms"
    if unit == "MB":
        return f"{value:.0f} MB"
    if unit == "/s":
        return f"{value / 1000:.0f}k/s"
    return f"{value:g}"


def short(users: int) -> str:
    return f"{users // 1000}k" if users >= 1000 and users % 1000 == 0 else str(users)


def growth(by_size: dict[int, Measure]) -> str:
    """How the value grew from each size to the next, and a verdict.

    The verdict compares growth with the team's own growth, on CPU time where there is one (wall
    time on a shared machine swings too much), over the whole range and on the largest step.
    """
    sizes = sorted(by_size)
    if len(sizes) < 2 or by_size[sizes[0]].unit == "/s":
        return ""

    def val(m: Measure) -> float:
        return m.cpu if m.cpu else m.value

    steps = []
    for small, big in zip(sizes, sizes[1:], strict=False):
        a, b = val(by_size[small]), val(by_size[big])
        steps.append(f"x{b / a:.1f}" if a else "x?")
    first, last = val(by_size[sizes[0]]), val(by_size[sizes[-1]])
    factor = last / first if first else float("inf")
    team = sizes[-1] / sizes[0]
    before_last = val(by_size[sizes[-2]])
    last_step = last / before_last if before_last else float("inf")
    if by_size[sizes[0]].flat:
        verdict = "flat" if factor <= 1.5 else "GROWS"
    elif factor <= 1.5:
        verdict = "flat"
    elif factor <= team * 1.25 or last_step <= sizes[-1] / sizes[-2] * 1.25:
        # A small team that fits in the CPU's caches can make the whole range look steep; a
        # cost that really grows faster than the team does so on the largest step too.
        verdict = "<= linear"
    else:
        verdict = "SUPERLINEAR"
    return f"{' / '.join(steps)}; x{factor:.0f} over x{team:.0f} users: {verdict}"


def _revision() -> str:
    """The commit measured, and whether the store or the faces had uncommitted changes."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                              capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "store", "tui"], cwd=ROOT,
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "not a git checkout"
    return f"commit {head}" + (" with uncommitted changes in store/ or tui/" if dirty else "")


def _steal_note(start: tuple[int, int] | None) -> str:
    end = cpu_ticks()
    if start is None or end is None or end[1] <= start[1]:
        return ""
    share = (end[0] - start[0]) / (end[1] - start[1])
    return (f" The host took {share:.1%} of this machine's CPU time during the run (steal): "
            "that slows CPU time too, so compare runs by their ratios to the floors.")


def cpu_ticks() -> tuple[int, int] | None:
    """(stolen, total) CPU ticks of this machine so far, from /proc/stat; None elsewhere.

    Steal is time the host gave this virtual machine's CPUs to someone else: on a shared host
    it slows every measurement alike, wall and CPU time both, so the table reports it.
    """
    try:
        with open("/proc/stat") as stat:
            fields = [int(v) for v in stat.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    return (fields[7] if len(fields) > 7 else 0), sum(fields[:8])


def render(results: dict[int, list[Measure]], built: dict[int, float | None], runs: int,
           argv: Sequence[str], load: tuple[float, float, float],
           ticks: tuple[int, int] | None = None) -> str:
    sizes = sorted(results)
    order: list[str] = []
    rows: dict[str, dict[int, Measure]] = {}
    for users in sizes:
        for m in results[users]:
            if m.key not in rows:
                order.append(m.key)
                rows[m.key] = {}
            rows[m.key][users] = m
    lines = [
        "| measurement | target | " + " | ".join(
            f"{short(u)} users ({short(team_shape(u)[1])} apps, {short(team_shape(u)[2])} grants)"
            for u in sizes) + " | floor | growth |",
        "|---|---|" + "---|" * len(sizes) + "---|---|",
    ]
    for key in order:
        by_size = rows[key]
        any_m = next(iter(by_size.values()))
        cells = []
        for users in sizes:
            m = by_size.get(users)
            if m is None:
                cells.append("")
                continue
            cell = fmt(m.value, m.unit)
            if m.ratio is not None:
                cell += f" ({m.ratio:.2f}x floor {fmt(m.floor, m.unit)})"
            if m.cpu is not None:
                cell += f"; CPU {fmt(m.cpu, m.unit)}"
                if m.cpu_floor:
                    cell += f" ({m.cpu / m.cpu_floor:.2f}x)"
            if m.ok is not None:
                cell += " ok" if m.ok else " **MISS**"
            cells.append(cell)
        lines.append(f"| {any_m.label} | {any_m.target} | " + " | ".join(cells)
                     + f" | {any_m.floor_label} | {growth(by_size) if any_m.interactive else ''} |")
    builds = ", ".join(
        f"{short(u)}: " + (f"built in {t:.1f} s" if t is not None else "cached")
        for u, t in sorted(built.items())
    )
    head = [
        "Command: `" + " ".join([".venv/bin/python tests/bench/run.py", *argv]) + "`",
        "",
        f"Code: {_revision()}.",
        "",
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, {platform.system()} {platform.release()}; "
        f"medians of {runs} runs, each beside its floor from the same run. "
        f"Generator ({'store.demo.generate'}): {builds}.",
        "",
        f"Load average (1 min) {load[0]:.1f} at the start, {os.getloadavg()[0]:.1f} at the end: "
        "the machine is shared, so each cell also gives CPU time (all threads of the process "
        "or processes measured), which a busy neighbour sways much less than wall time."
        + _steal_note(ticks),
        "",
        "Targets are judged at every size, on wall time; they are set for the 10k team. Growth: "
        "the factor from each size to the next, on CPU time where measured, and a verdict: flat "
        "(<= x1.5 over the whole range), <= linear (within 1.25x of the team's growth over the "
        "whole range or on the largest step), else SUPERLINEAR; the first screen must stay flat.",
        "",
    ]
    return "\n".join(head + lines) + "\n"


def main(argv: Sequence[str] | None = None) -> None:
    """Run the benchmark and print its table (and write it to ``--out``)."""
    args_in = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="tests/bench/run.py", description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="1000,10000,100000",
                        help="team sizes in users, comma-separated (default: 1000,10000,100000)")
    parser.add_argument("--runs", type=int, default=5, help="runs per measurement (median)")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/teamaccess-bench"),
                        help="where the generated databases are cached")
    parser.add_argument("--only", default="cli,tui,store,policy,ssh",
                        help="which groups to run: cli, tui, store, policy, ssh, watch "
                        "(watch needs PostgreSQL and is left out of the default)")
    parser.add_argument("--out", type=Path, help="also write the table to this file")
    parser.add_argument("--ssh-sessions", default="1,10,20",
                        help="dashboards open at once for the SSH memory rows (default: 1,10,20)")
    watch = parser.add_argument_group("watch", "watching on PostgreSQL (--only watch)")
    watch.add_argument("--watch-events", default="10000,1000000",
                       help="audit log sizes, comma-separated (default: 10000,1000000)")
    watch.add_argument("--watch-watchers", default="1,20",
                       help="idle watcher counts, comma-separated (default: 1,20)")
    watch.add_argument("--watch-seconds", type=float, default=10.0,
                       help="seconds of each idle window (default: 10)")
    watch.add_argument("--watch-commits", type=int, default=20,
                       help="changes timed for each latency row (default: 20)")
    watch.add_argument("--pg-url", help="a PostgreSQL database on this machine (default: "
                       "TEAMACCESS_TEST_PG_URL, else a throwaway server)")
    args = parser.parse_args(args_in)
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    ssh_sessions = sorted({int(n) for n in args.ssh_sessions.split(",") if n.strip()})
    if len(ssh_sessions) < 2 or ssh_sessions[0] < 1:
        parser.error("--ssh-sessions needs two or more counts of at least 1, e.g. 1,10,20")
    groups = {g.strip() for g in args.only.split(",")}
    unknown = groups - {"cli", "tui", "store", "policy", "ssh", "watch"}
    if unknown:
        parser.error(f"unknown group(s) {', '.join(sorted(unknown))}: "
                     "use cli, tui, store, policy, ssh, watch")
    if groups == {"watch"}:
        sizes = []  # no SQLite team to build

    results: dict[int, list[Measure]] = {users: [] for users in sizes}
    built: dict[int, float | None] = {}
    load = os.getloadavg()
    ticks = cpu_ticks()
    paths: dict[int, Path] = {}
    for users in sizes:
        paths[users], took = build(args.workdir, users)
        built[users] = took
        how = f"built in {took:.1f} s" if took is not None else "cached"
        print(f"[{short(users)}] database {paths[users]} ({how})", file=sys.stderr, flush=True)
    # Whole processes (CLI commands, the dashboard) take turns across the sizes, run by run:
    # a slow spell on this shared machine then slows every size alike instead of one, which
    # would read as growth (or its absence) in the last column.
    for group, make in (("cli", lambda n: CliRuns(paths[n], args.workdir, n)),
                        ("tui", lambda n: TuiRuns(paths[n], args.workdir)),
                        ("ssh", lambda n: SshRows(paths[n], args.workdir, ssh_sessions))):
        if group not in groups:
            continue
        start = time.perf_counter()
        runners = {users: make(users) for users in sizes}
        for _ in range(args.runs):
            for runner in runners.values():
                runner.round()
        for users, runner in runners.items():
            results[users].extend(runner.measures())
        print(f"[{group}] done in {time.perf_counter() - start:.1f} s", file=sys.stderr, flush=True)
    # In-process reads and decisions are short: measured size by size, each beside its floor.
    for users in sizes:
        for group, fn, fn_args in (
            ("store", measure_store, (paths[users], users, args.runs)),
            ("policy", measure_policy, (paths[users], args.runs)),
        ):
            if group in groups:
                start = time.perf_counter()
                results[users].extend(fn(*fn_args))
                print(f"[{short(users)}] {group} done in {time.perf_counter() - start:.1f} s",
                      file=sys.stderr, flush=True)
    table = render(results, built, args.runs, args_in, load, ticks) if sizes else (
        "Command: `" + " ".join([".venv/bin/python tests/bench/run.py", *args_in]) + "`\n\n"
        f"Code: {_revision()}. Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on "
        f"{os.cpu_count()} cores; load average (1 min) {load[0]:.1f} at the start.\n")
    if "watch" in groups:
        if str(HERE) not in sys.path:
            sys.path.insert(0, str(HERE))
        import bench_watch

        table += "\n" + bench_watch.run(
            [int(n) for n in args.watch_events.split(",") if n.strip()],
            [int(n) for n in args.watch_watchers.split(",") if n.strip()],
            args.watch_seconds, args.watch_commits, args.pg_url,
            log=lambda line: print(line, file=sys.stderr, flush=True))
    print(table)
    if args.out:
        args.out.write_text(table)


if __name__ == "__main__":
    main()
