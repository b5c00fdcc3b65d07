"""A PostgreSQL server for the tests: the one named by TEAMACCESS_TEST_PG_URL, or a throwaway one.

The throwaway server lives in a temporary folder, listens on a Unix socket only, runs with
fsync off (its data is thrown away) and is stopped when the test session ends. As root it runs
as the ``postgres`` user, since PostgreSQL refuses to run as root.
"""

from __future__ import annotations

import glob
import itertools
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from sqlalchemy.engine import make_url

URL_ENV = "TEAMACCESS_TEST_PG_URL"
HOW_TO_ENABLE = (
    f"PostgreSQL tests need a server: set {URL_ENV}=postgresql+psycopg://USER@/DB?host=SOCKDIR "
    "or install PostgreSQL's server binaries (Debian: apt-get install postgresql); "
    ".ci/run does the latter"
)

_names = itertools.count(1)


def find_bindir() -> Path | None:
    """The folder holding initdb and pg_ctl, or None when PostgreSQL's server isn't installed."""
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    found = shutil.which("initdb")
    if found:
        candidates.append(str(Path(found).resolve().parent))
    for folder in candidates:
        if (Path(folder) / "initdb").exists() and (Path(folder) / "pg_ctl").exists():
            return Path(folder)
    return None


class ThrowawayServer:
    """A PostgreSQL cluster in a temporary folder, started and stopped by the tests."""

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.root = Path(tempfile.mkdtemp(prefix="ta-pg-"))  # short: socket paths are limited
        self.data = self.root / "data"
        self.port = 5433
        self._as_root = os.geteuid() == 0

    def _run(self, *args: str) -> None:
        cmd = list(args)
        if self._as_root:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=120)

    def start(self) -> str:
        """Create and start the cluster; return the URL of a fresh database on it."""
        if self._as_root:
            shutil.chown(self.root, "postgres", "postgres")
        user = "postgres"
        self._run(str(self.bindir / "initdb"), "-D", str(self.data), "-U", user,
                  "--auth=trust", "-E", "UTF8", "--no-sync")
        options = f"-k {self.root} -p {self.port} -c listen_addresses='' -F"
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-o", options,
                  "-l", str(self.root / "log"), "-w", "-t", "60", "start")
        url = f"postgresql+psycopg://{user}@/postgres?host={self.root}&port={self.port}"
        create_database(url, "teamaccess_test")
        return f"postgresql+psycopg://{user}@/teamaccess_test?host={self.root}&port={self.port}"

    def stop(self) -> None:
        """Stop the server at once and remove its folder."""
        try:
            self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "immediate",
                      "-w", "stop")
        except (subprocess.SubprocessError, OSError):
            pass
        shutil.rmtree(self.root, ignore_errors=True)


def _connect(url: str):
    import psycopg

    parsed = make_url(url)
    query = dict(parsed.query)
    return psycopg.connect(
        dbname=parsed.database,
        user=parsed.username,
        password=parsed.password,
        host=query.get("host") or parsed.host,
        port=query.get("port") or parsed.port,
        autocommit=True,
    )


def create_database(url: str, name: str) -> None:
    """Create database ``name`` on the server of ``url`` unless it exists."""
    with _connect(url) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')


def fresh_schema_url(url: str) -> tuple[str, str]:
    """Make a new empty schema on ``url``'s database; return (URL that uses it, schema name)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    schema = f"t_{worker}_{os.getpid()}_{next(_names)}"
    with _connect(url) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        conn.execute(f'CREATE SCHEMA "{schema}"')
    scoped = make_url(url).update_query_dict({"options": f"-csearch_path={schema}"})
    return scoped.render_as_string(hide_password=False), schema


def drop_schema(url: str, schema: str) -> None:
    """Remove a schema made by :func:`fresh_schema_url`."""
    with _connect(url) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
