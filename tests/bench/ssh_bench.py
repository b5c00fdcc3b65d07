"""The benchmark's SSH rows: `teamaccess serve` driven by the real OpenSSH client on a pty.

- ssh start to the roster's first rows: from spawning ``ssh -tt`` to the first team user's email
  arriving on the client's terminal, beside ``ssh HOST --version`` (the handshake and a forked
  session doing nothing) as its floor;
- keystroke echo: one character typed into the roster's filter until the redrawn screen
  reaches the client;
- memory: the proportional set size (PSS: pages shared with the zygote counted once) of the
  server, its zygote and every session with 1, 10 and 20 dashboards open at once, and the
  figure per extra session.
"""

from __future__ import annotations

import fcntl
import os
import re
import select
import signal
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Sequence
from pathlib import Path


def _pss_kb(pid: int) -> int:
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return 0
    match = re.search(r"^Pss:\s+(\d+) kB", text, re.M)
    return int(match.group(1)) if match else 0


def _tree(root: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                ppid = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    found, todo = {root}, [root]
    while todo:
        for pid in children.get(todo.pop(), []):
            found.add(pid)
            todo.append(pid)
    return found


class Client:
    """``ssh -tt`` on a pty of our own, as a terminal emulator would run it."""

    def __init__(self, argv: list[str], cols: int = 120, rows: int = 40) -> None:
        self.master, slave = os.openpty()
        fcntl.ioctl(self.master, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        self.started = time.perf_counter()
        self.proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave,
                                     start_new_session=True)
        os.close(slave)
        self.output = bytearray()

    def read_until(self, needle: bytes, timeout: float = 60) -> float:
        """Seconds until ``needle`` arrives in what is read from now on."""
        start = len(self.output)
        deadline = time.perf_counter() + timeout
        while needle not in self.output[start:]:
            left = deadline - time.perf_counter()
            if left <= 0 or self.proc.poll() is not None:
                raise RuntimeError(f"ssh: no {needle!r} in {bytes(self.output[-500:])!r}")
            if select.select([self.master], [], [], left)[0]:
                self.output += os.read(self.master, 65536)
        return time.perf_counter()

    def drain(self, quiet: float = 0.15) -> None:
        """Read until the screen has been still for ``quiet`` seconds."""
        while select.select([self.master], [], [], quiet)[0]:
            try:
                self.output += os.read(self.master, 65536)
            except OSError:
                return

    def keystroke(self, key: bytes) -> float:
        """Seconds from typing ``key`` to the first byte of the redraw it causes."""
        self.drain()
        start = time.perf_counter()
        os.write(self.master, key)
        if not select.select([self.master], [], [], 10)[0]:
            raise RuntimeError(f"ssh: no redraw after {key!r}")
        took = time.perf_counter() - start
        self.output += os.read(self.master, 65536)
        return took

    def close(self) -> None:
        if self.proc.poll() is None:
            os.write(self.master, b"\x11")  # ctrl+q
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        os.close(self.master)


class SshRuns:
    """The SSH rows on one team: one server for the whole run, one ``round`` per run."""

    def __init__(self, db: Path, workdir: Path, admin: str, first_email: str,
                 session_counts: Sequence[int] = (1, 10, 20)) -> None:
        from teamaccess.store.db import Database
        from teamaccess.store.ops import Actor, add_key
        from teamaccess.store.queries import account_for_key

        self.first_email = first_email.encode()
        self.session_counts = tuple(session_counts)
        keys = workdir / "ssh"
        keys.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.key = keys / "bench_ed25519"
        if not self.key.exists():
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(self.key)],
                           check=True)
        printed = subprocess.run(["ssh-keygen", "-lf", str(self.key)], check=True,
                                 capture_output=True, text=True).stdout.split()[1]
        os.chmod(db, 0o600)  # serve refuses a database its group may write
        database = Database(db)
        try:
            if account_for_key(database, printed) is None:
                add_key(database, Actor(admin), self.key.with_suffix(".pub").read_text())
        finally:
            database.close()
        script = Path(sys.executable).with_name("teamaccess")
        env = {k: v for k, v in os.environ.items() if not k.startswith("TEAMACCESS_")}
        self.server = subprocess.Popen(
            [str(script), "serve", "--db", str(db), "--listen", "127.0.0.1:0",
             "--host-key", str(keys / "host_key"), "--max-sessions", "64"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env,
        )
        line = self.server.stdout.readline()
        match = re.search(r":(\d+)$", line.strip())
        if match is None:
            self.server.kill()
            raise RuntimeError(f"serve did not start: {line!r}")
        self.server.stdout.readline()  # the host key line
        self.port = int(match.group(1))
        self.first: list[float] = []
        self.floor: list[float] = []
        self.echo: list[float] = []
        self.memory: dict[int, float] = {}
        self.round()  # warm up: caches, the zygote's first fork
        self.first.clear()
        self.floor.clear()
        self.echo.clear()

    def argv(self, tty: bool) -> list[str]:
        return ["ssh", "-i", str(self.key), "-p", str(self.port), "-F", "/dev/null",
                "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                "-o", "BatchMode=yes", "-o", "LogLevel=ERROR", "-o", "IdentitiesOnly=yes",
                "-tt" if tty else "-T", "--", "127.0.0.1"]

    def round(self) -> None:
        start = time.perf_counter()
        done = subprocess.run([*self.argv(False), "--version"], capture_output=True, timeout=60)
        if done.returncode != 0:
            raise RuntimeError(f"ssh --version failed: {done.stderr!r}")
        self.floor.append(time.perf_counter() - start)
        client = Client(self.argv(True))
        try:
            self.first.append(client.read_until(self.first_email) - client.started)
            client.keystroke(b"/")
            for key in b"user":
                self.echo.append(client.keystroke(bytes([key])) * 1000)
            client.keystroke(b"\x1b")
        finally:
            client.close()

    def measure_memory(self) -> None:
        clients: list[Client] = []
        try:
            for count in self.session_counts:
                while len(clients) < count:
                    client = Client(self.argv(True))
                    clients.append(client)
                    client.read_until(self.first_email)
                for client in clients:
                    client.drain(0.3)
                self.memory[count] = sum(_pss_kb(pid) for pid in _tree(self.server.pid)) / 1024
        finally:
            for client in clients:
                client.close()

    def stop(self) -> None:
        if self.server.poll() is None:
            self.server.send_signal(signal.SIGTERM)
            try:
                self.server.wait(15)
            except subprocess.TimeoutExpired:
                self.server.kill()
                self.server.wait()
        self.server.stdout.close()
