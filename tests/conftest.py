"""Shared fixtures: a fresh SQLite database file per test, with or without the demo team."""

from __future__ import annotations

import pytest
from teamaccess.store.db import Database
from teamaccess.store.demo import build_demo


@pytest.fixture(autouse=True)
def _private_data_folder(tmp_path_factory, monkeypatch):
    """The user's data folder (where unexpected errors are logged) is a temporary one: a test
    that provokes an error must not write into the real user's teamaccess.log."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path_factory.mktemp("xdg-data")))


@pytest.fixture
def db(tmp_path):
    """An empty database in a temporary file."""
    database = Database(tmp_path / "teamaccess.db")
    yield database
    database.close()


@pytest.fixture
def demo_db(tmp_path):
    """A database holding the demo team acme-widgets."""
    database = Database(tmp_path / "demo.db")
    build_demo(database)
    yield database
    database.close()


# -- PostgreSQL (issue 6): the same store on a real server ---------------------------------------
# TEAMACCESS_TEST_PG_URL names a server (.ci/run starts one); without it a throwaway server is
# started from the local PostgreSQL binaries; without those the PostgreSQL cases are skipped
# with a reason that says how to enable them. Each test gets its own empty schema.


@pytest.fixture(scope="session")
def pg_url():
    """The URL of a PostgreSQL database the tests may fill with schemas of their own."""
    import os

    import postgres_server

    url = os.environ.get(postgres_server.URL_ENV)
    if url:
        yield url
        return
    bindir = postgres_server.find_bindir()
    if bindir is None:
        pytest.skip(postgres_server.HOW_TO_ENABLE)
    server = postgres_server.ThrowawayServer(bindir)
    try:
        url = server.start()
    except Exception as err:  # noqa: BLE001 - a server that won't start is reported, not hidden
        server.stop()
        pytest.fail(f"could not start a throwaway PostgreSQL server: {err}")
    yield url
    server.stop()


@pytest.fixture
def pg_db(pg_url):
    """A fresh, empty teamaccess database on PostgreSQL (a schema of its own)."""
    import postgres_server

    url, schema = postgres_server.fresh_schema_url(pg_url)
    database = Database(url)
    yield database
    database.close()
    postgres_server.drop_schema(pg_url, schema)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def any_db(request, tmp_path):
    """An empty database on each backend in turn: an SQLite file, then PostgreSQL."""
    if request.param == "sqlite":
        database = Database(tmp_path / "any.db")
        yield database
        database.close()
    else:
        yield request.getfixturevalue("pg_db")


@pytest.fixture
def any_demo_db(any_db):
    """The demo team acme-widgets, on each backend in turn."""
    build_demo(any_db)
    return any_db
