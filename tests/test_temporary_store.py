"""Temporary grants in the store (SPEC "Temporary access"): a clock the tests move, no sleeping.

An ended grant gives nothing from its end on, in every read; the next write that touches its
app removes it with its own ``collaborator.destroy`` event (reason ``expired``), as
``ops.prune_expired`` does; a refused write removes nothing.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from conftest import Clock, _check_invariants, _state, seed
from sqlalchemy import select
from teamaccess.store import ops, queries
from teamaccess.store.db import Database
from teamaccess.store.errors import Invalid, NotFound, Refused
from teamaccess.store.models import App, AuditEvent, Grant
from teamaccess.store.policy import AppAction

ADA = ops.Actor("ada@acme.com", "ada")  # admin of acme
JOE = ops.Actor("joe@acme.com", "joe")  # member of acme
CON = "con@outside.dev"  # the contractor who gets temporary access


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=5))


@pytest.fixture
def tdb(any_db: Database, clock: Clock) -> Database:
    """The seed's teams (acme: myapp, test, website-prod locked, website-staging), on SQLite
    and PostgreSQL, with the test's clock."""
    seed(any_db)
    any_db.clock = clock
    return any_db


@pytest.fixture
def sqlite_tdb(db: Database, clock: Clock) -> Database:
    """The same on SQLite only, for the many-case tests."""
    seed(db)
    db.clock = clock
    return db


def state(db: Database) -> dict:
    """conftest._state plus every grant's end, so a refusal that touched an end is caught."""
    with db.read() as session:
        ends = sorted((g.app_id, g.account_id, g.expires_at) for g in session.scalars(select(Grant)))
    return {**_state(db), "ends": ends}


def events(db: Database, since: int) -> list[AuditEvent]:
    with db.read() as session:
        return list(session.scalars(select(AuditEvent).where(AuditEvent.id > since).order_by(AuditEvent.id)))


def last_id(db: Database) -> int:
    with db.read() as session:
        return max(session.scalars(select(AuditEvent.id)), default=0)


def grant_rows(db: Database, app: str) -> dict[str, datetime | None]:
    return {r.email: r.expires_at for r in queries.app_access(db, "ada@acme.com", app).rows
            if r.grant is not None}


def raw_grants(db: Database, app: str) -> int:
    with db.read() as session:
        app_id = session.scalars(select(App.id).where(App.name == app)).one()
        return len(session.scalars(select(Grant).where(Grant.app_id == app_id)).all())


# -- a grant that ends -----------------------------------------------------------------------


def test_a_temporary_grant_gives_its_set_until_its_end_and_nothing_from_then(tdb, clock):
    start = clock.now
    change = ops.grant_access(tdb, ADA, "myapp", CON, "deploy", expires_in=timedelta(hours=8))
    end = start + timedelta(hours=8)
    assert change.expires_at == end and change.permissions == ("view", "deploy")
    assert grant_rows(tdb, "myapp")[CON] == end
    event = events(tdb, last_id(tdb) - 1)[-1]
    assert event.action == "collaborator.create" and '"expires_at": "' in event.after

    clock.now = end - timedelta(seconds=1)  # one second before the end: everything holds
    assert [a.name for a in queries.apps(tdb, CON)] == ["myapp"]
    assert [(t.name, t.role) for t in queries.teams(tdb, CON)] == [("acme", "collaborator")]
    assert CON in [r.email for r in queries.roster(tdb, "ada@acme.com", "acme")]
    assert queries.may(tdb, CON, "myapp", AppAction.VIEW)
    assert {r.permission for r in queries.why(tdb, "ada@acme.com", "myapp", CON) if r.held} == {
        "view", "deploy"}
    assert queries.app_access(tdb, CON, "myapp").actor_permissions == ("view", "deploy")

    clock.now = end  # at the end: nothing, in every read
    assert CON not in grant_rows(tdb, "myapp")
    assert CON not in [r.email for r in queries.app_access(tdb, "ada@acme.com", "myapp").rows]
    assert queries.apps(tdb, CON) == []
    assert queries.teams(tdb, CON) == []
    assert CON not in [r.email for r in queries.roster(tdb, "ada@acme.com", "acme")]
    assert not queries.may(tdb, CON, "myapp", AppAction.VIEW)
    why = queries.why(tdb, "ada@acme.com", "myapp", CON)
    assert not any(r.held for r in why)
    stamp = end.strftime("%Y-%m-%d %H:%M:%S UTC")
    assert all(f"grant expired at {stamp}" in r.reasons[0] for r in why)
    with pytest.raises(Refused, match=f"grant expired at {stamp}"):
        queries.app_access(tdb, CON, "myapp")
    # Decided at read time: the row is still there until a write or a prune removes it.
    assert raw_grants(tdb, "myapp") == 1


def test_a_member_whose_grant_ended_keeps_what_the_role_gives(tdb, clock):
    ops.grant_access(tdb, ADA, "myapp", "joe@acme.com", "deploy,operate", expires_in=timedelta(minutes=30))
    row = next(r for r in queries.app_access(tdb, "ada@acme.com", "myapp").rows if r.email == "joe@acme.com")
    assert row.permissions == ("view", "deploy", "operate") and row.expires_at is not None
    clock.move(minutes=30)
    row = next(r for r in queries.app_access(tdb, "ada@acme.com", "myapp").rows if r.email == "joe@acme.com")
    assert (row.permissions, row.grant, row.expires_at) == (("view",), None, None)
    assert [s[0] for s in row.sources] == ["team view"]
    (access,) = [a for a in queries.member_access(tdb, "ada@acme.com", "acme", "joe@acme.com")
                 if a[0].name == "myapp"]
    assert access[0].permissions == ("view",)
    deploy = next(r for r in queries.why(tdb, "ada@acme.com", "myapp", "joe@acme.com") if r.permission == "deploy")
    assert not deploy.held and "grant expired at" in deploy.reasons[0]


def test_an_ended_manage_grant_manages_nothing(sqlite_tdb, clock):
    db = sqlite_tdb
    ops.grant_access(db, ADA, "myapp", CON, "manage", expires_in=timedelta(hours=1))
    ops.lock_app(db, ops.Actor(CON), "myapp")  # allowed while it lasts
    clock.move(hours=1)
    before, mark = state(db), last_id(db)
    # Refused by the rule, as a read would refuse it, not as a stranger's "Couldn't find".
    with pytest.raises(Refused, match="Only team admins and accounts with manage"):
        ops.unlock_app(db, ops.Actor(CON), "myapp")
    with pytest.raises(Refused, match="may change who has access"):
        ops.prune_expired(db, ops.Actor(CON), "myapp")
    assert state(db) == before  # nothing pruned by a refused write
    assert [(e.action, e.outcome) for e in events(db, mark)] == [
        ("app.update", "denied"), ("collaborator.destroy", "denied")]


# -- the next write removes ended grants, one event each --------------------------------------

WRITES = {
    "grant": lambda db: ops.grant_access(db, ADA, "myapp", "new@outside.dev"),
    "update": lambda db: ops.update_access(db, ADA, "myapp", "sam@freelance.dev", "operate"),
    "revoke": lambda db: ops.revoke_access(db, ADA, "myapp", "sam@freelance.dev"),
    "lock": lambda db: ops.lock_app(db, ADA, "myapp"),
    "unlock": lambda db: (ops.lock_app(db, ADA, "website-staging"),
                          ops.unlock_app(db, ADA, "myapp")),
    "join": lambda db: ops.join_app(db, JOE, "myapp"),
    "leave": lambda db: ops.leave_app(db, ops.Actor("sam@freelance.dev"), "myapp"),
    "add collaborator": lambda db: ops.add_collaborator(db, ADA, "acme", "li@partner.co", "myapp"),
    "transfer": lambda db: (ops.create_team(db, ADA, "other"), ops.transfer_app(db, ADA, "myapp", "other")),
    "destroy": lambda db: ops.destroy_app(db, ADA, "myapp"),
}


@pytest.mark.parametrize("write", list(WRITES))
def test_every_write_to_an_app_first_removes_its_ended_grants(sqlite_tdb, clock, write):
    db = sqlite_tdb
    ops.grant_access(db, ADA, "myapp", CON, "deploy", expires_in=timedelta(minutes=10))
    ops.grant_access(db, ADA, "myapp", "kit@outside.dev", expires_in=timedelta(minutes=5))
    ops.grant_access(db, ADA, "myapp", "sam@freelance.dev", "deploy")  # never ends
    if write == "unlock":
        ops.lock_app(db, ADA, "myapp")
    clock.move(minutes=10)
    mark = last_id(db)
    WRITES[write](db)
    new = events(db, mark)
    pruned = [e for e in new if e.reason == "expired"]
    assert [(e.action, e.target_email, e.actor_email, e.app_name, e.outcome) for e in pruned] == [
        ("collaborator.destroy", CON, "ada@acme.com" if write not in ("join", "leave") else
         new[-1].actor_email, "myapp", "ok"),
        ("collaborator.destroy", "kit@outside.dev", pruned[0].actor_email, "myapp", "ok"),
    ]
    assert all(e.team_name == "acme" for e in pruned)
    assert '"expires_at"' in pruned[0].before and '"deploy"' in pruned[0].before
    # They come before the write's own event, in the same transaction.
    assert new.index(pruned[-1]) < len(new) - 1
    with db.read() as session:
        ended = session.scalars(select(Grant).where(Grant.expires_at.is_not(None))).all()
    assert ended == []
    _check_invariants(db)


def test_a_refused_write_removes_nothing(tdb, clock):
    ops.grant_access(tdb, ADA, "myapp", CON, expires_in=timedelta(seconds=30))
    clock.move(seconds=31)
    before, mark = state(tdb), last_id(tdb)
    for refused in (lambda: ops.lock_app(tdb, JOE, "myapp"),  # a member can't lock
                    lambda: ops.grant_access(tdb, ADA, "myapp", "ada@acme.com"),  # nothing to grant
                    lambda: ops.update_access(tdb, ADA, "myapp", CON, "deploy")):  # ended: no grant
        with pytest.raises((Refused, NotFound)):
            refused()
    assert state(tdb) == before
    assert [e.outcome for e in events(tdb, mark)] == ["denied"] * 3
    assert raw_grants(tdb, "myapp") == 1


def test_granting_again_after_the_end_replaces_the_ended_grant(tdb, clock):
    ops.grant_access(tdb, ADA, "myapp", CON, "deploy", expires_in=timedelta(hours=1))
    clock.move(hours=2)
    mark = last_id(tdb)
    change = ops.grant_access(tdb, ADA, "myapp", CON, "operate", expires_in=timedelta(hours=1))
    assert change.expires_at == clock.now + timedelta(hours=1)
    assert [(e.action, e.reason) for e in events(tdb, mark)] == [
        ("collaborator.destroy", "expired"), ("collaborator.create", None)]
    assert grant_rows(tdb, "myapp")[CON] == clock.now + timedelta(hours=1)


# -- expires_in on grant and update ----------------------------------------------------------


@pytest.mark.parametrize("span", [timedelta(0), timedelta(seconds=-5), timedelta(days=90, seconds=1)])
def test_a_duration_out_of_bounds_is_refused_by_the_store_too(sqlite_tdb, span):
    before = state(sqlite_tdb)
    with pytest.raises(Invalid, match="Invalid duration"):
        ops.grant_access(sqlite_tdb, ADA, "myapp", CON, expires_in=span)
    with pytest.raises(Invalid, match="Invalid duration"):
        ops.update_access(sqlite_tdb, ADA, "test", "sam@freelance.dev", None, expires_in=span)
    assert state(sqlite_tdb) == before


def test_an_admin_gets_no_temporary_grant_either(tdb):
    before = state(tdb)
    with pytest.raises(Refused, match="every permission as a team admin"):
        ops.grant_access(tdb, ADA, "myapp", "ada@acme.com", "deploy", expires_in=timedelta(hours=1))
    assert state(tdb) == before


def test_update_sets_keeps_or_removes_the_end(tdb, clock):
    start = clock.now
    ops.grant_access(tdb, ADA, "myapp", CON, "deploy", expires_in=timedelta(hours=8))
    clock.move(hours=1)
    # New permissions, no flag: the end stays.
    change = ops.update_access(tdb, ADA, "myapp", CON, "deploy,operate")
    assert change.expires_at == start + timedelta(hours=8)
    assert grant_rows(tdb, "myapp")[CON] == start + timedelta(hours=8)
    # --expires-in: a new end measured from now; the set stays when not given.
    change = ops.update_access(tdb, ADA, "myapp", CON, None, expires_in=timedelta(hours=2))
    assert change.expires_at == clock.now + timedelta(hours=2)
    assert change.permissions == change.previous == ("view", "deploy", "operate")
    mark = last_id(tdb)
    # --permanent: no end.
    change = ops.update_access(tdb, ADA, "myapp", CON, None, permanent=True)
    assert change.expires_at is None and grant_rows(tdb, "myapp")[CON] is None
    (event,) = events(tdb, mark)
    assert event.action == "collaborator.update" and '"expires_at": null' in event.after
    clock.move(days=365)
    assert CON in grant_rows(tdb, "myapp")


def test_update_refusals_change_nothing(tdb):
    ops.grant_access(tdb, ADA, "myapp", CON, "deploy", expires_in=timedelta(hours=8))
    ops.grant_access(tdb, ADA, "test", CON, "deploy")
    before = state(tdb)
    with pytest.raises(Invalid, match="not both"):
        ops.update_access(tdb, ADA, "myapp", CON, None, expires_in=timedelta(hours=1), permanent=True)
    with pytest.raises(Invalid, match="Nothing to change"):
        ops.update_access(tdb, ADA, "myapp", CON, None)
    with pytest.raises(Refused, match="never ends"):
        ops.update_access(tdb, ADA, "test", CON, None, permanent=True)
    with pytest.raises(Refused, match="already has exactly"):
        ops.update_access(tdb, ADA, "myapp", CON, "deploy")
    with pytest.raises(Refused, match="manage"):
        ops.update_access(tdb, JOE, "myapp", CON, None, permanent=True)
    assert state(tdb) == before


# -- access:prune ----------------------------------------------------------------------------


def test_prune_removes_every_ended_grant_the_actor_manages(tdb, clock):
    ops.grant_access(tdb, ADA, "myapp", CON, "deploy", expires_in=timedelta(minutes=1))
    ops.grant_access(tdb, ADA, "test", CON, expires_in=timedelta(minutes=2))
    ops.grant_access(tdb, ADA, "test", "kit@outside.dev", expires_in=timedelta(hours=1))
    clock.move(minutes=2)
    mark = last_id(tdb)
    removed = ops.prune_expired(tdb, ADA)
    assert sorted((c.app, c.email, c.previous) for c in removed) == [
        ("myapp", CON, ("view", "deploy")), ("test", CON, ("view",))]
    assert all(c.permissions == () and c.expires_at is not None for c in removed)
    new = events(tdb, mark)
    assert sorted((e.action, e.app_name, e.target_email, e.reason, e.actor_email) for e in new) == [
        ("collaborator.destroy", "myapp", CON, "expired", "ada@acme.com"),
        ("collaborator.destroy", "test", CON, "expired", "ada@acme.com")]
    assert "kit@outside.dev" in grant_rows(tdb, "test")  # not ended: kept
    # Nothing more to prune: an empty answer and no event.
    mark = last_id(tdb)
    assert ops.prune_expired(tdb, ADA) == [] and ops.prune_expired(tdb, ADA, "myapp") == []
    assert events(tdb, mark) == []


def test_prune_of_one_app(tdb, clock):
    ops.grant_access(tdb, ADA, "myapp", CON, expires_in=timedelta(minutes=1))
    ops.grant_access(tdb, ADA, "test", CON, expires_in=timedelta(minutes=1))
    clock.move(minutes=1)
    assert [(c.app, c.email) for c in ops.prune_expired(tdb, ADA, "test")] == [("test", CON)]
    assert raw_grants(tdb, "myapp") == 1  # myapp keeps its ended one until a write or prune


def test_a_manage_holder_prunes_only_the_apps_they_manage(sqlite_tdb, clock):
    db = sqlite_tdb
    ops.grant_access(db, ADA, "myapp", "joe@acme.com", "manage")
    ops.grant_access(db, ADA, "myapp", CON, expires_in=timedelta(minutes=1))
    ops.grant_access(db, ADA, "test", CON, expires_in=timedelta(minutes=1))
    clock.move(minutes=1)
    assert [(c.app, c.email) for c in ops.prune_expired(db, JOE)] == [("myapp", CON)]
    assert raw_grants(db, "test") == 2  # sam's and the ended one joe doesn't manage
    before = state(db)
    with pytest.raises(Refused, match="Only team admins and accounts with manage"):
        ops.prune_expired(db, JOE, "test")
    assert state(db) == before


@pytest.mark.parametrize("who", ["joe@acme.com", "sam@freelance.dev", "eve@evil.example"])
def test_prune_by_someone_who_manages_nothing_is_refused_and_changes_nothing(tdb, clock, who):
    ops.grant_access(tdb, ADA, "myapp", CON, expires_in=timedelta(minutes=1))
    clock.move(minutes=1)
    before, mark = state(tdb), last_id(tdb)
    with pytest.raises(Refused, match="you manage none: nothing was changed"):
        ops.prune_expired(tdb, ops.Actor(who))
    with pytest.raises((Refused, NotFound)):
        ops.prune_expired(tdb, ops.Actor(who), "myapp")
    assert state(tdb) == before
    assert [(e.action, e.outcome) for e in events(tdb, mark)] == [("collaborator.destroy", "denied")] * 2


def test_two_prunes_of_the_same_grants_log_each_removal_once(sqlite_tdb, clock):
    """Whoever removes an ended grant logs it; a later write finds nothing to log."""
    db = sqlite_tdb
    ops.grant_access(db, ADA, "myapp", CON, expires_in=timedelta(minutes=1))
    clock.move(minutes=1)
    mark = last_id(db)
    ops.prune_expired(db, ADA, "myapp")
    ops.lock_app(db, ADA, "myapp")
    assert [(e.action, e.reason) for e in events(db, mark)] == [
        ("collaborator.destroy", "expired"), ("app.update", None)]


# -- two writers at once ---------------------------------------------------------------------


def test_writers_pruning_at_once_log_each_removal_once(tdb, clock, monkeypatch):
    """Both read the ended grants, then both delete: only the one whose DELETE removed a grant
    logs it (PostgreSQL: the loser's transaction is retried and finds nothing; SQLite: the
    write lock makes the second wait until the first committed)."""
    import threading

    ended = [f"t{i}@outside.dev" for i in range(4)]
    for email in ended:
        ops.grant_access(tdb, ADA, "myapp", email, expires_in=timedelta(minutes=1))
    clock.move(minutes=1)
    mark = last_id(tdb)
    barrier = threading.Barrier(2)
    real = ops.grant_in_force

    def read_then_wait(expires_at, now):  # both have read the candidates before deleting
        try:
            barrier.wait(timeout=1)
        except threading.BrokenBarrierError:
            pass  # SQLite: the rival waits for the write lock, as it should
        return real(expires_at, now)

    monkeypatch.setattr(ops, "grant_in_force", read_then_wait)
    errors: list[BaseException] = []

    def prune() -> None:
        try:
            ops.prune_expired(tdb, ADA, "myapp")
        except BaseException as err:  # noqa: BLE001 - reported below
            errors.append(err)

    workers = [threading.Thread(target=prune) for _ in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
    assert not errors
    logged = sorted(e.target_email for e in events(tdb, mark) if e.reason == "expired")
    assert logged == sorted(ended)
    assert raw_grants(tdb, "myapp") == 0


def test_removing_a_temporary_grant_logs_its_end(any_db):
    from teamaccess.store.models import AuditEvent
    db = any_db
    seed(db)
    db.clock = lambda: datetime(2030, 1, 1, tzinfo=UTC)
    ops.grant_access(db, ADA, "myapp", "con@outside.dev", ["deploy"], expires_in=timedelta(hours=8))
    ops.revoke_access(db, ADA, "myapp", "con@outside.dev")
    with db.read() as session:
        last = session.query(AuditEvent).order_by(AuditEvent.id.desc()).first()
    assert last.action == "collaborator.destroy" and last.outcome == "ok"
    assert json.loads(last.before) == {"permissions": ["view", "deploy"],
                                       "expires_at": "2030-01-01T08:00:00+00:00"}
