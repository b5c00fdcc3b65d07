"""Real OS users for the jump-host tests: create them, and run code or the CLI as one of them.

The code runs in a forked child that drops to the user's uid, gid and groups, so nothing needs
the interpreter to be executable by that user (the venv's Python may live under /root). Only
root can do this; callers skip (with the reason) when not root.
"""

from __future__ import annotations

import contextlib
import grp
import io
import json
import os
import pwd
import subprocess
from collections.abc import Callable, Iterator
from typing import Any

import pytest

NOT_ROOT = "needs root to create OS users and switch to them (CI and the dev machine run as root)"

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason=NOT_ROOT)


@contextlib.contextmanager
def os_users(prefix: str, *names: str, group: str | None = None) -> Iterator[dict[str, str]]:
    """Create ``prefixPID_NAME`` users (in ``group``, created too), yield {name: login} (and
    "group"), remove them all.

    The pid keeps two test workers (pytest -n 2) from colliding on the same names.
    """
    tag = f"{prefix}{os.getpid() % 100000}"
    logins = {name: f"{tag}_{name}"[:32] for name in names}
    group_name = f"{tag}_{group}"[:32] if group else None
    try:
        if group_name:
            subprocess.run(["groupadd", group_name], check=True, capture_output=True)
        for login in logins.values():
            cmd = ["useradd", "--no-create-home", "--shell", "/usr/sbin/nologin"]
            if group_name:
                cmd += ["-G", group_name]
            subprocess.run([*cmd, login], check=True, capture_output=True)
        yield {**logins, "group": group_name} if group_name else logins
    finally:
        for login in logins.values():
            subprocess.run(["userdel", login], capture_output=True)
        if group_name:
            subprocess.run(["groupdel", group_name], capture_output=True)


def run_as(login: str, body: Callable[..., Any], *args: Any, umask: int = 0o022) -> Any:
    """Run ``body(*args)`` as the OS user ``login`` in a forked child; return its result.

    An exception in the child comes back as ``("error", TypeName, message)``.
    """
    _warm_up()
    pw = pwd.getpwnam(login)
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        status = 0
        try:
            os.close(read_end)
            os.setgroups(os.getgrouplist(login, pw.pw_gid))
            os.setgid(pw.pw_gid)
            os.setuid(pw.pw_uid)
            os.umask(umask)
            os.environ.update(HOME=pw.pw_dir, USER=login, LOGNAME=login)
            os.environ.pop("TEAMACCESS_AS", None)
            try:
                outcome: Any = ["ok", body(*args)]
            except BaseException as err:  # noqa: BLE001 - every failure goes back to the test
                outcome = ["error", type(err).__name__, str(err)]
            with os.fdopen(write_end, "w") as out:
                json.dump(outcome, out, default=str)
        except BaseException:  # noqa: BLE001
            status = 1
        finally:
            os._exit(status)
    os.close(write_end)
    with os.fdopen(read_end) as got:
        data = got.read()
    os.waitpid(pid, 0)
    outcome = json.loads(data) if data else ["error", "ChildDied", "no result"]
    return outcome[1] if outcome[0] == "ok" else tuple(outcome)


_warm = False


def _warm_up() -> None:
    """Import, in this process, everything the child will need.

    The child can't read modules the user may not (the interpreter's library may live under
    /root), so whatever a command imports lazily is imported once here, by running commands.
    """
    global _warm
    if _warm:
        return
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        where = os.path.join(folder, "warm.db")
        for argv in (["teams:create", "warm"], ["teams"], ["members", "--team", "warm"],
                     ["audit", "--team", "warm"], ["accounts:bind", "root", "w@a.com"]):
            _cli(["--db", where, "--as", "w@a.com", *argv])
    _warm = True


def cli_as(login: str, *argv: str) -> tuple[int, str, str]:
    """Run ``teamaccess ARGV`` as ``login``: (exit code, stdout, stderr)."""
    return run_as(login, _cli, list(argv))


def _cli(argv: list[str]) -> list[Any]:  # pragma: no cover - runs in the child
    from teamaccess.tui.cli import cli

    out, err = io.StringIO(), io.StringIO()
    code = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            cli.main(args=argv, prog_name="teamaccess")
        except SystemExit as stop:
            code = stop.code if isinstance(stop.code, int) else 1
    return [code, out.getvalue(), err.getvalue()]


def group_id(name: str) -> int:
    """The gid of a group."""
    return grp.getgrnam(name).gr_gid
