"""Shared fixtures: a fresh SQLite database file per test, with or without the demo team."""

from __future__ import annotations

import pytest

from store.db import Database
from store.demo import build_demo


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
