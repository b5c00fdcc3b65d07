"""The dashboard exits when its terminal goes away, instead of spinning at 100% CPU (issue 11).

Run as real subprocesses: one with no terminal at all (``</dev/null``), one on a pseudo-terminal
whose other side is closed while the dashboard runs. The second has no controlling terminal (a
new session), as under ``su`` in a killed tmux, so no SIGHUP comes to the rescue.
"""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest
from teamaccess.store.db import Database
from teamaccess.store.demo import DEMO_ADMIN, build_demo

TEAMACCESS = Path(sys.executable).with_name("teamaccess")


@pytest.fixture
def demo_file(tmp_path) -> Path:
    db = Database(tmp_path / "demo.db")
    build_demo(db)
    db.close()
    return tmp_path / "demo.db"


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TEAMACCESS_")}
    return {**env, "TERM": "xterm-256color", "COLUMNS": "80", "LINES": "24"}


def test_without_a_terminal_the_dashboard_refuses_in_one_line(demo_file):
    started = time.monotonic()
    done = subprocess.run([str(TEAMACCESS), "--db", str(demo_file), "--as", DEMO_ADMIN],
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30,
                          env=_env())
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "Error: The dashboard needs a terminal, and standard input is not one: run teamaccess "
        "in a terminal, or use a command (teamaccess help)."]
    assert done.stdout == ""
    assert time.monotonic() - started < 20


def _read_some(fd: int, seconds: float) -> bytes:
    got, deadline = b"", time.monotonic() + seconds
    while time.monotonic() < deadline and b"acme-widgets" not in got:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            try:
                got += os.read(fd, 65536)
            except OSError:
                break
    return got


def test_the_dashboard_exits_when_its_terminal_goes_away(demo_file):
    master, slave = pty.openpty()
    os.set_blocking(master, False)
    proc = subprocess.Popen(
        [str(TEAMACCESS), "--db", str(demo_file), "--as", DEMO_ADMIN],
        stdin=slave, stdout=slave, stderr=slave, env=_env(), start_new_session=True,
    )
    os.close(slave)
    try:
        drawn = _read_some(master, 30)
        assert b"acme-widgets" in drawn, drawn[-300:]  # it is up and drawing
        os.close(master)  # the terminal goes away
        master = -1
        gone_at = time.monotonic()
        proc.wait(timeout=8)
        assert time.monotonic() - gone_at < 8
        assert proc.returncode != 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if master >= 0:
            os.close(master)
