"""Schema version 4 (temporary grants, access requests): older databases are upgraded in place."""

from __future__ import annotations

import sqlite3

import pytest
from conftest import WITHOUT_SCHEMA_4
from sqlalchemy import text
from teamaccess.store.db import Database
from teamaccess.store.demo import build_demo
from teamaccess.store.models import SCHEMA_VERSION, AccessRequest, Grant


def _grants(db: Database) -> list[tuple[int, object]]:
    with db.read() as session:
        return [(g.id, g.expires_at) for g in session.query(Grant).order_by(Grant.id)]


def _check_version_4(db: Database, grants_before: list) -> None:
    with db.read() as session:
        assert session.execute(text("SELECT value FROM meta WHERE key = 'schema_version'")).scalar() \
            == str(SCHEMA_VERSION) == "4"
    # every grant of version 3 is kept and never ends
    assert [gid for gid, _ in _grants(db)] == [gid for gid, _ in grants_before]
    assert {expires for _, expires in _grants(db)} == {None}
    # the new table takes a request
    with db.read() as session:
        app_id, account_id = session.execute(text('SELECT app_id, account_id FROM "grant" LIMIT 1')).one()

    def add(session):
        session.add(AccessRequest.holding({"deploy"}, app_id=app_id, requester_id=account_id, reason="on call"))

    db.write(add)
    with db.read() as session:
        (request,) = session.query(AccessRequest).all()
        assert request.status == "pending" and request.permissions == {"view", "deploy"}


def test_a_version_3_sqlite_file_is_upgraded_in_place(tmp_path):
    path = tmp_path / "v3.db"
    db = Database(path)
    build_demo(db)
    before = _grants(db)
    db.close()
    assert before
    conn = sqlite3.connect(path)
    conn.executescript(WITHOUT_SCHEMA_4)
    conn.execute("UPDATE meta SET value = '3' WHERE key = 'schema_version'")
    conn.commit()
    conn.close()
    db = Database(path)
    try:
        _check_version_4(db, before)
    finally:
        db.close()


def test_an_upgrade_to_4_that_fails_leaves_the_version_3_file_as_it_was(tmp_path):
    path = tmp_path / "v3.db"
    Database(path).close()
    conn = sqlite3.connect(path)
    conn.executescript('DROP TABLE access_request; CREATE TABLE access_request (x INTEGER);'
                       'DROP INDEX ix_grant_expires_at; ALTER TABLE "grant" DROP COLUMN expires_at;')
    conn.execute("UPDATE meta SET value = '3' WHERE key = 'schema_version'")
    conn.commit()
    conn.close()
    with pytest.raises(Exception) as caught:
        Database(path)
    assert "\n" not in str(caught.value)
    conn = sqlite3.connect(path)
    columns = [row[1] for row in conn.execute('PRAGMA table_info("grant")')]
    version = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0]
    conn.close()
    assert "expires_at" not in columns and version == "3"


@pytest.mark.postgres
def test_a_version_3_postgresql_database_is_upgraded_in_place(pg_url):
    import postgres_server

    url, schema = postgres_server.fresh_schema_url(pg_url)
    try:
        db = Database(url)
        build_demo(db)
        before = _grants(db)
        db.write(lambda session: (session.connection().exec_driver_sql(WITHOUT_SCHEMA_4),
                                  session.execute(text("UPDATE meta SET value = '3' WHERE key = 'schema_version'"))))
        db.close()
        db = Database(url)
        try:
            _check_version_4(db, before)
        finally:
            db.close()
    finally:
        postgres_server.drop_schema(pg_url, schema)


def test_the_clock_is_the_databases_and_can_be_replaced(db):
    from datetime import UTC, datetime

    fixed = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert db.now().tzinfo is not None
    db.clock = lambda: fixed
    assert db.now() == fixed
