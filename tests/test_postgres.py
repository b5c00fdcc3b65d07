"""The same store on PostgreSQL: same answers as on SQLite, same refusals, same audit guarantees.

The PostgreSQL cases come from the ``pg_db`` / ``any_db`` fixtures (conftest.py): a real
server from TEAMACCESS_TEST_PG_URL or a throwaway one; they are skipped, with the reason, only
where neither exists.
"""

from __future__ import annotations

import dataclasses
import time
from datetime import datetime

import pytest
from conftest import _check_invariants, _state
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from teamaccess.store import ops, portable, queries
from teamaccess.store.db import Database
from teamaccess.store.demo import DEMO_ADMIN, DEMO_TEAM, build_demo
from teamaccess.store.errors import (
    DatabaseProblem,
    Invalid,
    LastAdminRefused,
    NotFound,
    Refused,
    StoreError,
)

ADA = ops.Actor(DEMO_ADMIN, "ada")
JOE = ops.Actor("joe@acme.com", "joe")
TIM = ops.Actor("tim@acme.com", "tim")
SAM = ops.Actor("sam@freelance.dev", "sam")


def _script(db: Database) -> list[object]:
    """Every operation once, in an order where each succeeds; returns what each returned."""
    out: list[object] = [
        ops.create_team(db, ADA, "second-team"),
        ops.add_member(db, ADA, DEMO_TEAM, "new@acme.com", "viewer"),
        ops.add_member(db, ADA, DEMO_TEAM, "new@acme.com", "member"),  # create-or-update
        ops.set_role(db, ADA, DEMO_TEAM, "new@acme.com", "admin"),
        ops.set_role(db, ADA, DEMO_TEAM, "new@acme.com", "member"),
        ops.grant_access(db, ADA, "api-staging", "new@acme.com", "deploy,operate"),
        ops.update_access(db, ADA, "api-staging", "new@acme.com", ["manage"]),
        ops.remove_member(db, ADA, DEMO_TEAM, "new@acme.com"),  # keeps the grant
        ops.revoke_access(db, ADA, "api-staging", "new@acme.com"),
        ops.join_app(db, TIM, "api-staging"),
        ops.leave_app(db, TIM, "api-staging"),
        ops.lock_app(db, ADA, "test"),
        ops.unlock_app(db, ADA, "test"),
        ops.create_app(db, JOE, "joe-new-app", DEMO_TEAM, locked=True),
        ops.create_app(db, JOE, "joe-personal"),
        ops.transfer_app(db, JOE, "joe-personal", DEMO_TEAM),
        ops.transfer_app(db, ADA, "joe-personal", "joe@acme.com"),
        ops.destroy_app(db, JOE, "joe-personal"),
        ops.add_collaborator(db, ADA, DEMO_TEAM, "outside@vendor.io", "docs-site"),
        ops.set_mfa(db, SAM, True),
        ops.bind_login(db, ADA, "ada", DEMO_ADMIN),
        ops.bind_login(db, ADA, "joe", "joe@acme.com"),
        ops.rename_team(db, ADA, "second-team", "renamed-team"),
    ]
    doc = portable.export_team(db, DEMO_ADMIN, DEMO_TEAM)
    doc["team"] = "imported-team"
    for row in doc["apps"]:
        row["name"] = "i-" + row["name"]
    doc["access"] = {"i-" + app: rows for app, rows in doc["access"].items()}
    out.append(portable.import_team(db, ADA, doc))
    return out


def _steady(value: object) -> object:
    """``value`` with the moments of this run blurred (the demo's fixed ones are kept)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _steady(dataclasses.asdict(value))
    if isinstance(value, dict):
        return {k: _steady(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_steady(v) for v in value]
    if isinstance(value, datetime):
        assert value.tzinfo is not None, "every time the store gives back is aware"
        return "now" if value.year >= 2025 else value
    return value


def _answers(db: Database) -> list[object]:
    """What the reads say afterwards, minus the timestamps and ids that differ by nature."""
    return _steady([
        [(r.email, r.role) for r in queries.roster(db, DEMO_ADMIN, DEMO_TEAM)],
        queries.apps(db, DEMO_ADMIN, DEMO_TEAM),
        queries.app_access(db, DEMO_ADMIN, "api-prod"),
        queries.why(db, DEMO_ADMIN, "website-prod", "john@acme.com"),
        queries.resources(db, DEMO_ADMIN, DEMO_TEAM),
        queries.billing(db, DEMO_ADMIN, DEMO_TEAM),
        [(t.name,) for t in queries.teams(db, DEMO_ADMIN)],
        [(a.actor_email, a.actor_login, a.action, a.app, a.target, a.before, a.after, a.outcome)
         for a in queries.audit(db, DEMO_ADMIN, DEMO_TEAM)],
    ])


@pytest.mark.postgres
def test_every_operation_gives_the_same_answers_on_sqlite_and_postgresql(demo_db, pg_db):
    build_demo(pg_db)
    results = {}
    for name, database in (("sqlite", demo_db), ("postgres", pg_db)):
        returned = _script(database)
        _check_invariants(database)
        results[name] = (_steady(returned), _state(database), _answers(database))
    sqlite_side, pg_side = results["sqlite"], results["postgres"]
    assert pg_side[0] == sqlite_side[0]
    assert pg_side[1] == sqlite_side[1]
    for mine, theirs in zip(pg_side[2], sqlite_side[2], strict=True):
        assert mine == theirs


# Refusals: each leaves everything as it was, bar one denied audit event, on both backends.
REFUSALS = [
    ("viewer adds a user", lambda db: ops.add_member(db, TIM, DEMO_TEAM, "x@acme.com", "member"),
     Refused),
    ("collaborator creates an app", lambda db: ops.create_app(db, SAM, "sam-app", DEMO_TEAM),
     Refused),
    ("lock a locked app", lambda db: ops.lock_app(db, ADA, "api-prod"), Refused),
    ("unknown permission", lambda db: ops.grant_access(db, ADA, "test", "x@acme.com", "root"),
     Invalid),
    ("grant to an admin", lambda db: ops.grant_access(db, ADA, "test", "grace@acme.com"), Refused),
    ("no such app", lambda db: ops.destroy_app(db, ADA, "no-such-app"), NotFound),
    ("markup as an email", lambda db: ops.add_member(db, ADA, DEMO_TEAM, "[b]x@acme.com", "admin"),
     Invalid),
    ("viewer via members:set", lambda db: ops.set_role(db, ADA, DEMO_TEAM, "joe@acme.com", "viewer"),
     Invalid),
]


@pytest.mark.parametrize("what,attempt,error", REFUSALS, ids=[r[0] for r in REFUSALS])
def test_a_refusal_changes_nothing_but_the_log(any_demo_db, what, attempt, error):
    before, events = _state(any_demo_db), queries.audit_count(any_demo_db)
    with pytest.raises(error):
        attempt(any_demo_db)
    assert _state(any_demo_db) == before
    assert queries.audit_count(any_demo_db) == events + 1
    last = queries.audit(any_demo_db, DEMO_ADMIN, DEMO_TEAM, limit=None)
    assert [e.outcome for e in last if e.outcome == "denied"]  # logged as denied


def test_the_last_admin_rule_holds_on_each_backend(any_db):
    solo = ops.Actor("solo@acme.com", "solo")
    ops.create_team(any_db, solo, "solo-team")
    before = _state(any_db)
    with pytest.raises(LastAdminRefused):
        ops.set_role(any_db, solo, "solo-team", "solo@acme.com", "member")
    with pytest.raises(LastAdminRefused):
        ops.remove_member(any_db, solo, "solo-team", "solo@acme.com")
    assert _state(any_db) == before


@pytest.mark.parametrize("statement", [
    "UPDATE audit_event SET outcome = 'ok'",
    "DELETE FROM audit_event",
    "UPDATE audit_event SET reason = NULL WHERE id = (SELECT min(id) FROM audit_event)",
])
def test_the_audit_log_is_append_only_on_each_backend(any_demo_db, statement):
    with pytest.raises(StoreError):
        ops.lock_app(any_demo_db, TIM, "test")  # a denied event to protect
    events = queries.audit(any_demo_db, DEMO_ADMIN, DEMO_TEAM, limit=None)
    with pytest.raises(DBAPIError, match="append-only"):
        with any_demo_db.engine.begin() as conn:
            conn.execute(text(statement))
    # And through the store's own write path it is refused in one line, nothing changed.
    with pytest.raises(DatabaseProblem, match="append-only.*nothing was changed"):
        any_demo_db.write(lambda s: s.execute(text(statement)))
    assert queries.audit(any_demo_db, DEMO_ADMIN, DEMO_TEAM, limit=None) == events


def test_another_writer_moves_the_change_token_on_each_backend(any_demo_db):
    other = Database(any_demo_db.url)
    try:
        token = any_demo_db.change_token()
        assert any_demo_db.change_token() == token  # stable while nothing happens
        ops.lock_app(other, ADA, "test")
        deadline = time.monotonic() + 5
        while any_demo_db.change_token() == token and time.monotonic() < deadline:
            time.sleep(0.01)
        assert any_demo_db.change_token() != token
        token = any_demo_db.change_token()
        with pytest.raises(Refused):
            ops.lock_app(other, ADA, "test")  # a refusal is a commit too (its audit event)
        assert any_demo_db.change_token() != token
    finally:
        other.close()


def test_a_newer_schema_is_refused_on_each_backend(any_db):
    any_db.write(lambda s: s.execute(text("UPDATE meta SET value = '99' WHERE key = 'schema_version'")))
    with pytest.raises(DatabaseProblem, match="schema version 99, newer than this teamaccess"):
        Database(any_db.url)


@pytest.mark.postgres
def test_an_unreachable_server_is_one_line(tmp_path):
    url = f"postgresql+psycopg://nobody@/nowhere?host={tmp_path}&port=1"
    with pytest.raises(DatabaseProblem) as caught:
        Database(url)
    assert "\n" not in str(caught.value)
    assert str(caught.value).startswith("Can't reach the database at postgresql+psycopg://")


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_first_opens_at_the_same_moment_make_one_schema(backend, tmp_path, request):
    import threading

    import postgres_server

    if backend == "sqlite":
        url = str(tmp_path / "fresh.db")
    else:
        url, schema = postgres_server.fresh_schema_url(request.getfixturevalue("pg_url"))
    start = threading.Barrier(4)
    outcomes: list[object] = []

    def open_it():
        start.wait()
        try:
            Database(url).close()
            outcomes.append("ok")
        except Exception as err:  # noqa: BLE001 - collected and shown by the assertion
            outcomes.append(err)

    threads = [threading.Thread(target=open_it) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert outcomes == ["ok"] * 4
    db = Database(url)
    with db.read() as s:
        assert s.execute(text("SELECT count(*) FROM meta")).scalar() == 1
    db.close()
    if backend == "postgres":
        postgres_server.drop_schema(request.getfixturevalue("pg_url"), schema)
