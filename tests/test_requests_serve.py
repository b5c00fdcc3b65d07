"""Access requests over `teamaccess serve` with the real OpenSSH client: a viewer asks with their
key, an admin approves with theirs, and the requester can't approve their own request.

(Kept apart from test_serve.py, whose helpers are its own: this file starts its own server.)
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select
from teamaccess.store import ops, queries
from teamaccess.store.db import Database
from teamaccess.store.demo import build_demo
from teamaccess.store.models import AuditEvent

pytestmark = pytest.mark.skipif(shutil.which("ssh") is None, reason="no OpenSSH client (.ci/run installs it)")

TEAMACCESS = str(Path(sys.executable).with_name("teamaccess"))


def _key(folder: Path, name: str) -> tuple[Path, str]:
    path = folder / name
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)
    printed = subprocess.run(["ssh-keygen", "-lf", f"{path}.pub"], check=True, capture_output=True,
                             text=True).stdout
    return path, printed.split()[1]


def _ssh(port: int, key: Path, *args: str) -> subprocess.CompletedProcess:
    argv = ["ssh", "-i", str(key), "-p", str(port), "-o", "StrictHostKeyChecking=no",
            "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes", "-o", "LogLevel=ERROR",
            "-o", "IdentitiesOnly=yes", "-F", "/dev/null", "-T", "--", "127.0.0.1", *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=60)


def test_request_and_approve_over_ssh(tmp_path):
    folder = tmp_path / "serve"
    folder.mkdir(mode=0o700)
    path = folder / "ta.db"
    db = Database(path)
    build_demo(db)
    path.chmod(0o600)
    ada, ada_fp = _key(folder, "ada")
    tim, tim_fp = _key(folder, "tim")
    ops.add_key(db, ops.Actor("ada@acme.com"), (folder / "ada.pub").read_text())
    ops.add_key(db, ops.Actor("tim@acme.com"), (folder / "tim.pub").read_text())
    proc = subprocess.Popen(
        [TEAMACCESS, "serve", "--db", str(path), "--listen", "127.0.0.1:0",
         "--host-key", str(folder / "host_key")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={k: v for k, v in os.environ.items() if not k.startswith("TEAMACCESS_")})
    try:
        match = re.search(r"on 127\.0\.0\.1:(\d+)$", proc.stdout.readline().strip())
        assert match, proc.stderr.read() if proc.poll() is not None else "serve did not start"
        port = int(match.group(1))

        asked = _ssh(port, tim, "access:request", "--app", "api-staging", "--permissions",
                     "deploy", "--expires-in", "2h", "--reason", "'hotfix over ssh'")  # ssh joins words: quote as a shell user would
        assert (asked.returncode, asked.stdout) == (0, ""), asked.stderr
        assert asked.stderr == "Requesting deploy on api-staging... done, request 1\n"

        own = _ssh(port, tim, "access:approve", "1")
        assert own.returncode == 1 and own.stderr.startswith(
            "Error: You can't approve your own request 1"), own.stderr

        listed = _ssh(port, ada, "access:requests", "--json")
        assert listed.returncode == 0, listed.stderr
        (row,) = json.loads(listed.stdout)
        assert (row["requester"], row["reason"], row["may_decide"]) == (
            "tim@acme.com", "hotfix over ssh", True)

        approved = _ssh(port, ada, "access:approve", "1")
        assert approved.returncode == 0, approved.stderr
        assert approved.stderr.startswith("Approving request 1: deploy on api-staging for tim@acme.com until ")

        (mine,) = queries.access_requests(db, "tim@acme.com")
        assert (mine.status, mine.decided_by) == ("approved", "ada@acme.com")
        tim_row = next(r for r in queries.app_access(db, "ada@acme.com", "api-staging").rows
                       if r.email == "tim@acme.com")
        assert "deploy" in tim_row.permissions
        with db.read() as session:
            events = {(e.action, e.actor_email, e.outcome): e.actor_key for e in session.scalars(
                select(AuditEvent).where(AuditEvent.target_email == "tim@acme.com",
                                         AuditEvent.action.in_(
                    ["access_request.create", "access_request.update", "collaborator.create"])))}
        assert events == {
            ("access_request.create", "tim@acme.com", "ok"): tim_fp,
            ("access_request.update", "tim@acme.com", "denied"): tim_fp,
            ("access_request.update", "ada@acme.com", "ok"): ada_fp,
            ("collaborator.create", "ada@acme.com", "ok"): ada_fp,
        }
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()
        db.close()
