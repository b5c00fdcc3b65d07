"""queries.next_deadline: when time alone next changes what a team's dashboard shows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from teamaccess.store import ops, queries
from teamaccess.store.queries import _DEADLINE_SCAN

ADA = ops.Actor("ada@acme.com")
T0 = datetime(2030, 1, 1, tzinfo=UTC)


def _teams(db) -> None:
    db.clock = lambda: T0
    for team, app in (("acme", "web"), ("other", "far")):
        ops.create_team(db, ADA, team)
        ops.create_app(db, ADA, app, team)


def test_nothing_due_without_ends_or_waiting_requests(db):
    _teams(db)
    assert queries.next_deadline(db, "acme") is None


def test_the_soonest_end_or_lapse_of_the_teams_own_apps(db):
    _teams(db)
    ops.grant_access(db, ADA, "far", "x@out.dev", expires_in=timedelta(minutes=5))  # another team
    ops.grant_access(db, ADA, "web", "y@out.dev", expires_in=timedelta(hours=2))
    assert queries.next_deadline(db, "acme") == T0 + timedelta(hours=2)
    ops.add_member(db, ADA, "acme", "joe@acme.com", "member")
    ops.request_access(db, ops.Actor("joe@acme.com"), "web", ["deploy"], "on call")
    assert queries.next_deadline(db, "acme") == T0 + timedelta(hours=2)
    db.clock = lambda: T0 + timedelta(hours=3)  # the grant ended; the request lapses in 7 days
    assert queries.next_deadline(db, "acme") == T0 + timedelta(days=7)


def test_many_ends_elsewhere_still_find_the_teams_own(db):
    _teams(db)
    for n in range(_DEADLINE_SCAN + 5):
        ops.grant_access(db, ADA, "far", f"u{n}@out.dev", expires_in=timedelta(minutes=10))
    ops.grant_access(db, ADA, "web", "y@out.dev", expires_in=timedelta(hours=1))
    assert queries.next_deadline(db, "acme") == T0 + timedelta(hours=1)
