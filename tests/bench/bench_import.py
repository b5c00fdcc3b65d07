"""Time ``export`` and ``import`` of a large team, in process and through the real CLI.

Usage (from the repository root, on demand; never part of the test suite)::

    .venv/bin/python tests/bench/bench_import.py [--users 10000] [--runs 3]

A team of N users, N/5 apps and 5N grants is generated once, exported, then imported into a
fresh database per run; the medians are printed beside the time to parse the same document
with ``json`` alone (the floor no importer can beat), and how long the import's write transaction
held the database's write lock (issue 11: others' writes wait that long at most).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from teamaccess.store import ops, portable  # noqa: E402
from teamaccess.store.db import Database  # noqa: E402
from teamaccess.store.demo import generate  # noqa: E402

TEAM = "bigco"
ADMIN = f"user000000@{TEAM}.example.com"


def median_time(fn, runs: int) -> float:
    """The median wall time of ``runs`` calls of ``fn``."""
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def main() -> None:
    """Build, export, import; print one line per measurement."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    users, apps, grants = args.users, max(1, args.users // 5), args.users * 5
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        source = Database(work / "source.db")
        generate(source, team=TEAM, users=users, apps=apps, grants=grants)
        export_s = median_time(lambda: portable.export_team(source, ADMIN, TEAM), args.runs)
        doc = portable.export_team(source, ADMIN, TEAM)
        text = json.dumps(doc)
        (work / "team.json").write_text(text)
        parse_s = median_time(lambda: json.loads(text), args.runs)
        counter = iter(range(10**6))
        locked: list[float] = []  # how long each import's write transaction held the lock

        def import_once() -> None:
            target = Database(work / f"target-{next(counter)}.db")
            write = target.write

            def timed_write(body):
                start = time.perf_counter()
                try:
                    return write(body)
                finally:
                    locked.append(time.perf_counter() - start)

            target.write = timed_write  # type: ignore[method-assign]
            portable.import_team(target, ops.Actor(ADMIN), json.loads(text))
            target.close()

        import_s = median_time(import_once, args.runs)
        lock_s = statistics.median(locked)

        def cli_import() -> None:
            env = dict(os.environ, TEAMACCESS_DB=str(work / f"cli-{next(counter)}.db"),
                       TEAMACCESS_AS=ADMIN)
            subprocess.run([sys.executable, "-m", "teamaccess.tui", "import", str(work / "team.json")],
                           env=env, check=True, capture_output=True, cwd=ROOT)

        cli_s = median_time(cli_import, args.runs)
        source.close()
    print(f"team: {users} users, {apps} apps, {grants} grants ({len(text) / 1e6:.1f} MB of JSON)")
    print(f"export_team (in process)        {export_s:7.2f} s")
    print(f"import_team (in process)        {import_s:7.2f} s   floor json.loads {parse_s:.2f} s")
    print(f"  of which the write lock held  {lock_s:7.2f} s   (others' writes wait this long)")
    print(f"teamaccess import FILE (CLI)    {cli_s:7.2f} s")


if __name__ == "__main__":
    main()
