"""Export and import keep a grant's end: a round trip never turns temporary access permanent.

Export writes each grant's ``expires_at`` (null: it never ends) and leaves out a grant that has
ended; import reads it back and refuses a past, too distant or malformed end with a one-line
error naming the row, writing nothing (bar the denied event every refused import logs).
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta

import pytest
from conftest import Clock, _state, seed
from sqlalchemy import select
from teamaccess.store import ops, portable, queries
from teamaccess.store.db import Database
from teamaccess.store.errors import Invalid
from teamaccess.store.models import Grant

ADA = ops.Actor("ada@acme.com", "ada")
START = datetime(2030, 1, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> Clock:
    return Clock(START)


@pytest.fixture
def source(any_db: Database, clock: Clock) -> Database:
    """The seed's acme team with two temporary grants and one that has ended."""
    seed(any_db)
    any_db.clock = clock
    clock.now = START - timedelta(hours=2)
    ops.grant_access(any_db, ADA, "myapp", "gone@outside.dev", expires_in=timedelta(hours=1))
    clock.now = START
    ops.grant_access(any_db, ADA, "myapp", "con@outside.dev", "deploy", expires_in=timedelta(hours=8))
    ops.grant_access(any_db, ADA, "test", "kit@outside.dev", expires_in=timedelta(days=3))
    return any_db


@pytest.fixture
def target(tmp_path, clock: Clock) -> Database:
    database = Database(tmp_path / "target.db")
    database.clock = clock
    yield database
    database.close()


def ends(db: Database) -> dict[tuple[str, str], datetime | None]:
    return {(r.email, app): r.expires_at
            for app in ("myapp", "test")
            for r in queries.app_access(db, "ada@acme.com", app).rows if r.grant is not None}


def state(db: Database) -> tuple:
    with db.read() as session:
        return _state(db), sorted((g.id, g.expires_at) for g in session.scalars(select(Grant)))


def test_export_writes_each_grants_end_and_leaves_out_an_ended_one(source):
    doc = portable.export_team(source, "ada@acme.com", "acme")
    rows = {(app, r["email"]): r for app, found in doc["access"].items() for r in found}
    assert rows[("myapp", "con@outside.dev")]["expires_at"] == "2030-01-02T17:00:00Z"
    assert rows[("test", "kit@outside.dev")]["expires_at"] == "2030-01-05T09:00:00Z"
    assert rows[("test", "sam@freelance.dev")]["expires_at"] is None  # never ends
    assert ("myapp", "gone@outside.dev") not in rows  # ended an hour ago: gives nothing


def test_a_round_trip_keeps_temporary_access_temporary(source, target, clock):
    doc = portable.export_team(source, "ada@acme.com", "acme")
    portable.import_team(target, ADA, doc)
    assert ends(target) == ends(source) == {
        ("con@outside.dev", "myapp"): START + timedelta(hours=8),
        ("kit@outside.dev", "test"): START + timedelta(days=3),
        ("sam@freelance.dev", "test"): None,
    }
    create = next(e for e in queries.audit(target, "ada@acme.com", "acme")
                  if e.target == "con@outside.dev")
    assert create.action == "collaborator.create" and create.after["expires_at"].startswith("2030-01-02T17:00")
    # And the imported grant ends when the exported one would have.
    clock.now = START + timedelta(hours=8)
    assert ("con@outside.dev", "myapp") not in ends(target)


def test_importing_again_changes_an_end_and_logs_it(source, clock):
    doc = portable.export_team(source, "ada@acme.com", "acme")
    row = next(r for r in doc["access"]["myapp"] if r["email"] == "con@outside.dev")
    row["expires_at"] = "2030-01-03T09:00:00Z"
    sam = next(r for r in doc["access"]["test"] if r["email"] == "sam@freelance.dev")
    sam["expires_at"] = "2030-01-02T10:00:00+00:00"  # a permanent grant becomes temporary
    result = portable.import_team(source, ADA, doc)
    assert result.grants_changed == 2 and result.grants_added == 0
    assert ends(source)[("con@outside.dev", "myapp")] == datetime(2030, 1, 3, 9, tzinfo=UTC)
    assert ends(source)[("sam@freelance.dev", "test")] == datetime(2030, 1, 2, 10, tzinfo=UTC)
    update = next(e for e in queries.audit(source, "ada@acme.com", "acme")
                  if e.target == "sam@freelance.dev")
    assert update.action == "collaborator.update"
    assert update.before == {"permissions": ["view", "deploy"]}
    assert update.after == {"permissions": ["view", "deploy"], "expires_at": "2030-01-02T10:00:00+00:00"}
    # The same document again: nothing to change.
    assert portable.import_team(source, ADA, doc).changes == 0


@pytest.mark.parametrize(("value", "fragment"), [
    ("2030-01-02T08:59:59Z", "access.myapp[0].expires_at: 2030-01-02T08:59:59Z has passed"),
    ("2030-01-02T09:00:00Z", "access.myapp[0].expires_at: 2030-01-02T09:00:00Z has passed"),
    ("2030-04-03T09:00:00Z", "access.myapp[0].expires_at: 2030-04-03T09:00:00Z is more than 90 days away"),
    ("soon", "access.myapp[0].expires_at: expected an ISO 8601 time"),
    (12, "access.myapp[0].expires_at: expected an ISO 8601 time"),
])
def test_a_bad_end_is_refused_naming_the_row_and_nothing_is_written(source, value, fragment):
    doc = portable.export_team(source, "ada@acme.com", "acme")
    doc = copy.deepcopy(doc)
    doc["access"]["myapp"] = [{"email": "new@outside.dev", "permissions": [{"name": "view"}],
                               "expires_at": value}]
    before, events = state(source), queries.audit_count(source)
    with pytest.raises(Invalid) as refused:
        portable.import_team(source, ADA, doc)
    assert fragment in str(refused.value) and "\n" not in str(refused.value)
    assert state(source) == before
    assert queries.audit_count(source) == events + 1  # the one denied event


def test_a_row_without_expires_at_is_a_grant_that_never_ends(target, clock):
    doc = {"team": "fresh", "members": [], "apps": [{"name": "svc"}],
           "access": {"svc": [{"email": "con@outside.dev", "permissions": ["view"]}]}}
    portable.import_team(target, ADA, doc)
    assert {r.email: r.expires_at for r in queries.app_access(target, "ada@acme.com", "svc").rows
            if r.grant is not None} == {"con@outside.dev": None}
