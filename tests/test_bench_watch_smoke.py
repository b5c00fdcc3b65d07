"""The watching benchmark's code paths still run (tests/bench/bench_watch.py), on the real
PostgreSQL of the test session, at a tiny size: one log size, short windows, two changes.

This checks that the rows are measured and judged, not how fast anything is.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.postgres
def test_the_watch_rows_run_alone_and_print_old_beside_new(pg_url, tmp_path):
    out = tmp_path / "watch.md"
    done = subprocess.run(
        [sys.executable, "tests/bench/run.py", "--only", "watch", "--watch-events", "300",
         "--watch-watchers", "1,2", "--watch-seconds", "0.3", "--watch-commits", "2",
         "--pg-url", pg_url, "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    table = out.read_text()
    rows = {line.split(" | ")[0].lstrip("| "): line for line in table.splitlines()
            if line.startswith("| ") and "---" not in line}
    for wanted in ("server CPU, 2 idle watcher(s), LISTEN/NOTIFY",
                   "before: server CPU, 2 idle dashboard(s) polling count(*) every 0.5 s",
                   "server CPU with no watcher (its own background work)",
                   "commit to a second watcher waking, 2 other watcher(s), NOTIFY (median / worst)",
                   "commit to a second dashboard showing it, 2 other watcher(s) (median / worst)",
                   "before: commit to a second poller noticing, 2 other poller(s) (median / worst)"):
        assert wanted in rows, (wanted, list(rows))
        assert re.search(r"\d+(\.\d+)?(%| / \d+ ms)", rows[wanted]), rows[wanted]
    assert re.search(r"ms (ok|\*\*MISS\*\*)", rows[
        "commit to a second watcher waking, 2 other watcher(s), NOTIFY (median / worst)"])
    assert "300 audit events" in table
