"""Concurrent writers: separate processes on one database never break a rule nor see "locked".

Workers run in spawned processes (not forked: a forked child would inherit the parent's SQLite
file locks and connections), each opening the database by URL as a real second program would.
"""

from __future__ import annotations

import multiprocessing
import os
import random
import threading
from collections import Counter

import pytest
from conftest import _check_invariants, _state
from sqlalchemy import select
from teamaccess.store import ops
from teamaccess.store.db import UNSAFE_WRITES_ENV, Database
from teamaccess.store.demo import DEMO_TEAM, build_demo
from teamaccess.store.errors import Busy, DatabaseProblem, StoreError
from teamaccess.store.models import Account, AuditEvent, Membership, Team

SPAWN = multiprocessing.get_context("spawn")

#: How long a worker that has read the admin count waits for its rival to read it too. A safe
#: store never lets the rival get that far, so in the safe case this is pure waiting: keep it
#: short, but long enough for a spawned rival to reach the same point when it can.
BARRIER_WAIT = 1.5

RACE_TEAM = "race-team"
ADA = "ada@acme.com"
GRACE = "grace@acme.com"


# -- the last-admin race --------------------------------------------------------------------


def _race_worker(url, actor, target, ready, barrier, results, unsafe):
    """Demote ``target`` as ``actor``, pausing after the admin count was read (in a child)."""
    if unsafe:
        os.environ[UNSAFE_WRITES_ENV] = "1"
        # Unsafe also drops the team-row lock the ops take on PostgreSQL, so that nothing but
        # the transaction mode stands between the two writers.
        real_team = ops._team
        ops._team = lambda s, name, ev=None, *, lock=False: real_team(s, name, ev, lock=False)
    db = Database(url)
    seen: list[int] = []
    real_admins = ops._admins

    def admins_then_wait(s, team_id):
        count = real_admins(s, team_id)
        seen.append(count)
        try:
            barrier.wait(timeout=BARRIER_WAIT)
        except threading.BrokenBarrierError:
            pass  # the rival is held back by the write lock: exactly what a safe store does
        return count

    ops._admins = admins_then_wait
    ready.wait(timeout=60)
    try:
        ops.set_role(db, ops.Actor(actor, actor.split("@")[0]), RACE_TEAM, target, "member")
        outcome = "ok"
    except StoreError as err:
        outcome = f"{type(err).__name__}: {err}"
    except Exception as err:  # noqa: BLE001 - reported to the parent, which fails the test
        outcome = f"CRASH {type(err).__name__}: {err}"
    finally:
        db.close()
    results.put((actor, outcome, seen))


def _race(db: Database, *, unsafe: bool) -> tuple[dict[str, tuple[str, list[int]]], list[str]]:
    """Two admins demote each other at the same moment; return outcomes and admins left."""
    ops.create_team(db, ops.Actor(ADA, "ada"), RACE_TEAM)
    ops.add_member(db, ops.Actor(ADA, "ada"), RACE_TEAM, GRACE, "admin")
    ready = SPAWN.Barrier(3)
    barrier = SPAWN.Barrier(2)
    results = SPAWN.Queue()
    workers = [
        SPAWN.Process(target=_race_worker,
                      args=(db.url, actor, target, ready, barrier, results, unsafe))
        for actor, target in ((ADA, GRACE), (GRACE, ADA))
    ]
    for w in workers:
        w.start()
    ready.wait(timeout=60)
    outcomes = {}
    for _ in workers:
        actor, outcome, seen = results.get(timeout=60)
        outcomes[actor] = (outcome, seen)
    for w in workers:
        w.join(timeout=30)
    with db.read() as s:
        admins = sorted(
            s.scalars(
                select(Account.email)
                .join(Membership, Membership.account_id == Account.id)
                .join(Team, Team.id == Membership.team_id)
                .where(Team.name == RACE_TEAM, Membership.role == "admin")
            )
        )
    return outcomes, admins


def _race_events(db: Database) -> list[tuple[str, str]]:
    with db.read() as s:
        return sorted(
            (e.actor_email, e.outcome)
            for e in s.scalars(
                select(AuditEvent).where(
                    AuditEvent.team_name == RACE_TEAM,
                    AuditEvent.action == "team_membership.update",
                )
            )
        )


@pytest.mark.slow
def test_two_admins_demoting_each_other_leave_exactly_one(any_db):
    outcomes, admins = _race(any_db, unsafe=False)

    assert len(admins) == 1, (outcomes, admins)
    (winner,) = admins
    loser = GRACE if winner == ADA else ADA
    assert outcomes[winner][0] == "ok"
    # The loser is refused with a reason (it is no longer an admin), never "database is locked".
    assert outcomes[loser][0].startswith("Refused: "), outcomes
    assert "locked" not in outcomes[loser][0] and "busy" not in outcomes[loser][0]
    # Both attempts are in the log, one done and one denied.
    assert _race_events(any_db) == sorted([(winner, "ok"), (loser, "denied")])
    if any_db.backend == "sqlite":
        # BEGIN IMMEDIATE: the loser waited for the winner's commit before reading anything, so
        # it never counted two admins. (PostgreSQL's SERIALIZABLE may let it read the old count
        # and then retries it; the outcome above is what holds there.)
        assert 2 not in outcomes[loser][1], outcomes


@pytest.mark.slow
def test_the_race_test_notices_unsafe_writes(any_db):
    """Made unsafe (deferred BEGIN / READ COMMITTED, no row lock), the same race goes wrong.

    This keeps the race test honest: if the barrier ever stopped forcing both writers to read
    before either writes, this test, not a production incident, would say so.
    """
    outcomes, admins = _race(any_db, unsafe=True)

    if any_db.backend == "sqlite":
        # SQLite stays serializable even then (a stale writer gets SQLITE_BUSY_SNAPSHOT and the
        # retry re-reads), but both writers acted on the same stale count of two admins.
        assert [o[1][0] for o in outcomes.values()] == [2, 2], outcomes
        assert len(admins) == 1
    else:
        # READ COMMITTED without the row lock: the classic write skew, no admin left.
        assert admins == [], (outcomes, admins)
        assert all(o[0] == "ok" for o in outcomes.values()), outcomes


# -- many writers at once ----------------------------------------------------------------------

MEMBERS = ["joe@acme.com", "alan@acme.com", "barbara@acme.com", "dennis@acme.com"]
ADMINS = [ADA, GRACE, "linus@acme.com"]
VIEWERS = ["tim@acme.com", "radia@acme.com"]
COLLABORATORS = ["sam@freelance.dev", "ops@oncall-agency.io"]
STRANGERS = ["eve@evil.example", "new1@acme.com", "new2@acme.com"]
ACTORS = ADMINS * 3 + MEMBERS + VIEWERS + COLLABORATORS + ["eve@evil.example"]
PEOPLE = ADMINS + MEMBERS + VIEWERS + COLLABORATORS + STRANGERS
APPS = ["api-prod", "api-staging", "docs-site", "test", "website-prod", "stress-app", "no-such-app"]


def _random_op(rng: random.Random):
    """One random operation as (name, callable(db, actor)), with arguments that may be wrong."""
    person, app = rng.choice(PEOPLE), rng.choice(APPS)
    perms = rng.sample(["deploy", "operate", "manage"], rng.randint(0, 3))
    role = rng.choice(["admin", "member", "viewer"])
    choices = [
        ("members:add", lambda db, a: ops.add_member(db, a, DEMO_TEAM, person, role)),
        ("members:set", lambda db, a: ops.set_role(db, a, DEMO_TEAM, person, role)),
        ("members:set", lambda db, a: ops.set_role(db, a, DEMO_TEAM, rng_admin, "member")),
        ("members:set", lambda db, a: ops.set_role(db, a, DEMO_TEAM, rng_admin, "admin")),
        ("members:add", lambda db, a: ops.add_member(db, a, DEMO_TEAM, person, "admin")),
        ("members:remove", lambda db, a: ops.remove_member(db, a, DEMO_TEAM, person)),
        ("access:add", lambda db, a: ops.grant_access(db, a, app, person, perms)),
        ("access:update", lambda db, a: ops.update_access(db, a, app, person, perms)),
        ("access:remove", lambda db, a: ops.revoke_access(db, a, app, person)),
        ("apps:join", lambda db, a: ops.join_app(db, a, app)),
        ("apps:leave", lambda db, a: ops.leave_app(db, a, app)),
        ("apps:lock", lambda db, a: ops.lock_app(db, a, app)),
        ("apps:unlock", lambda db, a: ops.unlock_app(db, a, app)),
        ("apps:create", lambda db, a: ops.create_app(db, a, app, DEMO_TEAM)),
        ("apps:destroy", lambda db, a: ops.destroy_app(db, a, app)),
        ("account:mfa", lambda db, a: ops.set_mfa(db, a, rng_flag)),
        ("collaborator", lambda db, a: ops.add_collaborator(db, a, DEMO_TEAM, person, app)),
    ]
    rng_admin = rng.choice(ADMINS)
    rng_flag = rng.random() < 0.5
    return rng.choice(choices)


def _plan(seed: int, count: int) -> list[tuple[str, str, int]]:
    """The operations one worker will run: (actor, login, op seed), all decided up front."""
    rng = random.Random(seed)
    return [(rng.choice(ACTORS), f"w{seed}-{i}", rng.randrange(2**32)) for i in range(count)]


def _run_op(db: Database, actor: str, login: str, op_seed: int) -> tuple[str, str]:
    name, call = _random_op(random.Random(op_seed))
    try:
        call(db, ops.Actor(actor, login))
        return name, "ok"
    except (Busy, DatabaseProblem) as err:
        return name, f"BROKEN {type(err).__name__}: {err}"
    except StoreError as err:
        return name, f"denied {type(err).__name__}: {err}"
    except Exception as err:  # noqa: BLE001 - reported to the parent, which fails the test
        return name, f"CRASH {type(err).__name__}: {err}"


def _stress_worker(url, seed, count, ready, results):
    db = Database(url)
    ready.wait(timeout=60)
    out = [(login, actor, *_run_op(db, actor, login, op_seed))
           for actor, login, op_seed in _plan(seed, count)]
    db.close()
    results.put(out)


@pytest.mark.slow
def test_many_writers_keep_every_rule_and_account_for_every_operation(any_db, tmp_path):
    workers, per_worker = 4, 50
    db = any_db
    build_demo(db)
    events_before = _audit(db)
    start_state = _state(db)

    ready = SPAWN.Barrier(workers + 1)
    results = SPAWN.Queue()
    procs = [SPAWN.Process(target=_stress_worker, args=(db.url, seed, per_worker, ready, results))
             for seed in range(workers)]
    for p in procs:
        p.start()
    ready.wait(timeout=60)
    done = [row for _ in procs for row in results.get(timeout=300)]
    for p in procs:
        p.join(timeout=30)

    # Every operation either completed or was refused with a reason; nobody saw "locked".
    assert len(done) == workers * per_worker
    broken = [row for row in done if not row[3].startswith(("ok", "denied"))]
    assert broken == []
    refusals = [row[3] for row in done if row[3] != "ok"]
    assert all(len(r.partition(": ")[2]) > 10 and "\n" not in r for r in refusals), refusals
    kinds = Counter(row[3].split(":")[0] for row in done)
    assert kinds["ok"] > 20 and sum(kinds.values()) - kinds["ok"] > 20, kinds  # both happened

    _check_invariants(db)

    # The audit log accounts for each operation exactly once, with its outcome.
    events = _audit(db)[len(events_before):]
    by_login = {e.actor_login: e for e in events}
    assert len(events) == len(done) == len(by_login)
    for login, actor, _name, outcome in done:
        event = by_login[login]
        assert event.actor_email == actor
        assert event.outcome == ("ok" if outcome == "ok" else "denied"), (login, outcome)
        if outcome != "ok":
            assert outcome.endswith(event.reason)

    if db.backend != "sqlite":
        # SERIALIZABLE promises *some* serial order, not the order of the audit ids (a writer
        # that read older data is ordered before a rival that committed first), so a replay
        # in id order is only meaningful on SQLite, where one writer at a time commits.
        return
    # And the result is what running the same operations one by one, in the order the log
    # says they committed, gives: the concurrent run was equivalent to a serial one.
    serial = Database(tmp_path / "serial.db")
    build_demo(serial)
    assert _state(serial) == start_state
    plans = {login: (actor, op_seed) for seed in range(workers)
             for actor, login, op_seed in _plan(seed, per_worker)}
    outcome_of = {row[0]: row[3] for row in done}
    for event in events:
        actor, op_seed = plans[event.actor_login]
        _name, outcome = _run_op(serial, actor, event.actor_login, op_seed)
        assert outcome == outcome_of[event.actor_login], event.actor_login
    assert _state(serial) == _state(db)
    serial.close()


def _audit(db: Database) -> list[AuditEvent]:
    with db.read() as s:
        return list(s.scalars(select(AuditEvent).order_by(AuditEvent.id)))


# -- a database that stays busy ------------------------------------------------------------------


def _hold_write_lock(path, seconds: float) -> threading.Thread:
    """Another connection takes SQLite's write lock and keeps it for ``seconds``."""
    import sqlite3
    import time

    locked = threading.Event()

    def hold():
        conn = sqlite3.connect(path, isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
        locked.set()
        time.sleep(seconds)
        conn.execute("ROLLBACK")
        conn.close()

    holder = threading.Thread(target=hold)
    holder.start()
    assert locked.wait(5)
    return holder


def test_a_writer_waits_for_a_short_lock_and_succeeds(demo_db):
    holder = _hold_write_lock(demo_db.path, 0.5)
    ops.lock_app(demo_db, ops.Actor(ADA, "ada"), "test")  # waits, then goes through
    holder.join()
    assert [a.locked for a in _apps(demo_db) if a.name == "test"] == [True]


def test_a_database_that_stays_busy_gives_a_friendly_message_and_changes_nothing(
    tmp_path, monkeypatch
):
    import teamaccess.store.db as store_db

    monkeypatch.setattr(store_db, "BUSY_TIMEOUT_MS", 100)
    monkeypatch.setattr(store_db, "WRITE_ATTEMPTS", 3)
    db = Database(tmp_path / "busy.db")
    build_demo(db)
    before, events = _state(db), len(_audit(db))
    holder = _hold_write_lock(db.path, 2.0)
    try:
        with pytest.raises(Busy) as caught:
            ops.lock_app(db, ops.Actor(ADA, "ada"), "test")
    finally:
        holder.join()
    assert str(caught.value) == store_db.BUSY_MESSAGE
    assert "locked" not in str(caught.value)
    assert _state(db) == before and len(_audit(db)) == events
    db.close()


def _apps(db: Database):
    from teamaccess.store import queries

    return queries.apps(db, ADA, DEMO_TEAM)


# -- two deciders on one access request (issue 15) --------------------------------------------


def _decide_worker(url, actor, verb, request_id, ready, barrier, results, unsafe=False):
    """Approve or deny ``request_id`` as ``actor``, pausing once the request was read (in a child).

    ``unsafe`` takes away what makes one decision win: the transaction mode, the row locks and
    the conditional update (so the test can show it notices their absence).
    """
    if unsafe:
        os.environ[UNSAFE_WRITES_ENV] = "1"
        from sqlalchemy import update
        from teamaccess.store.models import AccessRequest

        def load_unlocked(session, rid):
            return session.get(AccessRequest, rid)

        def mark_unconditionally(session, row, status, decider, reason):
            session.execute(update(AccessRequest).where(AccessRequest.id == row.id)
                            .values(status=status, decided_by_id=decider.id, decision_reason=reason)
                            .execution_options(synchronize_session=False))

        ops._load_request = load_unlocked
        ops._lock_app_row = lambda session, app_row: None
        ops._mark_decided = mark_unconditionally
    db = Database(url)
    real_load = ops._load_request

    def load_then_wait(session, rid):
        row = real_load(session, rid)
        try:
            barrier.wait(timeout=BARRIER_WAIT)
        except threading.BrokenBarrierError:
            pass  # the rival is held back by the row lock / write lock: what a safe store does
        return row

    ops._load_request = load_then_wait
    ready.wait(timeout=60)
    try:
        if verb == "approve":
            ops.approve_request(db, ops.Actor(actor), request_id)
        else:
            ops.deny_request(db, ops.Actor(actor), request_id, reason="no")
        outcome = "ok"
    except StoreError as err:
        outcome = f"{type(err).__name__}: {err}"
    except Exception as err:  # noqa: BLE001 - reported to the parent, which fails the test
        outcome = f"CRASH {type(err).__name__}: {err}"
    finally:
        db.close()
    results.put((actor, outcome))


def _decide_race(db: Database, verbs: tuple[str, str], *, unsafe: bool = False) -> tuple[int, dict]:
    """Joe asks for deploy on a fresh app; ada and grace decide at once. Returns the request's
    id and each decider's outcome."""
    admin = ops.Actor(ADA)
    ops.create_team(db, admin, RACE_TEAM)
    ops.add_member(db, admin, RACE_TEAM, GRACE, "admin")
    ops.add_member(db, admin, RACE_TEAM, "joe@acme.com", "member")
    ops.create_app(db, admin, "race-app", RACE_TEAM)
    asked = ops.request_access(db, ops.Actor("joe@acme.com"), "race-app", "deploy", "on call")
    ready, barrier, results = SPAWN.Barrier(3), SPAWN.Barrier(2), SPAWN.Queue()
    workers = [SPAWN.Process(target=_decide_worker,
                             args=(db.url, actor, verb, asked.id, ready, barrier, results, unsafe))
               for actor, verb in zip((ADA, GRACE), verbs, strict=True)]
    for w in workers:
        w.start()
    ready.wait(timeout=60)
    outcomes = dict(results.get(timeout=60) for _ in workers)
    for w in workers:
        w.join(timeout=30)
    return asked.id, outcomes


@pytest.mark.slow
def test_the_decision_race_test_notices_an_unsafe_store(any_db):
    """Without the locks, the transaction mode and the conditional update, an approval and a
    denial at once both land on PostgreSQL (READ COMMITTED): the race test above is real."""
    _request_id, outcomes = _decide_race(any_db, ("approve", "deny"), unsafe=True)
    if any_db.backend == "sqlite":
        # SQLite stays serializable even then: the stale writer's retry reads the decision.
        assert sorted(o == "ok" for o in outcomes.values()) == [False, True], outcomes
    else:
        assert all(o == "ok" for o in outcomes.values()), outcomes


@pytest.mark.slow
@pytest.mark.parametrize("verbs", [("approve", "approve"), ("approve", "deny")])
def test_two_deciders_at_once_make_exactly_one_decision(any_db, verbs):
    from teamaccess.store import queries
    from teamaccess.store.models import AccessRequest, Grant

    db = any_db
    request_id, outcomes = _decide_race(db, verbs)
    asked = ops.RequestChange(request_id, "race-app", "joe@acme.com", ("view", "deploy"), "pending")
    winners = [a for a, o in outcomes.items() if o == "ok"]
    assert len(winners) == 1, outcomes
    (winner,) = winners
    loser = GRACE if winner == ADA else ADA
    won_with = verbs[(ADA, GRACE).index(winner)]
    done = "approved" if won_with == "approve" else "denied"
    assert outcomes[loser] == (f"Refused: Request {asked.id} was already {done} by {winner}: "
                               "a request is decided once."), outcomes
    with db.read() as s:
        row = s.get(AccessRequest, asked.id)
        assert row.status == done
        grants = s.scalars(select(Grant).join(Account, Account.id == Grant.account_id)
                           .where(Account.email == "joe@acme.com")).all()
        decisions = sorted((e.actor_email, e.outcome) for e in s.scalars(
            select(AuditEvent).where(AuditEvent.action == "access_request.update")))
    assert len(grants) == (1 if done == "approved" else 0)
    assert decisions == sorted([(winner, "ok"), (loser, "denied")])
    (listed,) = queries.access_requests(db, "joe@acme.com")
    assert (listed.status, listed.decided_by) == (done, winner)
    _check_invariants(db)
