"""`teamaccess serve`: the dashboard and every command over SSH, acting as the account of the key.

One service account runs it and alone owns the database. asyncssh speaks SSH; each session is an
ordinary dashboard or command-line process forked from a warm zygote (tui/zygote.py) on a real
pseudo-terminal (interactive) or on pipes (a command), and this process pumps bytes between the
SSH channel and that process. Who acts comes from the key alone: the child's environment is
built here, ``--as``/``--db`` are refused in it, and nothing the client sends (user name, ``env``
requests, forwarding, subsystems) changes that.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import json
import logging
import os
import re
import shlex
import signal
import socket
import stat
import struct
import sys
import termios
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncssh
import click
from teamaccess.store.db import Database, resolve_url, sqlite_path
from teamaccess.store.errors import DatabaseProblem, Refused

log = logging.getLogger("teamaccess.serve")

DEFAULT_LISTEN = "127.0.0.1:2222"
DEFAULT_MAX_SESSIONS = 32
DEFAULT_IDLE_TIMEOUT = 3600.0
#: How long a connection may take to authenticate before it is dropped (a stranger's budget).
LOGIN_GRACE_SECONDS = 20.0
#: A child still alive this long after its hang-up is killed outright.
HANGUP_GRACE_SECONDS = 1.0
#: Bytes read from a child per read; the channel's own buffer limit pauses reading (below).
READ_CHUNK = 32768
#: Input for the child buffered here beyond this pauses the SSH channel (its window stops).
STDIN_BUFFER_LIMIT = 65536
HOST_KEY_NAME = "ssh_host_ed25519_key"
#: A client's window size is clamped to this many columns and rows: a dashboard drawn at
#: 65535x65535 would only eat the host's memory.
MAX_TERMINAL_SIDE = 1000
TERM_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,63}")
#: What a terminal needs to be usable again when the dashboard was killed before it could say it:
#: leave the alternate screen, stop mouse and focus reports and bracketed paste, show the cursor.
TERMINAL_RESET = (
    b"\x1b[?1049l\x1b[?1000l\x1b[?1002l\x1b[?1003l\x1b[?1006l\x1b[?1015l"
    b"\x1b[?1004l\x1b[?2004l\x1b[?25h\x1b[0m\r\n"
)

Authorize = Callable[[str], "str | None"]


@dataclass(frozen=True)
class ServeOptions:
    """What `teamaccess serve` was told."""

    db_where: str | None
    listen: str = DEFAULT_LISTEN
    host_key: str | None = None
    max_sessions: int = DEFAULT_MAX_SESSIONS
    #: most connections, and most sessions, one account may hold (None: per_account_cap())
    max_per_account: int | None = None
    idle_timeout: float = DEFAULT_IDLE_TIMEOUT
    login_grace: float = LOGIN_GRACE_SECONDS


# -- setting up: the database, the host key ------------------------------------------------------


def parse_listen(listen: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:PORT`` for IPv6) into its parts, or a one-line error."""
    host, sep, port = listen.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise click.UsageError(f"--listen {listen!r} is not HOST:PORT (e.g. {DEFAULT_LISTEN}).")
    return host, int(port)


def _others_may_write(st: os.stat_result) -> bool:
    """Whether someone besides us (and root) can write what this stat describes."""
    return st.st_uid not in (os.geteuid(), 0) or bool(st.st_mode & (stat.S_IWGRP | stat.S_IWOTH))


def prepare_database(where: str | None) -> tuple[str, Path]:
    """Check (or create, 0600) the database serve will own; return its URL and the key folder.

    Serving makes the rules enforced only if nobody else can change the file underneath, so a
    database file or folder others may write is refused, not warned about.
    """
    url = resolve_url(where)
    path = sqlite_path(url)
    if path is None:  # PostgreSQL: the server's roles guard it; the key lives in our data folder
        from platformdirs import user_data_dir

        folder = Path(user_data_dir("teamaccess", appauthor=False))
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    else:
        folder = path.parent
        try:
            folder_stat = folder.stat()
        except FileNotFoundError:
            raise DatabaseProblem(
                f"No folder {folder}: create it (mode 0700, owned by the service account) first."
            ) from None
        if _others_may_write(folder_stat):
            raise Refused(
                f"The folder {folder} can be written by others (mode "
                f"{stat.filemode(folder_stat.st_mode)}, uid {folder_stat.st_uid}): they could "
                f"replace the database; serve needs a folder only it may write (chmod go-w).",
                rule="serve",
            )
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        except FileExistsError:
            file_stat = path.stat()
            if _others_may_write(file_stat) or file_stat.st_uid != os.geteuid():
                raise Refused(
                    f"{path} can be written by others (mode {stat.filemode(file_stat.st_mode)}, "
                    f"uid {file_stat.st_uid}): serve needs a database only it may write "
                    f"(chown it to the service account and chmod 600).",
                    rule="serve",
                ) from None
        else:
            os.fchmod(fd, 0o600)  # the umask can only take bits away; this states the intent
            os.close(fd)
    db = Database(url)  # creates or upgrades the schema now, not in the first session
    db.close()
    return url, folder


def load_host_key(path: Path) -> asyncssh.SSHKey:
    """The server's ed25519 host key, made (0600) on first start."""
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except FileExistsError:
        st = path.stat()
        if st.st_mode & 0o077 or st.st_uid != os.geteuid():
            raise Refused(
                f"The host key {path} is readable by others (mode {stat.filemode(st.st_mode)}): "
                f"anyone who reads it can pose as this server; chmod 600 it or remove it to "
                f"have a new one made.",
                rule="serve",
            ) from None
        try:
            return asyncssh.read_private_key(str(path))
        except (asyncssh.KeyImportError, OSError, ValueError) as err:
            raise DatabaseProblem(f"Can't read the host key {path}: {err}") from None
    key = asyncssh.generate_private_key("ssh-ed25519")
    with os.fdopen(fd, "wb") as out:
        out.write(key.export_private_key())
    return key


def fingerprint(key: asyncssh.SSHKey) -> str:
    """``SHA256:...``, as ``ssh-keygen -lf`` prints it."""
    return key.get_fingerprint("sha256")


# -- the zygote, seen from here --------------------------------------------------------------------


class Child:
    """One session process: its pid once the zygote has forked it, and its exit status."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.pid: int | None = None
        self.exited: asyncio.Future[int] = loop.create_future()
        self._hangup_when_started = False

    def started(self, pid: int) -> None:
        self.pid = pid
        if self._hangup_when_started:
            self.hang_up()

    def hang_up(self) -> None:
        """SIGHUP the session's process group now, SIGKILL it if it is still there shortly."""
        if self.exited.done():
            return
        if self.pid is None:
            self._hangup_when_started = True
            return
        self._signal(signal.SIGHUP)
        asyncio.get_running_loop().call_later(HANGUP_GRACE_SECONDS, self._signal, signal.SIGKILL)

    def _signal(self, sig: int) -> None:
        if self.pid is not None and not self.exited.done():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pid, sig)


class Launcher:
    """Asks the zygote for session processes over its Unix socket."""

    def __init__(self, sock: socket.socket, on_lost: Callable[[], None]) -> None:
        self._sock = sock
        self._on_lost = on_lost
        self._children: dict[int, Child] = {}
        self._next_id = 0
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(sock.fileno(), self._answer)

    def launch(self, request: dict[str, Any], fds: list[int]) -> Child:
        self._next_id += 1
        child = Child(self._loop)
        self._children[self._next_id] = child
        socket.send_fds(self._sock, [json.dumps({**request, "id": self._next_id}).encode()], fds)
        return child

    def _answer(self) -> None:
        try:
            data = self._sock.recv(65536)
        except OSError:
            data = b""
        if not data:
            self._loop.remove_reader(self._sock.fileno())
            for child in self._children.values():
                if not child.exited.done():
                    child.exited.set_result(255)
            self._on_lost()
            return
        message = json.loads(data)
        child = self._children.get(message["id"])
        if child is None:
            return
        if "pid" in message:
            child.started(message["pid"])
        if "exit" in message:
            self._children.pop(message["id"], None)
            if not child.exited.done():
                child.exited.set_result(message["exit"])

    def close(self) -> None:
        with contextlib.suppress(ValueError, OSError):
            self._loop.remove_reader(self._sock.fileno())
        self._sock.close()


def start_zygote() -> tuple[socket.socket, int]:
    """Fork the zygote (before any thread or event loop exists here); return its socket and pid."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        ours.close()
        from teamaccess.tui.zygote import zygote_main

        try:
            zygote_main(theirs)
        finally:
            os._exit(1)
    theirs.close()
    return ours, pid


# -- sessions ------------------------------------------------------------------------------------


def session_env(term: str | None) -> dict[str, str]:
    """The child's whole environment: a few of the server's own values, the client's TERM.

    Nothing the client sent with ``env``/``SetEnv`` and no ``TEAMACCESS_*`` at all: the server's
    choice of database and account is passed to the child directly.
    """
    env = {
        "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/"),
        "LANG": "C.UTF-8",
    }
    if term:
        env["TERM"] = term
    return env


def _sane_size(width: int, height: int, fallback: tuple[int, int]) -> tuple[int, int]:
    """The client's window size, within what a terminal can be (0 means "unknown")."""
    return (min(width, MAX_TERMINAL_SIDE) if width > 0 else fallback[0],
            min(height, MAX_TERMINAL_SIDE) if height > 0 else fallback[1])


class Session(asyncssh.SSHServerSession):
    """One SSH session channel: a dashboard on a pty, or one command on pipes."""

    def __init__(self, server: Server) -> None:
        self._server = server
        self._chan: asyncssh.SSHServerChannel | None = None
        self._term: str | None = None
        self._size: tuple[int, int] = (80, 24)
        self._command: str | None = None
        self._child: Child | None = None
        self._master: int | None = None  # pty master (interactive), else pipes below
        self._stdin_w: int | None = None
        self._outputs: dict[int, int | None] = {}  # fd -> SSH data type (None: stdout)
        self._paused = False
        self._stdin_buffer = bytearray()
        self._stdin_eof = False
        self._reading_paused = False
        self.last_input = time.monotonic()
        self._closed = False
        self._output_done: asyncio.Future[None] | None = None
        self.finished: asyncio.Task[None] | None = None
        self._loop = asyncio.get_running_loop()

    # asyncssh's callbacks, in the order a session sees them

    def connection_made(self, chan: asyncssh.SSHServerChannel) -> None:
        self._chan = chan
        self._server.sessions.add(self)

    def pty_requested(self, term_type: str, term_size: tuple[int, int, int, int], _modes: Any) -> bool:
        # TERM becomes part of the child's environment: a plain terminal name or a safe default.
        self._term = term_type if TERM_NAME.fullmatch(term_type or "") else "xterm-256color"
        self._size = _sane_size(term_size[0], term_size[1], (80, 24))
        return True

    def shell_requested(self) -> bool:
        return True

    def exec_requested(self, command: str) -> bool:
        self._command = command
        return True

    def subsystem_requested(self, subsystem: str) -> bool:
        log.info("refused subsystem %r from %s", subsystem, self._server.peer)
        return False  # sftp, scp's sftp mode, anything: there is no file system here

    def session_started(self) -> None:
        try:
            argv = shlex.split(self._command) if self._command else []
        except ValueError as err:
            self._fail(f"Error: can't split the command: {err}.", 2)
            return
        if not argv and self._term is None:
            self._fail(
                "Error: the dashboard needs a terminal: run 'ssh -t ...', or give a command "
                "('ssh ... --help' lists them).",
                2,
            )
            return
        self._start(argv)

    def data_received(self, data: bytes, _datatype: Any) -> None:
        self.last_input = time.monotonic()
        if self._stdin_w is None and self._master is None:
            return
        self._stdin_buffer += data
        self._flush_stdin()

    def eof_received(self) -> bool:
        self._stdin_eof = True
        self._flush_stdin()
        return True  # keep sending the child's output

    def break_received(self, _msec: int) -> bool:
        return False

    def signal_received(self, _signal: str) -> None:
        return None  # a client can't signal the child: ctrl+c travels as a byte on the pty

    def terminal_size_changed(self, width: int, height: int, pixwidth: int, pixheight: int) -> None:
        self.last_input = time.monotonic()
        self._size = _sane_size(width, height, self._size)
        if self._master is not None:
            self._set_size(self._master)

    def pause_writing(self) -> None:
        # The client isn't reading: stop reading the child, whose writes then block in the pty or
        # pipe (a fixed kernel buffer), instead of collecting its output here.
        self._paused = True
        for fd in self._outputs:
            self._loop.remove_reader(fd)

    def resume_writing(self) -> None:
        self._paused = False
        for fd in self._outputs:
            self._loop.add_reader(fd, self._read_output, fd)

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        self._server.sessions.discard(self)
        if self._child is not None:
            self._child.hang_up()
        self._close_fds()

    # the child

    def _start(self, argv: list[str]) -> None:
        server = self._server
        request = {
            "argv": argv,
            "tty": self._term is not None,
            "env": session_env(self._term),
            "db": server.db_url,
            "email": server.email,
            "fingerprint": server.key_fingerprint,
            "peer": server.peer,
        }
        if self._term is not None:
            master, slave = os.openpty()
            self._set_size(master)
            fds = [slave]
            self._master = self._stdin_w = master
            self._outputs = {master: None}
            to_close = [slave]
        else:
            stdin_r, stdin_w = os.pipe()
            stdout_r, stdout_w = os.pipe()
            stderr_r, stderr_w = os.pipe()
            fds = [stdin_r, stdout_w, stderr_w]
            self._stdin_w = stdin_w
            self._outputs = {stdout_r: None, stderr_r: asyncssh.EXTENDED_DATA_STDERR}
            to_close = fds
        for fd in self._outputs:
            os.set_blocking(fd, False)
        os.set_blocking(self._stdin_w, False)
        try:
            self._child = server.launcher.launch(request, fds)
        except OSError as err:
            log.error("could not start a session: %s", err)
            for fd in to_close:
                os.close(fd)
            self._fail("Error: the server could not start your session; try again shortly.", 1)
            return
        for fd in to_close:
            os.close(fd)
        for fd in self._outputs:
            self._loop.add_reader(fd, self._read_output, fd)
        self._flush_stdin()
        self.finished = self._loop.create_task(self._finish())

    def _set_size(self, master: int) -> None:
        width, height = self._size
        with contextlib.suppress(OSError):
            fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", height, width, 0, 0))

    def _read_output(self, fd: int) -> None:
        try:
            data = os.read(fd, READ_CHUNK)
        except BlockingIOError:
            return
        except OSError as err:
            if err.errno != errno.EIO:  # EIO: the pty's other side is closed, as good as EOF
                log.warning("reading a session's output: %s", err)
            data = b""
        if not data:
            self._loop.remove_reader(fd)
            del self._outputs[fd]
            if fd != self._master:  # the master is also the child's input: closed at the end
                os.close(fd)
            self._output_done_check()
            return
        if self._chan is not None and not self._closed:
            self._chan.write(data, self._outputs[fd])

    def _output_done_check(self) -> None:
        if not self._outputs and self._output_done is not None and not self._output_done.done():
            self._output_done.set_result(None)

    def _flush_stdin(self) -> None:
        fd = self._stdin_w
        if fd is None or self._child is None:
            return
        while self._stdin_buffer:
            try:
                written = os.write(fd, self._stdin_buffer[:READ_CHUNK])
            except BlockingIOError:
                break
            except OSError:  # the child closed its input: what's left has no reader
                self._stdin_buffer.clear()
                break
            del self._stdin_buffer[:written]
        with contextlib.suppress(ValueError, OSError):
            self._loop.remove_writer(fd)
        if self._stdin_buffer:
            self._loop.add_writer(fd, self._flush_stdin)
        over = len(self._stdin_buffer) > STDIN_BUFFER_LIMIT
        if self._chan is not None and over != self._reading_paused:
            self._reading_paused = over
            (self._chan.pause_reading if over else self._chan.resume_reading)()
        if self._stdin_eof and not self._stdin_buffer and fd != self._master:
            os.close(fd)
            self._stdin_w = None

    async def _finish(self) -> None:
        """Wait for the child and its last output, then report its exit status and close."""
        assert self._child is not None
        self._output_done = self._loop.create_future()
        self._output_done_check()
        code = await self._child.exited
        if self._master is not None:
            # After the child is gone, what is left in the pty is still readable; then EIO.
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._output_done), 1.0)
        else:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._output_done), 2.0)
        if self._closed or self._chan is None:
            return
        if code > 128 and self._master is not None:  # killed: put the terminal back for them
            self._chan.write(TERMINAL_RESET)
        if self._server.shutting_down:
            self._chan.write(b"teamaccess: the server is shutting down.\r\n", asyncssh.EXTENDED_DATA_STDERR)
        self._chan.exit(code)
        self._close_fds()

    def _fail(self, message: str, code: int) -> None:
        assert self._chan is not None
        self._chan.write((message + ("\r\n" if self._term else "\n")).encode(), asyncssh.EXTENDED_DATA_STDERR)
        self._chan.exit(code)

    def _close_fds(self) -> None:
        for fd in list(self._outputs):
            with contextlib.suppress(ValueError, OSError):
                self._loop.remove_reader(fd)
            if fd != self._master:
                os.close(fd)
        self._outputs.clear()
        if self._stdin_w is not None:
            with contextlib.suppress(ValueError, OSError):
                self._loop.remove_writer(self._stdin_w)
            if self._stdin_w != self._master:
                os.close(self._stdin_w)
            self._stdin_w = None
        if self._master is not None:
            os.close(self._master)
            self._master = None

    def hang_up(self) -> None:
        """End the session's process (the server is stopping); its exit status still goes out."""
        if self._child is not None:
            self._child.hang_up()

    def idle_for(self) -> float:
        return time.monotonic() - self.last_input

    def close_idle(self, seconds: float) -> None:
        if self._chan is not None:
            note = f"\r\nteamaccess: closed after {seconds:.0f} s without input.\r\n"
            self._chan.write(note.encode(), asyncssh.EXTENDED_DATA_STDERR)
            self._chan.close()


class Server(asyncssh.SSHServer):
    """One SSH connection: public-key authentication against the database's keys, no forwarding."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.db_url = hub.db_url
        self.launcher = hub.launcher
        self.sessions: set[Session] = set()
        self.conn: asyncssh.SSHServerConnection | None = None
        self.peer = "?"
        self.email: str | None = None
        self.key_fingerprint: str | None = None
        self._candidate: tuple[str, str] | None = None

    @property
    def shutting_down(self) -> bool:
        return self.hub.shutting_down

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self.conn = conn
        host, port = (conn.get_extra_info("peername") or ("?", 0))[:2]
        self.peer = f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"
        if self.hub.shutting_down:
            conn.close()
            return
        # Connections still logging in have their own, smaller room: when it is full the oldest
        # one goes, so sockets that only send a banner can't keep a person out for the whole
        # login grace time, and logged-in sessions are never refused because of them.
        pending = self.hub.pending
        if len(pending) >= self.hub.pending_cap:
            oldest = next(iter(pending))
            log.warning("dropped a connection from %s still logging in: %d are", oldest.peer, len(pending))
            del pending[oldest]
            if oldest.conn is not None:
                oldest.conn.close()
        pending[self] = None
        self.hub.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.hub.pending.pop(self, None)
        self.hub.connections.discard(self)

    def begin_auth(self, username: str) -> bool:
        return True  # always authenticate; the SSH user name itself means nothing here

    def password_auth_supported(self) -> bool:
        return False

    def kbdint_auth_supported(self) -> bool:
        return False

    def public_key_auth_supported(self) -> bool:
        return True

    def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
        key_fingerprint = fingerprint(key)
        try:
            email = self.hub.authorize(key_fingerprint)
        except Exception:  # noqa: BLE001 - a lookup that fails is a refusal, and is logged
            log.exception("looking up key %s", key_fingerprint)
            email = None
        if email is None:
            log.info("refused unknown key %s from %s", key_fingerprint, self.peer)
            self._candidate = None
            return False
        # asyncssh asks again, with the signature, right before it accepts: the last key
        # offered here is the one that authenticated.
        self._candidate = (key_fingerprint, email)
        return True

    def auth_completed(self) -> None:
        assert self._candidate is not None
        self.key_fingerprint, self.email = self._candidate
        self.hub.pending.pop(self, None)
        logged_in = len(self.hub.connections) - len(self.hub.pending)
        if logged_in > self.hub.options.max_sessions:
            log.warning("refused %s from %s: %d connections already logged in", self.email,
                        self.peer, logged_in - 1)
            self.hub.connections.discard(self)
            if self.conn is not None:
                self.conn.close()
            return
        # One account (one leaked key, or one runaway script) may not take every room.
        theirs = sum(1 for c in self.hub.connections if c.email == self.email)
        if theirs > self.hub.per_account:
            log.warning("refused %s from %s: %d of its connections already logged in", self.email,
                        self.peer, theirs - 1)
            self.hub.connections.discard(self)
            if self.conn is not None:
                self.conn.disconnect(
                    asyncssh.DISC_TOO_MANY_CONNECTIONS,
                    f"{self.email} already has {_count(theirs - 1, 'connection')} open, the most "
                    "one account may: close one and try again",
                )
            return
        log.info("%s authenticated from %s with %s", self.email, self.peer, self.key_fingerprint)

    def session_requested(self) -> Session | bool:
        open_sessions = sum(len(c.sessions) for c in self.hub.connections)
        if open_sessions >= self.hub.options.max_sessions or self.hub.shutting_down:
            return False
        # Several sessions can share one connection (ssh -o ControlMaster): count sessions too.
        theirs = sum(len(c.sessions) for c in self.hub.connections if c.email == self.email)
        if theirs >= self.hub.per_account:
            raise asyncssh.ChannelOpenError(
                asyncssh.OPEN_ADMINISTRATIVELY_PROHIBITED,
                f"{self.email} already has {_count(theirs, 'session')} open, the most one account "
                "may: close one and try again",
            )
        return Session(self)

    def connection_requested(self, *args: Any) -> bool:
        return self._refuse("port forwarding (ssh -L/-W)", args)

    def server_requested(self, *args: Any) -> bool:
        return self._refuse("remote forwarding (ssh -R)", args)

    def unix_connection_requested(self, *args: Any) -> bool:
        return self._refuse("socket forwarding", args)

    def unix_server_requested(self, *args: Any) -> bool:
        return self._refuse("remote socket forwarding", args)

    def _refuse(self, what: str, args: tuple[Any, ...]) -> bool:
        log.info("refused %s to %r from %s (%s)", what, args[:2], self.peer, self.email)
        return False


def pending_cap(max_sessions: int) -> int:
    """How many connections may be logging in at once: a quarter of ``max_sessions``, at least
    4 (and no more than ``max_sessions``)."""
    return min(max_sessions, max(4, max_sessions // 4))


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def per_account_cap(max_sessions: int) -> int:
    """How many connections (and sessions) one account may hold: a quarter of ``max_sessions``,
    at least 2 (and no more than ``max_sessions``), so nobody can take every room."""
    return min(max_sessions, max(2, max_sessions // 4))


class Hub:
    """What every connection shares: options, the database lookup, the zygote, the shutdown."""

    def __init__(self, options: ServeOptions, db_url: str, authorize: Authorize, launcher: Launcher) -> None:
        self.options = options
        self.db_url = db_url
        self.authorize = authorize
        self.launcher = launcher
        self.connections: set[Server] = set()
        #: the connections still logging in, oldest first (a dict as an ordered set)
        self.pending: dict[Server, None] = {}
        self.pending_cap = pending_cap(options.max_sessions)
        self.per_account = options.max_per_account or per_account_cap(options.max_sessions)
        self.shutting_down = False


async def serve(
    options: ServeOptions,
    db_url: str,
    host_key: asyncssh.SSHKey,
    authorize: Authorize,
    zygote: socket.socket,
    ready: Callable[[str, int], None],
) -> None:
    """Run the SSH server until SIGTERM/SIGINT, then close every session and return."""
    loop = asyncio.get_running_loop()
    stop = loop.create_future()

    def request_stop(*_args: Any) -> None:
        if not stop.done():
            stop.set_result(None)

    launcher = Launcher(zygote, on_lost=lambda: (log.error("the session launcher ended"), request_stop()))
    hub = Hub(options, db_url, authorize, launcher)
    host, port = parse_listen(options.listen)
    acceptor = await asyncssh.create_server(
        lambda: Server(hub),
        host,
        port,
        server_host_keys=[host_key],
        encoding=None,
        line_editor=False,
        login_timeout=options.login_grace,
        password_auth=False,
        kbdint_auth=False,
        gss_host=None,
        agent_forwarding=False,
        x11_forwarding=False,
        allow_scp=False,
        keepalive_interval=15,
        keepalive_count_max=3,
    )
    bound = acceptor.sockets[0].getsockname()
    ready(str(bound[0]), int(bound[1]))
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, request_stop)
    idle_watch = loop.create_task(_close_idle_sessions(hub))
    await stop
    hub.shutting_down = True
    idle_watch.cancel()
    acceptor.close()
    sessions = [s for c in hub.connections for s in c.sessions]
    for session in sessions:
        session.hang_up()
    finishing = [s.finished for s in sessions if s.finished is not None]
    if finishing:  # each sends its exit status once its process and its output have ended
        await asyncio.wait(finishing, timeout=HANGUP_GRACE_SECONDS + 4)
    deadline = loop.time() + 2.0
    while any(c.sessions for c in hub.connections) and loop.time() < deadline:
        await asyncio.sleep(0.05)  # until each client has taken its exit status and closed
    for server in list(hub.connections):
        if server.conn is not None:
            server.conn.close()
    await acceptor.wait_closed()
    launcher.close()


async def _close_idle_sessions(hub: Hub) -> None:
    limit = hub.options.idle_timeout
    if limit <= 0:
        return
    while True:
        await asyncio.sleep(min(5.0, max(0.5, limit / 4)))
        for server in list(hub.connections):
            for session in list(server.sessions):
                if session.idle_for() > limit:
                    session.close_idle(limit)


def account_lookup(db_url: str) -> tuple[Authorize, Callable[[], None]]:
    """Production wiring: a key's account from the database (store.queries.account_for_key)."""
    from teamaccess.store import queries

    db = Database(db_url, create=False)

    def authorize(key_fingerprint: str) -> str | None:
        return queries.account_for_key(db, key_fingerprint)

    return authorize, db.close


def _reap(pid: int, within: float) -> None:
    """Wait for a child to exit; SIGKILL it if it hasn't after ``within`` seconds.

    (A zygote still importing Textual when serve fails to start reads its EOF only afterwards.)
    """
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            if os.waitpid(pid, os.WNOHANG)[0] == pid:
                return
        except ChildProcessError:
            return
        time.sleep(0.02)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)


def run_server(options: ServeOptions) -> None:
    """`teamaccess serve`: check the database, make the host key, start the zygote, serve."""
    parse_listen(options.listen)  # a bad --listen is reported before anything is created
    db_url, folder = prepare_database(options.db_where)
    key_path = Path(options.host_key).expanduser() if options.host_key else folder / HOST_KEY_NAME
    host_key = load_host_key(key_path)
    logging.basicConfig(
        level=logging.INFO, format="teamaccess serve: %(message)s", stream=sys.stderr
    )
    logging.getLogger("asyncssh").setLevel(logging.WARNING)  # ours says who logged in, once
    zygote, zygote_pid = start_zygote()
    authorize, close_lookup = account_lookup(db_url)
    shown_db = sqlite_path(db_url) or "(PostgreSQL) " + db_url.split("@")[-1]

    def ready(host: str, port: int) -> None:
        print(f"Serving {shown_db} over SSH on {host}:{port}", flush=True)
        print(f"Host key {fingerprint(host_key)} ({key_path})", flush=True)

    try:
        asyncio.run(serve(options, db_url, host_key, authorize, zygote, ready))
    except OSError as err:
        raise click.ClickException(
            f"Can't listen on {options.listen}: {err.strerror or err}; pick another --listen."
        ) from None
    finally:
        close_lookup()
        zygote.close()  # the zygote sees EOF, hangs up on any session left, and exits
        _reap(zygote_pid, within=2.0)
    print("Stopped: every session was closed.", flush=True)
