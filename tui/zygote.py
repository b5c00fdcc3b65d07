"""The warm process `teamaccess serve` forks its sessions from, and what a session child runs.

Importing the store, click and Textual takes most of a dashboard's start-up. The zygote imports
them once, then forks a child per SSH session when the server asks (over a SOCK_SEQPACKET Unix
socket, with the session's terminal or pipes passed as file descriptors). Each child is an
ordinary dashboard or command-line process on those descriptors, acting as the account of the
session's key: its environment is built by the server, and ``--as`` / ``--db`` are refused.

The server itself (asyncio and asyncssh, with threads) is never forked: only this process,
which is single-threaded and holds no database connection.
"""

from __future__ import annotations

import contextlib
import fcntl
import gc
import importlib
import io
import json
import os
import select
import signal
import socket
import sys
import termios
import traceback
from collections.abc import Callable
from typing import Any, NoReturn

import click
from teamaccess.store.ops import Actor
from teamaccess.tui import cli
from teamaccess.tui.cli import State

#: Commands that touch the server's own files or start servers: never run for an SSH client.
LOCAL_ONLY_COMMANDS = ("serve", "demo", "backup")
#: (command, parameter, what is accepted) for parameters naming a file on the server: over SSH
#: only the session's own standard input is, so a client can't read or write the service
#: account's files.
SERVER_FILE_PARAMS = (("import", "file", ("-",)), ("export", "output", ()))
#: Modules a dashboard imports only once it runs (found by diffing sys.modules around a run).
WARM_MODULES = (
    "concurrent.futures.thread", "sqlalchemy.dialects.sqlite.pysqlite",
    "sqlalchemy.dialects.postgresql.psycopg", "textual.drivers.linux_driver",
    "textual._xterm_parser", "textual._keyboard_protocol", "textual.layouts.factory",
    "textual.layouts.horizontal", "textual.layouts.stream", "textual.scrollbar",
)
#: The most descriptors one request carries (stdin, stdout, stderr).
MAX_FDS = 3


def warm_up() -> None:
    """Import everything a session needs, then keep those objects out of every later GC pass."""
    gc.disable()
    try:
        import teamaccess.tui.app  # noqa: F401 - imported for its side effect: warm modules
        import teamaccess.tui.cli  # noqa: F401

        # What the dashboard would otherwise import on its way to the first rows.
        for name in WARM_MODULES:
            with contextlib.suppress(ImportError):
                importlib.import_module(name)
        from rich.cells import cell_len

        cell_len("\u2713")  # loads rich's table of character widths
    finally:
        gc.freeze()
        gc.enable()


def zygote_main(sock: socket.socket) -> NoReturn:
    """Serve fork requests on ``sock`` until the server closes it; never returns.

    A request is one JSON message with its descriptors; the zygote answers ``{"id", "pid"}``
    when the child is running and ``{"id", "exit"}`` when it has ended.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # ctrl+c in serve's terminal: serve decides
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    warm_up()
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_r, False)
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)  # the wakeup fd is what matters
    children: dict[int, Any] = {}

    def answer(message: dict[str, Any]) -> None:
        with contextlib.suppress(OSError):
            sock.send(json.dumps(message).encode())

    def reap() -> None:
        while children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            code = os.waitstatus_to_exitcode(status)
            answer({"id": children.pop(pid, None), "exit": code if code >= 0 else 128 - code})

    while True:
        readable, _, _ = select.select([sock, wake_r], [], [])
        if wake_r in readable:
            with contextlib.suppress(BlockingIOError):
                while os.read(wake_r, 512):
                    pass
            reap()
        if sock not in readable:
            continue
        try:
            data, fds, _flags, _addr = socket.recv_fds(sock, 65536, MAX_FDS)
        except OSError:
            data, fds = b"", []
        if not data:  # the server is gone: hang up on every session it can no longer carry
            for pid in list(children):
                with contextlib.suppress(OSError):
                    os.killpg(pid, signal.SIGHUP)
            os._exit(0)
        request = json.loads(data)
        pid = os.fork()
        if pid == 0:
            run_child(request, fds, close=(sock.fileno(), wake_r, wake_w))
        for fd in fds:
            os.close(fd)
        children[pid] = request["id"]
        answer({"id": request["id"], "pid": pid})


def run_child(request: dict[str, Any], fds: list[int], close: tuple[int, ...]) -> NoReturn:
    """In the forked child: take the session's descriptors as 0, 1, 2 and run the CLI."""
    code = 1
    try:
        signal.set_wakeup_fd(-1)
        for sig in (signal.SIGCHLD, signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_DFL)
        for fd in close:
            os.close(fd)
        os.setsid()  # its own session and process group: the server hangs up on it as a whole
        if request["tty"]:
            fcntl.ioctl(fds[0], termios.TIOCSCTTY, 0)  # the pty is its controlling terminal
            targets = [fds[0]] * 3
        else:
            targets = fds
        for target, std in zip(targets, (0, 1, 2), strict=True):
            os.dup2(target, std)
        for fd in set(fds):
            if fd > 2:
                os.close(fd)
        os.environ.clear()
        os.environ.update(request["env"])
        _reopen_std_streams()
        code = run_served_cli(
            request["argv"], request["db"], request["email"], request["fingerprint"],
            request["peer"],
        )
    except BaseException:  # noqa: BLE001 - a child never returns into the zygote's loop
        with contextlib.suppress(BaseException):
            traceback.print_exc()
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(BaseException):
                stream.flush()
        os._exit(code)


def _reopen_std_streams() -> None:
    """New sys.std* on descriptors 0-2: the zygote's were made for its own stdout (a pipe)."""
    tty = os.isatty(1)
    sys.stdin = sys.__stdin__ = io.TextIOWrapper(
        io.BufferedReader(io.FileIO(0, "r", closefd=False)), encoding="utf-8", errors="replace"
    )
    sys.stdout = sys.__stdout__ = io.TextIOWrapper(
        io.BufferedWriter(io.FileIO(1, "w", closefd=False)), encoding="utf-8",
        errors="replace", line_buffering=tty,
    )
    sys.stderr = sys.__stderr__ = io.TextIOWrapper(
        io.BufferedWriter(io.FileIO(2, "w", closefd=False)), encoding="utf-8",
        errors="backslashreplace", line_buffering=True,
    )


def run_served_cli(
    argv: list[str], db_where: str, email: str, fingerprint: str, peer: str
) -> int:
    """Run one command (or, with no arguments, the dashboard) as the key's account.

    Returns the exit status. ``--as`` and ``--db`` are refused (who acts and where the data
    lives come from the server), as are commands that reach the server's own files.
    """
    _guard_commands(cli.cli)
    state = ServedState(db_where, served_actor(email, fingerprint, peer))
    try:
        cli.cli.main(args=argv, prog_name=cli.PROG, obj=state)
    except SystemExit as done:
        return done.code if isinstance(done.code, int) else 1
    return 0


def served_actor(email: str, fingerprint: str, peer: str) -> Actor:
    """The Actor of a served session: its audit events name the key and the peer, no login.

    The process runs under the service account's login, which says nothing about who acted.
    """
    return Actor(email, None, key_fingerprint=fingerprint, peer=peer)


class ServedState(State):
    """A cli.State whose database and actor are fixed by the server, never by the client."""

    def __init__(self, db_where: str, actor: Actor) -> None:
        self._fixed_db = db_where
        super().__init__()
        self._actor = actor

    @property  # type: ignore[override]
    def db_where(self) -> str:
        return self._fixed_db

    @db_where.setter
    def db_where(self, value: str | None) -> None:
        if value is not None:  # the dataclass __init__ sets None: that is no request
            raise click.UsageError(
                "--db is not accepted over SSH: the server decides where the data lives."
            )

    @property  # type: ignore[override]
    def as_email(self) -> None:
        return None

    @as_email.setter
    def as_email(self, value: str | None) -> None:
        if value is not None:
            raise click.UsageError(
                "--as is not accepted over SSH: you act as the account your key belongs to."
            )


def _guard_commands(group: click.Group) -> None:
    """Refuse, in this child only, the commands and file names that reach the server's files."""
    for name in LOCAL_ONLY_COMMANDS:
        command = group.commands.get(name)
        if command is not None:
            command.callback = _refusal(name)
    for name, param_name, accepted in SERVER_FILE_PARAMS:
        command = group.commands.get(name)
        for param in command.params if command is not None else ():
            if param.name == param_name:
                param.callback = _server_files_refused(param.callback, accepted)


def _refusal(name: str) -> Callable[..., NoReturn]:
    def refuse(*_args: Any, **_kw: Any) -> NoReturn:
        raise click.UsageError(f"'{name}' is not available over SSH: run it on the server.")

    return refuse


def _server_files_refused(
    callback: Callable[..., Any] | None, accepted: tuple[str, ...]
) -> Callable[..., Any]:
    def check(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
        if value is not None and value not in accepted:
            instead = "give '-' and send the file on standard input" if accepted else (
                "leave it out: the output comes back on the session's standard output"
            )
            raise click.UsageError(
                f"{param.get_error_hint(ctx)} names a file on the server, which is not "
                f"yours over SSH: {instead}."
            )
        return callback(ctx, param, value) if callback is not None else value

    return check
