"""The scale benchmark's code paths still run: a small team, one run, every group measured.

This checks that the benchmark works, not how fast anything is: speed is measured on demand
with ``tests/bench/run.py`` (its latest table is tests/bench/RESULTS.md), never by timed
assertions in the test suite.
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

from sqlalchemy import func, select
from teamaccess.store.db import Database
from teamaccess.store.models import Account, App, Grant, Membership

ROOT = Path(__file__).resolve().parent.parent
RUN = ROOT / "tests" / "bench" / "run.py"

#: The smallest team the probe's typing works on (its filters need 20 apps).
USERS = 100


def _bench():
    spec = importlib.util.spec_from_file_location("bench_run", RUN)
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_the_generator_builds_the_team_shape_once_and_reuses_it(tmp_path):
    bench = _bench()
    path, took = bench.build(tmp_path, 50)
    assert took is not None
    users, apps, grants = bench.team_shape(50)
    db = Database(path)
    try:
        with db.read() as s:
            assert s.scalar(select(func.count()).select_from(Account)) == users
            assert s.scalar(select(func.count()).select_from(Membership)) == users
            assert s.scalar(select(func.count()).select_from(App)) == apps
            assert s.scalar(select(func.count()).select_from(Grant)) == grants
            roles = set(s.scalars(select(Membership.role)))
            assert roles == {"admin", "member", "viewer"}
    finally:
        db.close()
    again, took_again = bench.build(tmp_path, 50)
    assert (again, took_again) == (path, None)  # cached, not rebuilt


def test_an_interrupted_build_is_redone(tmp_path):
    bench = _bench()
    path, _took = bench.build(tmp_path, 20)
    path.with_suffix(".done").unlink()  # as if the generator had been killed midway
    again, took = bench.build(tmp_path, 20)
    assert again == path and took is not None


def test_the_whole_benchmark_runs_and_writes_its_table(tmp_path):
    out = tmp_path / "RESULTS.md"
    done = subprocess.run(
        [sys.executable, "-m", "tests.bench", "--sizes", str(USERS), "--runs", "1",
         "--workdir", str(tmp_path / "work"), "--out", str(out), "--ssh-sessions", "1,2"],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    table = out.read_text()
    assert table.strip() in done.stdout
    rows = [line for line in table.splitlines() if line.startswith("| ")][1:]
    labels = {line.split(" | ")[0].lstrip("| ") for line in rows}
    for wanted in ("CLI `members --json`", "CLI `apps`", "CLI `access --app` (every user)",
                   "dashboard: launch to the roster's first rows",
                   "dashboard: one filter keystroke, roster",
                   "dashboard: one filter keystroke, apps",
                   "dashboard: open the access pane (every user can view)",
                   "dashboard: peak memory (RSS), big team loaded",
                   "store: access pane rows with provenance",
                   "policy: decide_app decisions per second",
                   "ssh: start to the roster's first rows",
                   "ssh: one filter keystroke to its redraw",
                   "ssh: server memory (PSS), 2 sessions",
                   "ssh: memory per extra session"):
        assert wanted in labels, (wanted, labels)
    for line in rows:
        cells = line.split(" | ")
        assert re.search(r"\d", cells[2]), f"no measurement in: {line}"
    # Measurements with a floor show it beside them, and targets are judged.
    assert re.search(r"x floor", table)
    assert re.search(r" (ok|\*\*MISS\*\*)", table)


def test_growth_verdicts_judge_the_whole_range_on_cpu_time():
    bench = _bench()

    def rows(values, *, flat=False):
        return {n: bench.Measure("k", "label", "ms", wall, cpu=cpu, flat=flat)
                for n, (wall, cpu) in zip((1000, 10000, 100000), values, strict=True)}

    # Linear overall even if one step looks steep (the small team fitted in a cache).
    assert bench.growth(rows([(3, 2.8), (65, 44.7), (847, 263)])).endswith("<= linear")
    # Steep overall but linear on the largest step: the 1k team fitted in a cache.
    assert bench.growth(rows([(3, 2.8), (49, 48.8), (453, 437)])).endswith("<= linear")
    assert bench.growth(rows([(1, 1), (200, 200), (20000, 20000)])).endswith("SUPERLINEAR")
    assert bench.growth(rows([(50, 40), (52, 41), (55, 44)])).endswith(": flat")
    # The first screen must not grow at all; wall time is ignored where CPU time exists.
    assert bench.growth(rows([(9, 1.1), (1, 1.8), (1, 2.5)], flat=True)).endswith("GROWS")
    assert bench.growth(rows([(1, 1.0), (9, 1.1), (20, 1.2)], flat=True)).endswith(": flat")
