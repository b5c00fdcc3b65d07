"""Random sequences of access-request operations (file, approve, deny) mixed with the changes that
move people's standing (roles, grants, time passing), with the request rules checked after each.

Hypothesis drives the real store on an SQLite file. After every step: a refused operation changed
nothing and logged one denied event; an accepted decision was made by someone who could manage
access on the app then, who was not the requester, on a request still pending and not lapsed;
once decided a request never changes; nobody has two live pending requests for one app; an
approval left the requester holding what they asked for; every listed ``may_decide`` is a pending
request that is not the actor's own.
"""

from __future__ import annotations

import shutil
import tempfile
from datetime import UTC, timedelta
from pathlib import Path

from conftest import Clock
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule
from sqlalchemy import func, select
from sqlmodel import SQLModel
from teamaccess.store import ops, queries
from teamaccess.store.db import Database
from teamaccess.store.errors import StoreError
from teamaccess.store.models import AccessRequest, Account, AuditEvent
from teamaccess.store.policy import REQUEST_LAPSE, AppAction

TEAM = "t1"
ADA, GRACE, JOE, TIM, SAM, EVE = (ops.Actor(e) for e in (
    "ada@acme.com", "grace@acme.com", "joe@acme.com", "tim@acme.com", "sam@freelance.dev",
    "eve@evil.example"))
actors = st.sampled_from([ADA, JOE, JOE, JOE, TIM, TIM, TIM, SAM, SAM, EVE])
deciders = st.sampled_from([ADA, ADA, GRACE, GRACE, JOE, TIM, SAM])
apps = st.sampled_from(["app-a", "app-a", "app-b", "app-b", "app-c"])
perms = st.sampled_from(["deploy", "operate", "manage", "deploy,operate", "deploy", ""])
reasons = st.sampled_from(["on call", "release", "hotfix", "on call", "", "x" * 501])
spans = st.sampled_from([None, None, timedelta(hours=1), timedelta(days=2)])


def _snapshot(db: Database) -> dict[str, list[tuple]]:
    out = {}
    with db.engine.connect() as conn:
        for table in SQLModel.metadata.sorted_tables:
            if table.name != "audit_event":
                out[table.name] = [tuple(r) for r in conn.execute(
                    select(table).order_by(*table.primary_key.columns)).all()]
    return out


def _audit_count(db: Database) -> int:
    with db.read() as session:
        return session.scalar(select(func.count()).select_from(AuditEvent)) or 0


class RequestMachine(RuleBasedStateMachine):
    @initialize()
    def setup(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="requests-stateful-"))
        self.db = Database(self.folder / "s.db")
        ops.create_team(self.db, ADA, TEAM)
        ops.add_member(self.db, ADA, TEAM, GRACE.email, "admin")
        ops.add_member(self.db, ADA, TEAM, JOE.email, "member")
        ops.add_member(self.db, ADA, TEAM, TIM.email, "viewer")
        for app in ("app-a", "app-b"):
            ops.create_app(self.db, ADA, app, TEAM)
        ops.grant_access(self.db, ADA, "app-a", SAM.email)
        ops.create_app(self.db, EVE, "app-c")  # personal: nobody else may ask
        self.clock = Clock()
        self.db.clock = self.clock
        #: request id -> (status, decided_by) once decided: never to change again
        self.decided: dict[int, tuple[str, int | None]] = {}

    def teardown(self) -> None:
        db = getattr(self, "db", None)
        if db is not None:
            db.close()
            shutil.rmtree(self.folder, ignore_errors=True)

    # -- running one operation, checking what a refusal leaves ---------------------------------

    def _attempt(self, call) -> object | None:
        before, events = _snapshot(self.db), _audit_count(self.db)
        try:
            result = call()
        except StoreError:
            assert _snapshot(self.db) == before, "a refusal changed something"
            assert _audit_count(self.db) == events + 1, "a refusal is one audit event"
            return None
        assert _audit_count(self.db) > events
        return result

    def _request(self, request_id: int) -> AccessRequest | None:
        with self.db.read() as session:
            return session.get(AccessRequest, request_id)

    def _ids(self) -> list[int]:
        with self.db.read() as session:
            return list(session.scalars(select(AccessRequest.id)))

    # -- rules -----------------------------------------------------------------------------------

    @rule(actor=actors, app=apps, asked=perms, reason=reasons, span=spans)
    def file_one(self, actor, app, asked, reason, span) -> None:
        done = self._attempt(lambda: ops.request_access(self.db, actor, app, asked, reason,
                                                        expires_in=span))
        event(f"request: {'refused' if done is None else 'filed'}")

    @precondition(lambda self: bool(self._ids()))
    @rule(actor=actors, app=apps, asked=perms, reason=reasons, span=spans)
    def file_another(self, actor, app, asked, reason, span) -> None:
        self.file_one(actor, app, asked, reason, span)

    @rule(actor=deciders, pick=st.integers(0, 20), approve=st.booleans(), span=spans)
    def decide(self, actor, pick, approve, span) -> None:
        ids = self._ids()
        request_id = ids[pick % len(ids)] if ids and pick < 18 else 999
        row = self._request(request_id)
        app = None
        if row is not None:
            app = next((a.name for a in queries.apps(self.db, ADA.email) if a.app_id == row.app_id), None)
            may = app is not None and queries.may(self.db, actor.email, app, AppAction.MANAGE_ACCESS)
            with self.db.read() as session:
                requester = session.get(Account, row.requester_id).email
            created = row.created_at.replace(tzinfo=UTC)
            live = row.status == "pending" and self.clock.now < created + REQUEST_LAPSE
        if approve:
            done = self._attempt(lambda: ops.approve_request(self.db, actor, request_id, expires_in=span))
        else:
            done = self._attempt(lambda: ops.deny_request(self.db, actor, request_id, reason="no"))
        event(f"{'approve' if approve else 'deny'}: {'refused' if done is None else 'done'}")
        if done is None:
            return
        assert row is not None, "a decision on a request that doesn't exist"
        assert may, f"{actor.email} decided without managing access on {app}"
        assert requester != actor.email, "someone decided their own request"
        assert live, "a decision on a request that was not pending"
        if approve:
            view = queries.app_access(self.db, ADA.email, app)
            held = next((set(r.permissions) for r in view.rows if r.email == requester), set())
            assert set(done.permissions) <= held, (done, held)

    @rule(hours=st.sampled_from([1, 12, 47, 24 * 3]))
    def time_passes(self, hours) -> None:
        self.clock.now += timedelta(hours=hours)

    @rule(who=st.sampled_from([JOE, TIM]), role=st.sampled_from(["admin", "member", "viewer", None]))
    def standing_changes(self, who, role) -> None:
        if role is None:
            self._attempt(lambda: ops.remove_member(self.db, ADA, TEAM, who.email))
        else:
            self._attempt(lambda: ops.add_member(self.db, ADA, TEAM, who.email, role))

    @rule(who=st.sampled_from([JOE, TIM, SAM]), app=st.sampled_from(["app-a", "app-b"]),
          asked=st.sampled_from(["manage", "deploy", None]))
    def grant_changes(self, who, app, asked) -> None:
        if asked is None:
            self._attempt(lambda: ops.revoke_access(self.db, ADA, app, who.email))
        else:
            self._attempt(lambda: ops.grant_access(self.db, ADA, app, who.email, asked,
                                                   expires_in=timedelta(hours=6)))

    # -- invariants ------------------------------------------------------------------------------

    @invariant()
    def decisions_stand_and_pending_is_single(self) -> None:
        if not hasattr(self, "db"):
            return
        live: set[tuple[int, int]] = set()
        with self.db.read() as session:
            rows = list(session.scalars(select(AccessRequest)))
        for row in rows:
            if row.status != "pending":
                if row.id in self.decided:
                    assert self.decided[row.id] == (row.status, row.decided_by_id)
                self.decided[row.id] = (row.status, row.decided_by_id)
                assert row.decided_by_id != row.requester_id
            elif self.clock.now < row.created_at.replace(tzinfo=UTC) + REQUEST_LAPSE:
                key = (row.requester_id, row.app_id)
                assert key not in live, "two live pending requests for one app"
                live.add(key)
        assert set(self.decided) <= {r.id for r in rows}

    @invariant()
    def may_decide_is_pending_and_not_mine(self) -> None:
        if not hasattr(self, "db"):
            return
        for actor in (ADA, JOE, SAM):
            for row in queries.access_requests(self.db, actor.email):
                if row.may_decide:
                    assert row.status == "pending" and not row.mine and row.requester != actor.email


TestRequestsStateful = RequestMachine.TestCase
TestRequestsStateful.settings = settings(
    max_examples=30, stateful_step_count=40, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
