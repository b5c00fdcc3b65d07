"""`teamaccess serve`, tried the way people use it: the real OpenSSH client and asyncssh's client.

Each test states what a client did and checks what came back and, for a refusal, that nothing
changed in the database (the audit log included, where the refusal never reached the store).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import re
import select
import shutil
import signal
import socket
import stat
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Iterator
from pathlib import Path

import asyncssh
import pytest
from sqlalchemy import func
from sqlalchemy import select as sql_select
from teamaccess.store import ops, queries
from teamaccess.store.db import Database
from teamaccess.store.demo import build_demo, generate
from teamaccess.store.models import AuditEvent

pytestmark = pytest.mark.skipif(shutil.which("ssh") is None, reason="no OpenSSH client (.ci/run installs it)")

TEAMACCESS = str(Path(sys.executable).with_name("teamaccess"))
TEAM = "acme-widgets"


# -- helpers ---------------------------------------------------------------------------------


def make_key(folder: Path, name: str) -> tuple[Path, str]:
    """An ed25519 key pair made by ssh-keygen; returns the private key path and its fingerprint."""
    path = folder / name
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)
    printed = subprocess.run(
        ["ssh-keygen", "-lf", str(path) + ".pub"], check=True, capture_output=True, text=True
    ).stdout
    return path, printed.split()[1]


class Served:
    """A running `teamaccess serve` process on an ephemeral port."""

    def __init__(self, db: str, folder: Path, *extra: str) -> None:
        self.folder = folder
        self.proc = subprocess.Popen(
            [TEAMACCESS, "serve", "--db", db, "--listen", "127.0.0.1:0",
             "--host-key", str(folder / f"host_key_{os.urandom(3).hex()}"), *extra],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={k: v for k, v in os.environ.items() if not k.startswith("TEAMACCESS_")},
        )
        first = self.proc.stdout.readline()
        match = re.search(r"on 127\.0\.0\.1:(\d+)$", first.strip())
        if match is None:
            self.proc.kill()
            raise AssertionError(f"serve did not start: {first!r} {self.proc.stderr.read()!r}")
        self.port = int(match.group(1))
        self.host_key_line = self.proc.stdout.readline()

    def ssh(self, key: Path, *args: str, input: str | None = None, tty: bool = False,
            options: tuple[str, ...] = (), timeout: float = 30) -> subprocess.CompletedProcess:
        """Run the OpenSSH client against this server and wait for it."""
        return subprocess.run(
            ssh_argv(self.port, key, tty=tty, options=options) + list(args),
            input=input, capture_output=True, text=True, timeout=timeout,
        )

    def descendants(self) -> set[int]:
        """The pids below serve: the zygote and every session process."""
        children: dict[int, list[int]] = {}
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
                except OSError:
                    continue
                children.setdefault(int(fields[1]), []).append(int(entry))
        found, todo = set(), [self.proc.pid]
        while todo:
            for pid in children.get(todo.pop(), []):
                found.add(pid)
                todo.append(pid)
        return found

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc.stdout.close()
        self.proc.stderr.close()
        return self.proc.returncode


def ssh_argv(port: int, key: Path, *, tty: bool = False, options: tuple[str, ...] = ()) -> list[str]:
    argv = ["ssh", "-i", str(key), "-p", str(port), "-o", "StrictHostKeyChecking=no",
            "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes", "-o", "LogLevel=ERROR",
            "-o", "IdentitiesOnly=yes", "-F", "/dev/null"]
    argv += ["-tt"] if tty else ["-T"]
    for option in options:
        argv += ["-o", option]
    return argv + ["--", "127.0.0.1"]


class Terminal:
    """The OpenSSH client on a pseudo-terminal of our own, as a person's terminal emulator."""

    def __init__(self, argv: list[str], cols: int = 80, rows: int = 24) -> None:
        self.master, slave = os.openpty()
        self.resize(cols, rows)
        self.proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave,
                                     start_new_session=True)
        os.close(slave)
        self.output = b""

    def resize(self, cols: int, rows: int) -> None:
        fcntl.ioctl(self.master, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        if getattr(self, "proc", None) is not None:
            os.kill(self.proc.pid, signal.SIGWINCH)  # what a terminal emulator's resize sends

    def read_until(self, needle: bytes, timeout: float = 15) -> bytes:
        """Read until ``needle`` has arrived (counted from the last call), or fail."""
        start = len(self.output)
        deadline = time.monotonic() + timeout
        while needle not in self.output[start:]:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {needle!r} in {self.output[start:][-2000:]!r}")
            ready, _, _ = select.select([self.master], [], [], left)
            if ready:
                try:
                    chunk = os.read(self.master, 65536)
                except OSError:
                    chunk = b""
                if not chunk:
                    raise AssertionError(f"EOF before {needle!r}: {self.output[start:][-2000:]!r}")
                self.output += chunk
        return self.output[start:]

    def send(self, data: bytes) -> None:
        os.write(self.master, data)

    def wait(self, timeout: float = 10) -> int:
        deadline = time.monotonic() + timeout
        while self.proc.poll() is None and time.monotonic() < deadline:
            ready, _, _ = select.select([self.master], [], [], 0.1)
            if ready:
                with contextlib.suppress(OSError):
                    self.output += os.read(self.master, 65536)
        code = self.proc.wait(0.1)
        while select.select([self.master], [], [], 0.2)[0]:  # what it wrote just before exiting
            try:
                chunk = os.read(self.master, 65536)
            except OSError:
                break
            if not chunk:
                break
            self.output += chunk
        return code

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        os.close(self.master)


def audit_count(db: Database) -> int:
    with db.read() as s:
        return int(s.scalar(sql_select(func.count()).select_from(AuditEvent)))


def roster_emails(db: Database) -> list[str]:
    return [r.email for r in queries.roster(db, "ada@acme.com", TEAM)]


# -- fixtures ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """The demo team in a 0600 database, keys for ada (admin) and tim (viewer), one server."""
    folder = tmp_path_factory.mktemp("serve")
    folder.chmod(0o700)
    path = folder / "ta.db"
    db = Database(path)
    build_demo(db)
    path.chmod(0o600)
    ada, ada_fp = make_key(folder, "ada")
    tim, tim_fp = make_key(folder, "tim")
    stranger, _ = make_key(folder, "stranger")
    ops.add_key(db, ops.Actor("ada@acme.com"), (folder / "ada.pub").read_text())
    ops.add_key(db, ops.Actor("tim@acme.com"), (folder / "tim.pub").read_text())
    server = Served(str(path), folder)
    yield {"db": db, "path": path, "folder": folder, "server": server, "ada": ada,
           "ada_fp": ada_fp, "tim": tim, "tim_fp": tim_fp, "stranger": stranger}
    assert server.stop() == 0
    db.close()


# -- commands ----------------------------------------------------------------------------------


def test_command_runs_as_the_key_account_with_output_and_exit_status(world):
    server: Served = world["server"]
    listed = server.ssh(world["ada"], "members", "--team", TEAM, "--json")
    assert listed.returncode == 0, listed.stderr
    assert "ada@acme.com" in {m["email"] for m in json.loads(listed.stdout)}
    teams = server.ssh(world["tim"], "teams")
    assert teams.returncode == 0 and TEAM in teams.stdout

    missing = server.ssh(world["ada"], "apps:lock", "--app", "no-such-app")
    assert missing.returncode == 1
    assert missing.stdout == ""
    assert missing.stderr.startswith("Error: ") and "no-such-app" in missing.stderr

    usage = server.ssh(world["ada"], "members:add")
    assert usage.returncode == 2 and "Missing argument" in usage.stderr


def test_write_over_ssh_is_audited_with_the_key_fingerprint_and_peer(world):
    server, db = world["server"], world["db"]
    done = server.ssh(world["ada"], "members:add", "ssh-new@acme.com", "--team", TEAM, "--role", "viewer")
    assert done.returncode == 0, done.stderr
    assert "ssh-new@acme.com" in roster_emails(db)
    with db.read() as s:
        event = s.scalars(sql_select(AuditEvent).order_by(AuditEvent.id.desc()).limit(1)).one()
    assert event.actor_key == world["ada_fp"]
    assert event.actor_peer.startswith("127.0.0.1:")
    assert event.outcome == "ok"


def test_standard_input_reaches_import(world):
    server, db = world["server"], world["db"]
    exported = server.ssh(world["ada"], "export", "--team", TEAM)
    assert exported.returncode == 0, exported.stderr
    doc = json.loads(exported.stdout)
    doc["team"] = "acme-copy"
    for key, value in doc.items():  # the members only: the apps' names belong to acme-widgets
        if key not in ("team", "members"):
            doc[key] = type(value)()
    # ada alone, so that the other accounts keep a single team (the dashboard tests rely on it)
    doc["members"] = [m for m in doc["members"] if m["email"] == "ada@acme.com"]
    imported = server.ssh(world["ada"], "import", "-", input=json.dumps(doc))
    assert imported.returncode == 0, imported.stderr
    assert "acme-copy" in {t.name for t in queries.teams(db, "ada@acme.com")}


@pytest.mark.parametrize(
    "args",
    [
        ["--as", "ada@acme.com", "members:add", "x1@acme.com", "--team", TEAM, "--role", "admin"],
        ["members:add", "x1@acme.com", "--team", TEAM, "--role", "admin", "--as=ada@acme.com"],
        ["--db", "{other}", "members:add", "x1@acme.com", "--team", TEAM, "--role", "admin"],
        ["members:add", "x1@acme.com", "--team", TEAM, "--role", "admin", "--db={other}"],
        ["backup", "{other}"],
        ["demo"],
        ["serve", "--listen", "127.0.0.1:0"],
        ["import", "{world}/ta.db"],
        ["export", "--team", TEAM, "--output", "{other}"],
    ],
    ids=["as-before", "as-after", "db-before", "db-after", "backup", "demo", "serve",
         "import-server-file", "export-server-file"],
)
def test_who_and_where_come_from_the_server_not_the_client(world, args):
    """A viewer's key can't become an admin, open another database or reach server files."""
    server, db, folder = world["server"], world["db"], world["folder"]
    other = folder / "other.db"
    before = (roster_emails(db), audit_count(db))
    args = [a.format(other=other, world=folder) for a in args]
    refused = server.ssh(world["tim"], *args)
    assert refused.returncode == 2, (refused.stdout, refused.stderr)
    assert refused.stderr.startswith("Error: ") and "SSH" in refused.stderr
    assert (roster_emails(db), audit_count(db)) == before
    assert not other.exists()


def test_client_environment_is_ignored(world):
    """TEAMACCESS_AS/DB/TEAM sent with SetEnv change nothing: tim is still a viewer."""
    server, db, folder = world["server"], world["db"], world["folder"]
    other = folder / "env-other.db"
    before = roster_emails(db)
    refused = server.ssh(
        world["tim"], "members:add", "x2@acme.com", "--team", TEAM, "--role", "admin",
        options=("SetEnv=TEAMACCESS_AS=ada@acme.com TEAMACCESS_DB=" + str(other),),
    )
    assert refused.returncode == 1
    assert "x2@acme.com" not in roster_emails(db) and roster_emails(db) == before
    assert not other.exists()
    with db.read() as s:
        event = s.scalars(sql_select(AuditEvent).order_by(AuditEvent.id.desc()).limit(1)).one()
    assert (event.actor_email, event.outcome, event.actor_key) == (
        "tim@acme.com", "denied", world["tim_fp"])
    # nor does a shell-style assignment in the command line: there is no shell to read it
    count = audit_count(db)
    for prefix in (["TEAMACCESS_AS=ada@acme.com"], ["env", "TEAMACCESS_AS=ada@acme.com"]):
        refused = server.ssh(world["tim"], *prefix, "members:add", "x2@acme.com", "--team", TEAM,
                             "--role", "admin")
        assert refused.returncode == 2 and "No such command" in refused.stderr
    assert roster_emails(db) == before and audit_count(db) == count


def test_unknown_keys_passwords_and_keyboard_interactive_are_refused(world):
    server, db = world["server"], world["db"]
    before = audit_count(db)
    stranger = server.ssh(world["stranger"], "members", "--team", TEAM)
    assert stranger.returncode == 255 and "Permission denied" in stranger.stderr
    assert stranger.stdout == ""
    for method in ("password", "keyboard-interactive"):
        tried = server.ssh(
            world["stranger"], "teams",
            options=(f"PreferredAuthentications={method}", "PubkeyAuthentication=no",
                     "BatchMode=no", "NumberOfPasswordPrompts=1"),
            input="secret\n",
        )
        assert tried.returncode == 255 and "Permission denied" in tried.stderr, tried.stderr

    async def try_password() -> None:
        with pytest.raises(asyncssh.PermissionDenied):
            await asyncssh.connect("127.0.0.1", server.port, username="ada", password="x",
                                   known_hosts=None, client_keys=None, agent_path=None)

    asyncio.run(try_password())
    assert audit_count(db) == before


def test_forwarding_and_subsystems_are_refused(world):
    server = world["server"]

    async def probe() -> None:
        async with asyncssh.connect(
            "127.0.0.1", server.port, username="whoever", known_hosts=None,
            client_keys=[str(world["ada"])], agent_path=None,
        ) as conn:
            with pytest.raises(asyncssh.ChannelOpenError):
                await conn.create_connection(asyncssh.SSHTCPSession, "127.0.0.1", 22)
            with pytest.raises(asyncssh.ChannelOpenError):
                await conn.create_unix_connection(asyncssh.SSHUNIXSession, "/run/x.sock")
            with pytest.raises(asyncssh.ChannelListenError):
                await conn.forward_remote_port("127.0.0.1", 0, "127.0.0.1", 22)
            with pytest.raises((asyncssh.ChannelOpenError, asyncssh.SFTPError)):
                await conn.start_sftp_client()
            with pytest.raises(asyncssh.ChannelOpenError):
                await conn.create_process(subsystem="anything")
            with pytest.raises(asyncssh.ChannelOpenError):
                await conn.create_process("teams", x11_forwarding=True, x11_display="localhost:0")
            # agent forwarding: the request is refused, and the session works without it
            chan, _session = await conn.create_session(asyncssh.SSHClientSession, "teams")
            assert await chan._make_request(b"auth-agent-req@openssh.com") is False
            chan.close()
            # the SSH user name means nothing: this is still ada
            result = await conn.run("teams", check=False)
            assert result.exit_status == 0

    asyncio.run(probe())
    target = world["folder"] / "copied"
    for legacy in (["-O"], []):
        scp = subprocess.run(
            ["scp", *legacy, "-i", str(world["ada"]), "-P", str(server.port), "-o",
             "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o",
             "BatchMode=yes", "-F", "/dev/null", str(world["folder"] / "ada.pub"),
             f"127.0.0.1:{target}"],
            capture_output=True, text=True, timeout=30,
        )
        assert scp.returncode != 0
    assert not target.exists()


# -- the dashboard ------------------------------------------------------------------------------


def test_dashboard_in_a_pty_follows_resize_and_ctrl_q_exits_0(world):
    server = world["server"]
    term = Terminal(ssh_argv(server.port, world["tim"], tty=True))
    try:
        term.read_until(b"tim@acme.com")  # the header names the key's account
        term.read_until(b"ada@acme.com")  # and the roster's rows arrive
        assert b"\x1b[25;" not in term.output  # 24 rows: nothing is drawn below
        term.resize(120, 40)
        term.read_until(b"\x1b[40;")  # redrawn down to row 40 of the new size
        term.send(b"\x11")  # ctrl+q
        assert term.wait() == 0
    finally:
        term.close()


def test_without_a_terminal_the_dashboard_is_refused_and_commands_can_have_one(world):
    server = world["server"]
    no_tty = server.ssh(world["ada"])  # `ssh -T host`: a shell request with no pty
    assert no_tty.returncode == 2 and "needs a terminal" in no_tty.stderr
    term = Terminal(ssh_argv(server.port, world["ada"], tty=True) + ["members", "--team", TEAM])
    try:
        assert term.wait() == 0
        assert b"grace@acme.com" in term.output and b"\x1b[?1049h" not in term.output
    finally:
        term.close()
    bad_quote = server.ssh(world["ada"], "members", "'--team")
    assert bad_quote.returncode == 2 and "split" in bad_quote.stderr


def test_a_served_dashboard_shows_a_local_change_within_a_second(world):
    server, db = world["server"], world["db"]
    # tim: in acme-widgets only (other tests may give ada a second team, shown first)
    term = Terminal(ssh_argv(server.port, world["tim"], tty=True), cols=100, rows=45)
    try:
        term.read_until(b"ada@acme.com")
        term.read_until(b"\x1b[45;")  # the whole first screen has been drawn
        ops.add_member(db, ops.Actor("ada@acme.com"), TEAM, "aaa-live@acme.com", "viewer")
        start = time.monotonic()
        term.read_until(b"aaa-live@acme.com", timeout=5)  # sorts first: on screen at once
        assert time.monotonic() - start < 2.0  # about a second, with room for a busy machine
        term.send(b"\x11")
        assert term.wait() == 0
    finally:
        term.close()


def test_odd_terminal_requests_are_tamed(world):
    """A hostile TERM and a 100000x100000 window neither break the server nor reach the child raw."""
    server = world["server"]

    async def run() -> None:
        async with asyncssh.connect(
            "127.0.0.1", server.port, known_hosts=None, client_keys=[str(world["ada"])],
            agent_path=None,
        ) as conn:
            result = await conn.run("teams", term_type="x\x1b]0;evil\x07", term_size=(100000, 100000),
                                    check=False)
            assert result.exit_status == 0 and TEAM in result.stdout
            process = await conn.create_process("teams", term_type="xterm")
            process.change_terminal_size(2**31, 2**31)
            await process.wait()
            assert process.exit_status == 0

    asyncio.run(run())
    assert server.ssh(world["ada"], "teams").returncode == 0  # still serving


def test_a_dropped_client_ends_its_session_process_within_2_seconds(world):
    server = world["server"]
    before = server.descendants()
    term = Terminal(ssh_argv(server.port, world["ada"], tty=True))
    try:
        term.read_until(b"ada@acme.com")
        session = server.descendants() - before
        assert session, "no session process under serve"
        term.proc.kill()  # the client vanishes without a word
        deadline = time.monotonic() + 2.0
        while server.descendants() & session and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not server.descendants() & session
    finally:
        term.close()


def test_a_client_that_stops_reading_holds_the_output_back(world):
    """The child blocks on a full pipe instead of the server collecting its output."""
    server, db, folder = world["server"], world["db"], world["folder"]
    generate(db, team="bigco", users=3000, apps=5, grants=10)
    admin = "user000000@bigco.example.com"
    key, _ = make_key(folder, "bigco")
    ops.add_key(db, ops.Actor(admin), (folder / "bigco.pub").read_text())

    async def run() -> None:
        async with asyncssh.connect(
            "127.0.0.1", server.port, known_hosts=None, client_keys=[str(key)], agent_path=None,
        ) as conn:
            before = server.descendants()
            # ~450 KB of JSON, a 64 KiB window, and nobody reading for 2 s
            process = await conn.create_process(
                "members --team bigco --json", encoding=None, window=65536, max_pktsize=16384
            )
            await asyncio.sleep(2.0)
            child = server.descendants() - before
            assert child, "the command ended: its whole output was taken in somewhere"
            state = Path(f"/proc/{min(child)}/stat").read_text().rsplit(")", 1)[1].split()[0]
            assert state == "S"  # asleep: blocked writing to its full pipe
            out = await process.stdout.read()
            await process.wait()
            assert process.exit_status == 0
            assert len(json.loads(out)) == 3000  # held back, not lost

    asyncio.run(run())


# -- what a stranger can hold open; stopping -----------------------------------------------------


def test_max_sessions_and_login_grace_bound_what_strangers_hold(world, tmp_path):
    folder = world["folder"]
    server = Served(str(world["path"]), folder, "--max-sessions", "2", "--login-grace", "1")
    try:
        # two strangers connect and say nothing: the login grace time drops them
        idle = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(2)]
        for sock in idle:
            sock.settimeout(5)
            sock.recv(1024)  # the server's version line
            assert sock.recv(1024) == b""  # then the server hangs up
            sock.close()
        assert server.ssh(world["ada"], "teams").returncode == 0
    finally:
        assert server.stop() == 0


def test_sockets_that_only_send_a_banner_do_not_lock_people_out(world):
    """A flood of connections that never log in: each new one pushes the oldest still logging
    in out (their room is max(4, max_sessions // 4)), so a person still gets in at once."""
    from teamaccess.tui.serve import pending_cap

    assert [pending_cap(n) for n in (1, 2, 4, 8, 16, 32, 100)] == [1, 2, 4, 4, 4, 8, 25]
    server = Served(str(world["path"]), world["folder"], "--max-sessions", "32", "--login-grace", "20")
    idle: list[socket.socket] = []
    try:
        for _ in range(32):
            sock = socket.create_connection(("127.0.0.1", server.port))
            sock.sendall(b"SSH-2.0-banner-only\r\n")
            idle.append(sock)
        time.sleep(0.3)
        started = time.monotonic()
        got_in = server.ssh(world["ada"], "teams", timeout=15)
        assert got_in.returncode == 0, got_in.stderr
        assert time.monotonic() - started < 10  # not after the 20 s login grace
        # the oldest stallers were dropped; at most 8 (and none of the first 24) remain open
        still_open = 0
        for n, sock in enumerate(idle):
            sock.settimeout(0.5)
            try:
                while chunk := sock.recv(4096):
                    del chunk
            except TimeoutError:
                still_open += 1
                assert n >= 24, f"staller {n} is still connected"
            except ConnectionResetError:
                pass  # dropped
        assert still_open <= 8
    finally:
        for sock in idle:
            sock.close()
        assert server.stop() == 0


def test_max_sessions_bounds_the_connections_logged_in(world):
    server = Served(str(world["path"]), world["folder"], "--max-sessions", "1")
    holder = subprocess.Popen(ssh_argv(server.port, world["ada"]) + ["import", "-"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        time.sleep(1.5)  # ada's first connection is logged in, waiting for standard input
        assert holder.poll() is None
        second = server.ssh(world["tim"], "teams")
        assert second.returncode == 255 and second.stdout == ""
    finally:
        holder.kill()
        holder.communicate()
        assert server.stop() == 0


def test_idle_timeout_closes_a_quiet_session(world):
    server = Served(str(world["path"]), world["folder"], "--idle-timeout", "1")
    try:
        start = time.monotonic()
        # `import -` waits for input that never comes
        proc = subprocess.Popen(ssh_argv(server.port, world["ada"]) + ["import", "-"],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        assert proc.wait(20) != 0  # standard input is still open: only the server ended it
        err = proc.stderr.read()
        proc.stdin.close()
        assert "without input" in err
        assert 1 <= time.monotonic() - start < 10
    finally:
        assert server.stop() == 0


def test_sigterm_closes_every_session_cleanly(world):
    server = Served(str(world["path"]), world["folder"])
    term = Terminal(ssh_argv(server.port, world["ada"], tty=True))
    try:
        term.read_until(b"ada@acme.com")
        sessions = server.descendants()
        assert len(sessions) >= 2  # the zygote and the dashboard
        server.proc.send_signal(signal.SIGTERM)
        assert server.proc.wait(10) == 0
        assert "Stopped" in server.proc.stdout.read()
        assert term.wait(10) != 0  # the client is told and ends
        assert b"shutting down" in term.output, server.proc.stderr.read()
        assert b"\x1b[?1049l" in term.output  # the terminal is put back
        for pid in sessions:
            assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split(")")[1][:3]
    finally:
        term.close()
        server.stop()


# -- the database serve owns --------------------------------------------------------------------


def run_serve(*args: str, timeout: float = 20) -> subprocess.CompletedProcess:
    return subprocess.run([TEAMACCESS, "serve", "--listen", "127.0.0.1:0", *args],
                          capture_output=True, text=True, timeout=timeout)


def test_serve_creates_a_private_database_and_host_key(tmp_path):
    tmp_path.chmod(0o700)
    path = tmp_path / "new.db"
    server = Served(str(path), tmp_path)
    try:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        key_path = Path(server.host_key_line.split("(")[1].rstrip(")\n"))
        assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
        printed = server.host_key_line.split()[2]
        assert printed.startswith("SHA256:")
        keygen = subprocess.run(["ssh-keygen", "-lf", str(key_path)], capture_output=True, text=True)
        assert keygen.stdout.split()[1] == printed
    finally:
        assert server.stop() == 0


@pytest.mark.parametrize("what", ["file", "folder"])
def test_serve_refuses_a_database_others_may_write(tmp_path, what):
    folder = tmp_path / "data"
    folder.mkdir(mode=0o700)
    path = folder / "ta.db"
    db = Database(path)
    build_demo(db)
    db.close()
    path.chmod(0o600)
    (path if what == "file" else folder).chmod(0o660 if what == "file" else 0o770)
    before = path.read_bytes()
    refused = run_serve("--db", str(path))
    assert refused.returncode == 1
    assert refused.stderr.startswith("Error: ") and len(refused.stderr.strip().splitlines()) == 1
    assert "others" in refused.stderr and "Serving" not in refused.stdout
    assert path.read_bytes() == before
    assert not (folder / "ssh_host_ed25519_key").exists()


# -- two servers, one PostgreSQL database --------------------------------------------------------


@pytest.mark.postgres
def test_two_servers_on_one_postgresql_database_see_each_other_live(pg_url, tmp_path):
    import postgres_server

    tmp_path.chmod(0o700)
    url, schema = postgres_server.fresh_schema_url(pg_url)
    db = Database(url)
    try:
        build_demo(db)
        ada, _ = make_key(tmp_path, "ada")
        ops.add_key(db, ops.Actor("ada@acme.com"), (tmp_path / "ada.pub").read_text())
        one, two = Served(url, tmp_path), Served(url, tmp_path)
        term = Terminal(ssh_argv(two.port, ada, tty=True), cols=100, rows=40)
        try:
            term.read_until(b"ada@acme.com")
            added = one.ssh(ada, "members:add", "pg-live@acme.com", "--team", TEAM, "--role", "member")
            assert added.returncode == 0, added.stderr
            start = time.monotonic()
            term.read_until(b"pg-live@acme.com", timeout=5)  # served by the other host
            assert time.monotonic() - start < 2.0
            assert "pg-live@acme.com" in two.ssh(ada, "members", "--team", TEAM).stdout
            term.send(b"\x11")
            assert term.wait() == 0
        finally:
            term.close()
            assert one.stop() == 0 and two.stop() == 0
    finally:
        db.close()
        postgres_server.drop_schema(pg_url, schema)


def test_a_bad_or_busy_listen_address_is_one_line_and_creates_nothing(tmp_path):
    tmp_path.chmod(0o700)
    path = tmp_path / "ta.db"
    bad = run_serve("--db", str(path), "--listen", "nowhere")
    assert bad.returncode == 2 and "HOST:PORT" in bad.stderr
    assert list(tmp_path.iterdir()) == []
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        busy = subprocess.run([TEAMACCESS, "serve", "--db", str(path), "--listen", f"127.0.0.1:{port}"],
                              capture_output=True, text=True, timeout=30)
    assert busy.returncode == 1
    assert busy.stderr.startswith("Error: Can't listen on") and len(busy.stderr.splitlines()) == 1


def test_a_key_planted_on_a_future_admin_stops_logging_in_over_ssh(tmp_path):
    """The tester's attack, through the real client: mal (admin of evil-co only) adds a new
    account to evil-co, plants carol's key on it, and waits for ada to make it an admin."""
    folder = tmp_path / "plant"
    folder.mkdir(mode=0o700)
    path = folder / "ta.db"
    db = Database(path)
    build_demo(db)
    path.chmod(0o600)
    ada, _ = make_key(folder, "ada")
    mal, _ = make_key(folder, "mal")
    carol, carol_fp = make_key(folder, "carol")
    ops.add_key(db, ops.Actor("ada@acme.com"), (folder / "ada.pub").read_text())
    ops.create_team(db, ops.Actor("mal@acme.com"), "evil-co")
    ops.add_key(db, ops.Actor("mal@acme.com"), (folder / "mal.pub").read_text())
    server = Served(str(path), folder)
    try:
        victim = "victim@acme.com"
        assert server.ssh(mal, "members:add", victim, "--team", "evil-co", "--role", "viewer").returncode == 0
        planted = server.ssh(mal, "keys:add", "-", "--account", victim, input=(folder / "carol.pub").read_text())
        assert planted.returncode == 0, planted.stderr
        assert server.ssh(carol, "teams").returncode == 0  # mal administers all of victim's teams
        promoted = server.ssh(ada, "members:add", victim, "--team", TEAM, "--role", "admin")
        assert promoted.returncode == 0, promoted.stderr
        refused = server.ssh(carol, "teams")
        assert refused.returncode == 255 and refused.stdout == ""
        listed = server.ssh(ada, "keys", "--account", victim)
        assert listed.returncode == 0, listed.stderr
        assert carol_fp in listed.stdout
        assert "suspended: added by mal@acme.com, who no longer administers all of this " \
               "account's teams" in listed.stdout
        removed = server.ssh(ada, "keys:remove", carol_fp)
        assert removed.returncode == 0, removed.stderr
        assert queries.keys(db, victim) == []
    finally:
        assert server.stop() == 0
        db.close()


def test_one_account_may_not_take_every_room(world):
    """A leaked key or a runaway script holds at most --max-per-account connections; others
    still get in, and the refused one is told why in one line."""
    from teamaccess.tui.serve import per_account_cap

    assert [per_account_cap(n) for n in (1, 2, 4, 8, 32, 100)] == [1, 2, 2, 2, 8, 25]
    server = Served(str(world["path"]), world["folder"], "--max-sessions", "8", "--max-per-account", "1")
    holder = subprocess.Popen(ssh_argv(server.port, world["ada"]) + ["import", "-"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        time.sleep(1.5)  # ada's first connection is logged in, waiting for standard input
        assert holder.poll() is None
        second = server.ssh(world["ada"], "teams")
        assert second.returncode == 255 and second.stdout == ""
        assert "ada@acme.com already has 1 connection open, the most one account may" in second.stderr
        other = server.ssh(world["tim"], "teams")  # someone else is not crowded out
        assert other.returncode == 0, other.stderr
    finally:
        holder.kill()
        holder.communicate()
        assert server.stop() == 0


def test_sessions_sharing_one_connection_count_toward_the_cap(world):
    server = Served(str(world["path"]), world["folder"], "--max-sessions", "8", "--max-per-account", "2")

    async def run() -> None:
        async with asyncssh.connect(
            "127.0.0.1", server.port, known_hosts=None, client_keys=[str(world["ada"])], agent_path=None,
        ) as conn:
            held = [await conn.create_process("import -") for _ in range(2)]
            with pytest.raises(asyncssh.ChannelOpenError) as caught:
                await conn.create_process("teams")
            assert "ada@acme.com already has 2 sessions open" in caught.value.reason
            for process in held:
                process.stdin.write_eof()
                await process.wait()
            again = await conn.run("teams")  # a closed session frees its room
            assert again.exit_status == 0

    try:
        asyncio.run(run())
    finally:
        assert server.stop() == 0


def test_a_per_account_cap_over_the_whole_is_refused_in_one_line(tmp_path):
    folder = tmp_path / "srv"
    folder.mkdir(mode=0o700)
    done = subprocess.run([TEAMACCESS, "serve", "--db", str(folder / "ta.db"), "--listen", "127.0.0.1:0",
                           "--max-sessions", "4", "--max-per-account", "100"],
                          capture_output=True, text=True, timeout=30,
                          env={k: v for k, v in os.environ.items() if not k.startswith("TEAMACCESS_")})
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.strip().splitlines()[-1] == (
        "Error: --max-per-account 100 is more than --max-sessions 4: give at most 4, or raise "
        "--max-sessions. See 'teamaccess serve --help'.")
    assert not (folder / "ta.db").exists()  # refused before anything was made


# -- access requests over ssh ------------------------------------------------------------------


def test_request_and_approve_over_ssh(tmp_path):
    """A viewer asks with their key, an admin approves with theirs, the requester can't approve
    their own request; every step is audited with the key that took it."""
    folder = tmp_path / "serve"
    folder.mkdir(mode=0o700)
    path = folder / "ta.db"
    db = Database(path)
    build_demo(db)
    path.chmod(0o600)
    ada, ada_fp = make_key(folder, "ada")
    tim, tim_fp = make_key(folder, "tim")
    ops.add_key(db, ops.Actor("ada@acme.com"), (folder / "ada.pub").read_text())
    ops.add_key(db, ops.Actor("tim@acme.com"), (folder / "tim.pub").read_text())
    server = Served(str(path), folder)
    try:
        # ssh joins the words into one command line: quote as a shell user would
        asked = server.ssh(tim, "access:request", "--app", "api-staging", "--permissions",
                           "deploy", "--expires-in", "2h", "--reason", "'hotfix over ssh'")
        assert (asked.returncode, asked.stdout) == (0, ""), asked.stderr
        assert asked.stderr == "Requesting deploy on api-staging... done, request 1\n"

        own = server.ssh(tim, "access:approve", "1")
        assert own.returncode == 1 and own.stderr.startswith(
            "Error: You can't approve your own request 1"), own.stderr

        listed = server.ssh(ada, "access:requests", "--json")
        assert listed.returncode == 0, listed.stderr
        (row,) = json.loads(listed.stdout)
        assert (row["requester"], row["reason"], row["may_decide"]) == (
            "tim@acme.com", "hotfix over ssh", True)

        approved = server.ssh(ada, "access:approve", "1")
        assert approved.returncode == 0, approved.stderr
        assert approved.stderr.startswith("Approving request 1: deploy on api-staging for tim@acme.com until ")

        (mine,) = queries.access_requests(db, "tim@acme.com")
        assert (mine.status, mine.decided_by) == ("approved", "ada@acme.com")
        tim_row = next(r for r in queries.app_access(db, "ada@acme.com", "api-staging").rows
                       if r.email == "tim@acme.com")
        assert "deploy" in tim_row.permissions
        with db.read() as session:
            events = {(e.action, e.actor_email, e.outcome): e.actor_key for e in session.scalars(
                sql_select(AuditEvent).where(AuditEvent.target_email == "tim@acme.com",
                                         AuditEvent.action.in_(
                    ["access_request.create", "access_request.update", "collaborator.create"])))}
        assert events == {
            ("access_request.create", "tim@acme.com", "ok"): tim_fp,
            ("access_request.update", "tim@acme.com", "denied"): tim_fp,
            ("access_request.update", "ada@acme.com", "ok"): ada_fp,
            ("collaborator.create", "ada@acme.com", "ok"): ada_fp,
        }
    finally:
        assert server.stop() == 0
        db.close()
