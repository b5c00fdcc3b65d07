"""Access requests through the store (ops and queries) on SQLite and PostgreSQL, with a clock
the tests move by hand: filing, approving (the grant in the same transaction), denying, lapsing
at 7 days, widening an existing grant, and every refusal leaving everything but the log as it was.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from conftest import Clock, _check_invariants, _state
from sqlalchemy import func, select, update
from teamaccess.store import ops, queries
from teamaccess.store.errors import NotFound, Refused, StoreError
from teamaccess.store.models import AccessRequest, Account, App, AuditEvent, Grant

TEAM = "acme-widgets"
ADA = ops.Actor("ada@acme.com")  # admin
GRACE = ops.Actor("grace@acme.com")  # admin
JOE = ops.Actor("joe@acme.com")  # member
MO = ops.Actor("mo@acme.com")  # member holding manage on myapp
VI = ops.Actor("vi@acme.com")  # viewer
COLLAB = ops.Actor("li@partner.co")  # collaborator on myapp only
STRANGER = ops.Actor("eve@evil.example")


@pytest.fixture
def team_db(any_db):
    """A team with two admins, members, a viewer, a manage holder and a collaborator, and two
    apps (myapp, other); the database's clock is a Clock starting now."""
    db = any_db
    ops.create_team(db, ADA, TEAM)
    for actor, role in ((GRACE, "admin"), (JOE, "member"), (MO, "member"), (VI, "viewer")):
        ops.add_member(db, ADA, TEAM, actor.email, role)
    ops.create_app(db, ADA, "myapp", TEAM)
    ops.create_app(db, ADA, "other", TEAM)
    ops.grant_access(db, ADA, "myapp", MO.email, "manage")
    ops.grant_access(db, ADA, "myapp", COLLAB.email)
    ops.create_app(db, STRANGER, "evil-app")  # a personal app of someone outside the team
    db.clock = Clock(datetime.now(UTC).replace(microsecond=0))
    return db


def full_state(db) -> dict:
    """Everything a request operation can change: conftest's state, the grants' ends and every
    request's decision."""
    with db.read() as session:
        ends = sorted((g.app_id, g.account_id, str(g.expires_at)) for g in session.scalars(select(Grant)))
        requests = sorted(
            (r.id, r.app_id, r.requester_id, tuple(sorted(r.permissions)), r.reason, r.status,
             r.expires_in_seconds, r.decided_by_id, str(r.decided_at), r.decision_reason)
            for r in session.scalars(select(AccessRequest)))
    return {**_state(db), "ends": ends, "requests": requests}


def audit_count(db) -> int:
    with db.read() as session:
        return session.scalar(select(func.count()).select_from(AuditEvent))


def last_events(db, count: int) -> list[AuditEvent]:
    with db.read() as session:
        return list(session.scalars(select(AuditEvent).order_by(AuditEvent.id.desc()).limit(count)))


def refused(db, call, error: type[StoreError] = Refused) -> str:
    """Run a call that must be refused: nothing changes but one denied audit event."""
    before, events = full_state(db), audit_count(db)
    with pytest.raises(error) as caught:
        call()
    assert full_state(db) == before
    assert audit_count(db) == events + 1
    (event,) = last_events(db, 1)
    assert event.outcome == "denied" and event.reason == str(caught.value)
    _check_invariants(db)
    return str(caught.value)


def grant_of(db, app: str, email: str) -> Grant | None:
    with db.read() as session:
        return session.scalars(
            select(Grant).join(App, App.id == Grant.app_id).join(Account, Account.id == Grant.account_id)
            .where(App.name == app, Account.email == email)).first()


def aware(value: datetime | None) -> datetime | None:
    return None if value is None else value.replace(tzinfo=UTC) if value.utcoffset() is None else value


# -- filing ---------------------------------------------------------------------------------------


def test_a_member_files_a_request_that_deciders_see(team_db):
    db = team_db
    change = ops.request_access(db, JOE, "myapp", "deploy", "  on call tonight  ",
                                expires_in=timedelta(hours=8))
    assert change.app == "myapp" and change.requester == JOE.email
    assert change.permissions == ("view", "deploy") and change.status == "pending"
    (event,) = last_events(db, 1)
    assert (event.action, event.outcome, event.actor_email, event.target_email, event.app_name,
            event.team_name) == ("access_request.create", "ok", JOE.email, JOE.email, "myapp", TEAM)

    (mine,) = queries.access_requests(db, JOE.email)
    assert mine.mine and not mine.may_decide and mine.reason == "on call tonight"
    assert mine.expires_in == timedelta(hours=8) and mine.created_at == db.now()
    for decider in (ADA, GRACE, MO):
        (row,) = queries.access_requests(db, decider.email)
        assert row.id == change.id and row.may_decide and not row.mine and row.status == "pending"
    # Someone who may not decide, and isn't the requester, doesn't see it.
    assert queries.access_requests(db, VI.email) == []
    assert queries.access_requests(db, COLLAB.email) == []


def test_pending_counts_are_for_deciders_only(team_db):
    db = team_db
    ops.request_access(db, JOE, "myapp", "deploy", "release")
    ops.request_access(db, VI, "myapp", "operate", "restart dynos")
    ops.request_access(db, VI, "other", "deploy", "docs")

    def counts(actor):
        return {row.name: row.pending_requests for row in queries.apps(db, actor.email)
                if row.team == TEAM}

    assert counts(ADA) == {"myapp": 2, "other": 1}
    assert counts(MO) == {"myapp": 2, "other": 0}  # manage on myapp only
    assert counts(JOE) == {"myapp": 0, "other": 0}
    assert queries.app_access(db, ADA.email, "myapp").pending_requests == 2
    assert queries.app_access(db, MO.email, "myapp").pending_requests == 2
    assert queries.app_access(db, JOE.email, "myapp").pending_requests == 0
    assert queries.app_access(db, VI.email, "other").pending_requests == 0
    # The manage holder's own request isn't theirs to decide, so it isn't counted for them.
    ops.request_access(db, MO, "myapp", "operate", "also operate")
    assert queries.app_access(db, MO.email, "myapp").pending_requests == 2
    assert queries.app_access(db, ADA.email, "myapp").pending_requests == 3


def test_filters_and_order(team_db):
    db = team_db
    first = ops.request_access(db, JOE, "myapp", "deploy", "one")
    db.clock.move(minutes=1)
    second = ops.request_access(db, VI, "other", "deploy", "two")
    assert [r.id for r in queries.access_requests(db, ADA.email)] == [second.id, first.id]
    assert [r.id for r in queries.access_requests(db, ADA.email, app="other")] == [second.id]
    assert [r.id for r in queries.access_requests(db, ADA.email, team=TEAM)] == [second.id, first.id]
    ops.deny_request(db, ADA, first.id)
    assert [r.id for r in queries.access_requests(db, ADA.email, pending_only=True)] == [second.id]
    with pytest.raises(NotFound, match="Couldn't find that app: evil-app"):
        queries.access_requests(db, ADA.email, app="evil-app")


def test_a_collaborator_of_that_app_may_ask(team_db):
    change = ops.request_access(team_db, COLLAB, "myapp", "deploy", "contract work")
    assert change.status == "pending"


@pytest.mark.parametrize(("actor", "app", "perms", "reason", "error", "says"), [
    (STRANGER, "myapp", "deploy", "let me in", NotFound, "Couldn't find that app: myapp"),
    (COLLAB, "other", "deploy", "and this one", NotFound, "Couldn't find that app: other"),
    (JOE, "evil-app", "deploy", "x", NotFound, "Couldn't find that app: evil-app"),
    (JOE, "no-such-app", "deploy", "x", NotFound, "Couldn't find that app: no-such-app"),
    (ADA, "myapp", "deploy", "x", Refused, "as a team admin"),
    (JOE, "myapp", "deploy", "   ", Refused, "A reason is required"),
    (JOE, "myapp", "deploy", "ok\x1b]0;pwned\x07", Refused, "control or invisible character"),
    (JOE, "myapp", "deploy", "x" * 501, Refused, "over the limit of 500"),
    (JOE, "myapp", "", "just view", Refused, "You already have view on myapp"),
    (MO, "myapp", "manage", "x", Refused, "You already have view, manage on myapp"),
    (JOE, "myapp", "deploy,root", "x", StoreError, "Invalid permission 'root'"),
])
def test_refused_requests_change_nothing(team_db, actor, app, perms, reason, error, says):
    message = refused(team_db, lambda: ops.request_access(team_db, actor, app, perms, reason),
                      error)
    assert says in message


def test_a_second_pending_request_is_refused_until_the_first_is_decided(team_db):
    db = team_db
    first = ops.request_access(db, JOE, "myapp", "deploy", "one")
    message = refused(db, lambda: ops.request_access(db, JOE, "myapp", "operate", "two"))
    assert message.startswith(f"You already asked: request {first.id} for myapp is pending")
    ops.request_access(db, JOE, "other", "deploy", "another app is fine")
    ops.deny_request(db, ADA, first.id)
    assert ops.request_access(db, JOE, "myapp", "operate", "again").status == "pending"


def test_a_duration_out_of_bounds_is_refused(team_db):
    for span in (timedelta(0), timedelta(days=91)):
        refused(team_db, lambda span=span: ops.request_access(
            team_db, JOE, "myapp", "deploy", "x", expires_in=span), StoreError)


# -- approving ------------------------------------------------------------------------------------


def test_approval_writes_the_grant_in_the_same_transaction(team_db):
    db = team_db
    asked = ops.request_access(db, JOE, "myapp", "deploy,operate", "on call", expires_in=timedelta(hours=8))
    db.clock.move(minutes=30)
    events = audit_count(db)
    change = ops.approve_request(db, GRACE, asked.id)
    assert change.status == "approved" and change.expires_at == db.now() + timedelta(hours=8)
    grant = grant_of(db, "myapp", JOE.email)
    assert grant.permissions == {"view", "deploy", "operate"}
    assert aware(grant.expires_at) == db.now() + timedelta(hours=8)
    # Two audit rows: the decision, and the grant's own event, both by the approver.
    assert audit_count(db) == events + 2
    grant_event, decision = last_events(db, 2)
    assert (decision.action, decision.outcome, decision.actor_email, decision.target_email,
            decision.team_name) == ("access_request.update", "ok", GRACE.email, JOE.email, TEAM)
    assert '"status": "approved"' in decision.after and '"status": "pending"' in decision.before
    assert (grant_event.action, grant_event.outcome, grant_event.actor_email,
            grant_event.target_email, grant_event.app_name) == (
        "collaborator.create", "ok", GRACE.email, JOE.email, "myapp")
    (row,) = queries.access_requests(db, JOE.email)
    assert (row.status, row.decided_by, row.decided_at) == ("approved", GRACE.email, db.now())
    mine = next(r for r in queries.app_access(db, ADA.email, "myapp").rows if r.email == JOE.email)
    assert set(mine.permissions) == {"view", "deploy", "operate"}
    assert queries.app_access(db, ADA.email, "myapp").pending_requests == 0


def test_expires_in_on_approve_overrides_what_was_asked(team_db):
    db = team_db
    asked = ops.request_access(db, JOE, "myapp", "deploy", "release")  # no end asked
    change = ops.approve_request(db, MO, asked.id, expires_in=timedelta(hours=2))
    assert change.expires_at == db.now() + timedelta(hours=2)
    assert aware(grant_of(db, "myapp", JOE.email).expires_at) == db.now() + timedelta(hours=2)


def test_a_permanent_approval_makes_a_permanent_grant(team_db):
    db = team_db
    asked = ops.request_access(db, JOE, "myapp", "deploy", "release")
    assert ops.approve_request(db, ADA, asked.id).expires_at is None
    grant = grant_of(db, "myapp", JOE.email)
    assert grant.expires_at is None and grant.permissions == {"view", "deploy"}


def test_approval_widens_a_temporary_grant_to_the_union_and_the_later_end(team_db):
    db = team_db
    first = ops.request_access(db, JOE, "myapp", "deploy", "one", expires_in=timedelta(hours=1))
    ops.approve_request(db, ADA, first.id)
    db.clock.move(minutes=10)
    # (asking for deploy again too: a later end may carry only what the request names)
    second = ops.request_access(db, JOE, "myapp", ["deploy", "operate"], "two", expires_in=timedelta(hours=8))
    change = ops.approve_request(db, ADA, second.id)
    grant = grant_of(db, "myapp", JOE.email)
    assert grant.permissions == {"view", "deploy", "operate"}
    assert aware(grant.expires_at) == change.expires_at == db.now() + timedelta(hours=8)
    (grant_event,) = [e for e in last_events(db, 2) if e.action.startswith("collaborator.")]
    assert grant_event.action == "collaborator.update" and '"deploy"' in grant_event.before
    # A shorter approval is refused: the grant's one end would give manage 8h, not 5 minutes.
    third = ops.request_access(db, JOE, "myapp", "manage", "three", expires_in=timedelta(minutes=5))
    message = refused(db, lambda: ops.approve_request(db, ADA, third.id))
    assert "one grant has one end: this approval would last until then too" in message
    assert ops.approve_request(db, ADA, third.id, expires_in=timedelta(hours=8)).expires_at \
        == db.now() + timedelta(hours=8)


def test_a_temporary_approval_of_a_permanent_grant_is_refused(team_db):
    db = team_db
    ops.grant_access(db, ADA, "other", JOE.email)  # permanent view grant
    asked = ops.request_access(db, JOE, "other", "deploy", "for a day", expires_in=timedelta(days=1))
    message = refused(db, lambda: ops.approve_request(db, ADA, asked.id))
    assert message.startswith("joe@acme.com has a permanent grant on other")
    assert "access:update" in message
    refused(db, lambda: ops.approve_request(db, ADA, asked.id, expires_in=timedelta(hours=1)))
    # A permanent request widens the permanent grant.
    ops.deny_request(db, ADA, asked.id)
    again = ops.request_access(db, JOE, "other", "deploy", "for good")
    assert ops.approve_request(db, ADA, again.id).expires_at is None
    grant = grant_of(db, "other", JOE.email)
    assert grant.permissions == {"view", "deploy"} and grant.expires_at is None


def test_an_expired_grant_counts_as_none(team_db):
    db = team_db
    first = ops.request_access(db, JOE, "myapp", "deploy", "one", expires_in=timedelta(hours=1))
    ops.approve_request(db, ADA, first.id)
    db.clock.move(hours=1)
    # The grant has ended: asking for deploy again is not "already held".
    second = ops.request_access(db, JOE, "myapp", "deploy", "again", expires_in=timedelta(hours=2))
    change = ops.approve_request(db, ADA, second.id)
    grant = grant_of(db, "myapp", JOE.email)
    assert grant.permissions == {"view", "deploy"}
    assert aware(grant.expires_at) == change.expires_at == db.now() + timedelta(hours=2)


def test_nobody_approves_their_own_request(team_db):
    db = team_db
    asked = ops.request_access(db, MO, "myapp", "operate", "I manage it but want operate")
    message = refused(db, lambda: ops.approve_request(db, MO, asked.id))
    assert message.startswith(f"You can't approve your own request {asked.id}")
    refused(db, lambda: ops.deny_request(db, MO, asked.id))
    # Even after becoming a team admin.
    ops.set_role(db, ADA, TEAM, MO.email, "admin")
    message = refused(db, lambda: ops.approve_request(db, MO, asked.id))
    assert "your own request" in message


@pytest.mark.parametrize("actor", [JOE, VI, COLLAB])
def test_only_deciders_decide(team_db, actor):
    db = team_db
    asked = ops.request_access(db, ops.Actor("mo@acme.com"), "myapp", "operate", "x")
    message = refused(db, lambda: ops.approve_request(db, actor, asked.id))
    assert message.startswith("Only team admins and accounts with manage on myapp may approve")
    refused(db, lambda: ops.deny_request(db, actor, asked.id))


def test_unknown_and_invisible_requests_read_alike(team_db):
    db = team_db
    asked = ops.request_access(db, JOE, "myapp", "deploy", "x")
    unseen = refused(db, lambda: ops.approve_request(db, STRANGER, asked.id), NotFound)
    missing = refused(db, lambda: ops.approve_request(db, ADA, asked.id + 1000), NotFound)
    assert unseen == missing.replace(str(asked.id + 1000), str(asked.id))
    assert "access:requests" in unseen
    for odd in (0, -1, 2**40):
        refused(db, lambda odd=odd: ops.deny_request(db, ADA, odd), NotFound)


def test_a_request_is_decided_once(team_db):
    db = team_db
    asked = ops.request_access(db, JOE, "myapp", "deploy", "x")
    ops.approve_request(db, ADA, asked.id)
    message = refused(db, lambda: ops.approve_request(db, GRACE, asked.id))
    assert message == f"Request {asked.id} was already approved by ada@acme.com: a request is decided once."
    (event,) = last_events(db, 1)
    assert (event.action, event.actor_email, event.app_name, event.team_name, event.target_email) \
        == ("access_request.update", GRACE.email, "myapp", TEAM, JOE.email)
    message = refused(db, lambda: ops.deny_request(db, GRACE, asked.id))
    assert message.startswith(f"Request {asked.id} was already approved by ada@acme.com")


def test_the_conditional_update_refuses_a_decision_that_lost_a_race(team_db, monkeypatch):
    """The loser of a race read "pending" before the winner's decision landed: the winner's
    write is slipped in after our read, and our conditional update then matches nothing."""
    db = team_db
    asked = ops.request_access(db, JOE, "myapp", "deploy", "x")
    real_load = ops._load_request

    def load_then_lose(session, request_id):
        row = real_load(session, request_id)
        grace_id = session.scalar(select(Account.id).where(Account.email == GRACE.email))
        session.execute(update(AccessRequest).where(AccessRequest.id == request_id)
                        .values(status="denied", decided_by_id=grace_id)
                        .execution_options(synchronize_session=False))
        return row  # still reads "pending" in memory, as the loser's read did

    monkeypatch.setattr(ops, "_load_request", load_then_lose)
    message = refused(db, lambda: ops.approve_request(db, ADA, asked.id))
    assert message == f"Request {asked.id} was already denied by grace@acme.com: a request is decided once."
    assert grant_of(db, "myapp", JOE.email) is None


def test_a_requester_who_left_is_not_granted_anything(team_db):
    db = team_db
    asked = ops.request_access(db, JOE, "myapp", "deploy", "x")
    ops.remove_member(db, ADA, TEAM, JOE.email)
    message = refused(db, lambda: ops.approve_request(db, ADA, asked.id))
    assert message.startswith("joe@acme.com is no longer a user of acme-widgets")
    # Denying still closes it.
    assert ops.deny_request(db, ADA, asked.id).status == "denied"


def test_a_requester_who_became_admin_is_refused_as_redundant(team_db):
    db = team_db
    asked = ops.request_access(db, JOE, "myapp", "deploy", "x")
    ops.set_role(db, ADA, TEAM, JOE.email, "admin")
    assert "is now a team admin" in refused(db, lambda: ops.approve_request(db, ADA, asked.id))


# -- denying --------------------------------------------------------------------------------------


def test_deny_records_the_reason_and_grants_nothing(team_db):
    db = team_db
    asked = ops.request_access(db, JOE, "myapp", "deploy", "x")
    events = audit_count(db)
    change = ops.deny_request(db, GRACE, asked.id, reason="  not during the freeze ")
    assert change.status == "denied" and change.expires_at is None
    assert audit_count(db) == events + 1
    (event,) = last_events(db, 1)
    assert (event.action, event.outcome, event.actor_email) == ("access_request.update", "ok", GRACE.email)
    assert "not during the freeze" in event.after
    assert grant_of(db, "myapp", JOE.email) is None
    (row,) = queries.access_requests(db, JOE.email)
    assert (row.status, row.decided_by, row.decision_reason) == ("denied", GRACE.email, "not during the freeze")


def test_a_denial_reason_must_be_safe(team_db):
    db = team_db
    asked = ops.request_access(db, JOE, "myapp", "deploy", "x")
    assert "control or invisible" in refused(
        db, lambda: ops.deny_request(db, ADA, asked.id, reason="no\x1b[31m"))


# -- lapsing at 7 days ----------------------------------------------------------------------------


def test_a_request_lapses_seven_days_after_it_was_filed(team_db):
    db = team_db
    start = db.now()
    asked = ops.request_access(db, JOE, "myapp", "deploy", "x")
    db.clock.now = start + timedelta(days=7) - timedelta(seconds=1)
    assert queries.access_requests(db, ADA.email)[0].status == "pending"
    assert queries.app_access(db, ADA.email, "myapp").pending_requests == 1
    db.clock.now = start + timedelta(days=7)
    (row,) = queries.access_requests(db, ADA.email)
    assert row.status == "lapsed" and not row.may_decide
    assert queries.access_requests(db, ADA.email, pending_only=True) == []
    assert queries.app_access(db, ADA.email, "myapp").pending_requests == 0
    assert [r.pending_requests for r in queries.apps(db, ADA.email) if r.name == "myapp"] == [0]
    db.clock.now = start + timedelta(days=7, seconds=1)
    message = refused(db, lambda: ops.approve_request(db, ADA, asked.id))
    assert message.startswith(f"Request {asked.id} lapsed")
    refused(db, lambda: ops.deny_request(db, ADA, asked.id))
    # A lapsed request doesn't block a new one.
    assert ops.request_access(db, JOE, "myapp", "deploy", "again").status == "pending"


def test_one_second_before_the_lapse_it_can_still_be_approved(team_db):
    db = team_db
    start = db.now()
    asked = ops.request_access(db, JOE, "myapp", "deploy", "x")
    db.clock.now = start + timedelta(days=7) - timedelta(seconds=1)
    assert ops.approve_request(db, ADA, asked.id).status == "approved"


# -- cost -----------------------------------------------------------------------------------------


def _statements(db, read) -> int:
    from sqlalchemy import event

    seen: list[str] = []

    def on_execute(_conn, _cursor, statement, _params, _context, _many) -> None:
        seen.append(statement)

    event.listen(db.engine, "before_cursor_execute", on_execute)
    try:
        read()
    finally:
        event.remove(db.engine, "before_cursor_execute", on_execute)
    return len(seen)


def test_listing_requests_costs_the_same_for_few_apps_or_many(tmp_path):
    """No query per app or per request: pending requests on 4 apps or on 40 cost as many
    statements to list and to count."""
    from teamaccess.store.db import Database
    from teamaccess.store.demo import generate

    counts = []
    for n in (4, 40):
        db = Database(tmp_path / f"n{n}.db")
        generate(db, team="countco", users=n + 1, apps=n, grants=0, seed=1)
        admin = "user000000@countco.example.com"
        apps = [row.name for row in queries.apps(db, admin, "countco")]
        for i, app in enumerate(apps):
            member = ops.Actor(f"user{i + 1:06d}@countco.example.com")
            try:
                ops.request_access(db, member, app, "deploy", "x")
            except StoreError:  # (a generated admin has everything already)
                continue
        rows = queries.access_requests(db, admin)
        assert len(rows) >= n // 2 and all(r.may_decide for r in rows)
        counts.append((_statements(db, lambda db=db, admin=admin: queries.access_requests(db, admin)),
                       _statements(db, lambda db=db, admin=admin: queries.apps(db, admin)),
                       _statements(db, lambda db=db, admin=admin, app=apps[0]:
                                   queries.app_access(db, admin, app))))
        db.close()
    assert counts[0] == counts[1], counts


def test_team_filter_follows_who_may_list_the_team(team_db):
    db = team_db
    mine = ops.request_access(db, COLLAB, "myapp", "deploy", "contract work")
    ops.request_access(db, JOE, "other", "deploy", "x")
    # A collaborator lists their own requests in the team, and nothing else of it.
    assert [r.id for r in queries.access_requests(db, COLLAB.email, team=TEAM)] == [mine.id]
    with pytest.raises(Refused, match="not a user of acme-widgets"):
        queries.access_requests(db, STRANGER.email, team=TEAM)
    assert queries.access_requests(db, STRANGER.email) == []
    assert len(queries.access_requests(db, ADA.email, team=TEAM)) == 2


def test_a_collaborator_whose_grant_ended_is_told_so(team_db):
    db = team_db
    ops.grant_access(db, ADA, "other", "con@outside.dev", "deploy", expires_in=timedelta(hours=1))
    db.clock.move(hours=1)
    message = refused(db, lambda: ops.request_access(db, ops.Actor("con@outside.dev"), "other",
                                                     "deploy", "one more day"))
    assert message.startswith("Your grant on other expired at ")
    assert "ask a team admin" in message


def test_a_permanent_approval_of_a_temporary_grant_is_refused(team_db):
    """One grant has one end: approving a permanent request onto a grant that ends would make
    what the requester holds for now (operate here) theirs for good, which nobody decided."""
    db = team_db
    ops.grant_access(db, ADA, "myapp", JOE.email, "operate", expires_in=timedelta(hours=1))
    asked = ops.request_access(db, JOE, "myapp", "deploy", "for good")
    message = refused(db, lambda: ops.approve_request(db, ADA, asked.id))
    assert message.startswith("joe@acme.com has a temporary grant on myapp until ")
    assert "approve with --expires-in" in message
    # A temporary approval ending with the grant widens it; the grant keeps its end.
    change = ops.approve_request(db, ADA, asked.id, expires_in=timedelta(hours=1))
    grant = grant_of(db, "myapp", JOE.email)
    assert grant.permissions == {"view", "operate", "deploy"}
    assert aware(grant.expires_at) == change.expires_at == db.now() + timedelta(hours=1)


def test_a_manage_holder_cannot_extend_widen_or_unend_their_own_grant(team_db):
    """Temporary manage would otherwise be permanent, unlimited access: its holder could
    access:update themselves past every rule of temporary access and requests."""
    db = team_db
    ops.grant_access(db, ADA, "other", MO.email, "manage", expires_in=timedelta(hours=1))
    for attempt in (
        lambda: ops.update_access(db, MO, "other", MO.email, None, permanent=True),
        lambda: ops.update_access(db, MO, "other", MO.email, None, expires_in=timedelta(days=90)),
        lambda: ops.update_access(db, MO, "other", MO.email, ["manage", "deploy"]),
        lambda: ops.update_access(db, MO, "myapp", MO.email, ["manage", "deploy", "operate"]),
    ):
        message = refused(db, attempt)
        assert message.startswith("You can't grant or change your own access to ")
    # Dropping it is still theirs to do, and another manage holder may change it.
    ops.update_access(db, ADA, "other", MO.email, ["manage", "deploy"])
    assert grant_of(db, "other", MO.email).permissions == {"view", "deploy", "manage"}
    ops.revoke_access(db, MO, "other", MO.email)
    assert grant_of(db, "other", MO.email) is None


def test_an_approval_never_carries_what_nobody_asked_for_past_its_end(team_db):
    """Attacker review: deploy and manage for an hour, a request for operate for 90 days; the
    approver thinks they grant operate, and deploy and manage would last 90 days too."""
    db = team_db
    ops.grant_access(db, ADA, "other", JOE.email, ["deploy", "manage"], expires_in=timedelta(hours=1))
    asked = ops.request_access(db, JOE, "other", "operate", "extend me", expires_in=timedelta(days=90))
    message = refused(db, lambda: ops.approve_request(db, ADA, asked.id))
    assert message.startswith("joe@acme.com holds deploy, manage on other until ")
    assert "approving would extend that too" in message
    # Ending with the grant, it widens: nothing outlives what someone chose.
    ops.approve_request(db, ADA, asked.id, expires_in=timedelta(hours=1))
    grant = grant_of(db, "other", JOE.email)
    assert grant.permissions == {"view", "deploy", "manage", "operate"}
    assert aware(grant.expires_at) == db.now() + timedelta(hours=1)


def test_a_requester_withdraws_a_pending_request_and_may_ask_again(team_db):
    db = team_db
    asked = ops.request_access(db, JOE, "myapp", "deploy", "filed by mistake")
    assert "already asked" in refused(db, lambda: ops.request_access(db, JOE, "myapp", "operate", "again"))
    for other in (ADA, MO):  # deciders deny; only the requester withdraws
        assert "only they may withdraw it" in refused(db, lambda o=other: ops.withdraw_request(db, o, asked.id))
    for outsider in (STRANGER, VI):  # a viewer of the team may not decide it: not theirs to see
        assert refused(db, lambda o=outsider: ops.withdraw_request(db, o, asked.id), NotFound) == (
            f"No request {asked.id} among the requests you can see: run 'teamaccess access:requests' "
            "to list them.")
    change = ops.withdraw_request(db, JOE, asked.id)
    assert change.status == "withdrawn"
    (row,) = [r for r in queries.access_requests(db, JOE.email) if r.id == asked.id]
    assert row.status == "withdrawn" and not row.may_decide
    assert refused(db, lambda: ops.withdraw_request(db, JOE, asked.id)).endswith("nothing to withdraw.")
    assert "decided once" in refused(db, lambda: ops.approve_request(db, ADA, asked.id))
    assert ops.request_access(db, JOE, "myapp", "operate", "the right one").status == "pending"
    assert grant_of(db, "myapp", JOE.email) is None


def test_nothing_a_temporary_manager_gives_outlasts_their_manage(team_db):
    """Recheck review: with manage for an hour, joe gave a second account manage for good, and
    it made joe's own grant permanent. What a temporary manager grants, widens or approves now
    ends no later than their own manage."""
    db = team_db
    alt = ops.Actor("joe.alt@gmail.com")
    ops.grant_access(db, ADA, "other", JOE.email, ["deploy", "manage"], expires_in=timedelta(hours=1))
    ends = db.now() + timedelta(hours=1)
    message = refused(db, lambda: ops.grant_access(db, JOE, "other", alt.email, ["manage"]))
    assert message.startswith("Your manage on other ends at ") and "nothing you give may outlast it" in message
    refused(db, lambda: ops.grant_access(db, JOE, "other", alt.email, ["manage"], expires_in=timedelta(hours=2)))
    ops.grant_access(db, JOE, "other", alt.email, ["manage"], expires_in=timedelta(minutes=30))
    # The second account can't stretch joe past its own end either (nor past joe's).
    refused(db, lambda: ops.update_access(db, alt, "other", JOE.email, None, permanent=True))
    refused(db, lambda: ops.update_access(db, alt, "other", JOE.email, ["deploy", "manage", "operate"]))
    assert aware(grant_of(db, "other", JOE.email).expires_at) == ends
    # Narrowing is always allowed; an approval by a temporary manager is capped the same way.
    ops.update_access(db, alt, "other", JOE.email, ["manage"])
    asked = ops.request_access(db, VI, "other", "deploy", "for good")
    assert "nothing you give may outlast it" in refused(db, lambda: ops.approve_request(db, JOE, asked.id))
    ops.approve_request(db, JOE, asked.id, expires_in=timedelta(minutes=20))
    # A team admin, or a manager for good, is not capped.
    ops.update_access(db, ADA, "other", alt.email, None, permanent=True)
    ops.update_access(db, alt, "other", VI.email, None, permanent=True)
    assert grant_of(db, "other", VI.email).expires_at is None


def test_the_count_to_decide_agrees_with_the_listed_decisions(team_db):
    """queries.pending_to_decide (the Apps tab's title) counts in SQL what access_requests
    decides row by row with the policy: own, lapsed, decided and undecidable ones left out."""
    db = team_db
    ops.request_access(db, JOE, "myapp", "deploy", "one")
    ops.request_access(db, VI, "myapp", "operate", "two")
    ops.request_access(db, COLLAB, "myapp", "deploy", "three")
    ops.request_access(db, JOE, "other", "deploy", "four")
    ops.deny_request(db, ADA, ops.request_access(db, VI, "other", "deploy", "five").id)
    db.clock.move(days=6)
    ops.request_access(db, MO, "other", "deploy", "six")
    db.clock.move(days=1, seconds=1)  # the first four lapse; six is still waiting
    ops.request_access(db, VI, "other", "operate", "seven")
    for actor in (ADA, GRACE, JOE, MO, VI, COLLAB, STRANGER):
        listed = sum(1 for r in queries.access_requests(db, actor.email, team=TEAM, pending_only=True)
                     if r.may_decide) if actor is not STRANGER else 0
        assert queries.pending_to_decide(db, actor.email, TEAM) == listed, actor.email
    assert queries.pending_to_decide(db, ADA.email, TEAM) == 2
    assert queries.pending_to_decide(db, MO.email, TEAM) == 0  # manage on myapp; six is on other
