"""Random sequences of store operations by random actors, with the SPEC's invariants after each step.

Hypothesis drives every write of store.ops against a real SQLite file (a fresh one per
example) as a small pool of accounts: an admin, a member, a viewer, a collaborator and an
outsider to begin with, whose relations then change as the operations succeed. After every
step: every team has an admin; every grant holds view; no personal app has grants; a
collaborator lists only the apps granted to them; the audit log grew by exactly one event whose
outcome matches; and a refused operation changed nothing else.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from conftest import EVERY_PERMISSION, naive_permissions
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule
from sqlalchemy import func, select
from sqlmodel import SQLModel
from teamaccess.store import ops, queries
from teamaccess.store.db import Database
from teamaccess.store.errors import NotFound, Refused, StoreError
from teamaccess.store.models import Account, App, AuditEvent, Grant, Membership, Team

EMAILS = ["ada@acme.com", "joe@acme.com", "tim@acme.com", "sam@freelance.dev", "eve@evil.example"]
ACTORS = [ops.Actor(e, e.split("@")[0]) for e in EMAILS]

# Weighted towards the accounts and names that exist, so that most steps can succeed and the
# state keeps moving; refusals still come often enough (and rules 1-11 need both).
ada, joe, tim, sam, eve = ACTORS
actors = st.sampled_from([ada, ada, ada, ada, joe, joe, joe, tim, tim, sam, eve])
targets = st.sampled_from([e for a in (joe, joe, tim, tim, sam, sam, eve, ada) for e in [a.email]])
apps = st.sampled_from(["app-a", "app-a", "app-a", "app-b", "app-b", "app-c", "app-d", "app-d"])
teams = st.sampled_from(["t1", "t1", "t1", "t2"])
# Mostly valid roles and permissions, sometimes not, so that validation refusals happen too.
roles = st.sampled_from(["member", "viewer", "admin", "member", "viewer", "owner"])
# Temporary grants (SPEC "Temporary access"): most grants never end, some end soon; time moves
# by rules of its own, so ends pass between steps and the next write removes them.
expiries = st.sampled_from([None, None, None, timedelta(minutes=5), timedelta(minutes=30)])
permission_sets = st.sampled_from([
    [], ["deploy"], ["operate"], ["manage"], ["deploy", "operate"], ["view", "manage"],
    ["deploy", "operate", "manage"], ["deploy", "sudo"],
])


def _snapshot(db: Database) -> dict[str, list[tuple]]:
    out = {}
    with db.engine.connect() as conn:
        for table in SQLModel.metadata.sorted_tables:
            if table.name != "audit_event":
                rows = conn.execute(select(table).order_by(*table.primary_key.columns)).all()
                out[table.name] = [tuple(r) for r in rows]
    return out


def _audit(db: Database) -> tuple[int, AuditEvent | None]:
    with db.read() as s:
        count = s.scalar(select(func.count()).select_from(AuditEvent)) or 0
        last = s.scalars(select(AuditEvent).order_by(AuditEvent.id.desc()).limit(1)).first()
        return count, last


class StoreMachine(RuleBasedStateMachine):
    """One database, a handful of accounts, every operation the store offers."""

    def __init__(self) -> None:
        super().__init__()
        # In memory-backed /dev/shm where there is one: the same SQLite file format and locking,
        # without waiting on a disk to sync every one of a thousand small commits.
        shm = Path("/dev/shm")
        where = shm if shm.is_dir() and os.access(shm, os.W_OK) else None
        self.dir = Path(tempfile.mkdtemp(prefix="teamaccess-stateful-", dir=where))
        self.db = Database(self.dir / "t.db")
        self.now = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=1)
        self.db.clock = lambda: self.now
        self.ok = 0
        self.denied = 0

    def teardown(self) -> None:
        self.db.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    @initialize()
    def a_team_with_every_kind_of_user(self) -> None:
        ada, joe, tim, sam, _eve = ACTORS
        ops.create_team(self.db, ada, "t1")
        ops.add_member(self.db, ada, "t1", joe.email, "member")
        ops.add_member(self.db, ada, "t1", tim.email, "viewer")
        ops.create_app(self.db, joe, "app-a", "t1")
        ops.grant_access(self.db, joe, "app-a", sam.email, "deploy")
        # Both lock states and a personal app from the start, so that lock, unlock and
        # transfer-in have something to succeed on early in a run.
        ops.create_app(self.db, ada, "app-b", "t1", locked=True)
        # A grant that ends early in a run, so reads after its end and the writes that remove
        # it come up often.
        ops.grant_access(self.db, ada, "app-b", sam.email, "operate", expires_in=timedelta(minutes=5))
        ops.create_app(self.db, _eve, "app-c")

    # -- the one way every step runs ---------------------------------------------------------

    def _do(self, actor: ops.Actor, call):
        """Run one operation; check the audit event it wrote and, if refused, that nothing changed."""
        before = _snapshot(self.db)
        count, _ = _audit(self.db)
        try:
            result = call()
        except StoreError as err:
            after_count, last = _audit(self.db)
            assert after_count == count + 1, "a refusal writes exactly one audit event"
            assert last.outcome == "denied"
            assert last.reason == str(err) and "\n" not in str(err)
            assert (last.actor_email, last.actor_login) == (actor.email, actor.login)
            assert _snapshot(self.db) == before, f"refused but changed: {err}"
            self.denied += 1
            event(f"{last.action} denied")
            return None
        after_count, last = _audit(self.db)
        # One event for the change, after one per ended grant it removed on the way
        # (collaborator.destroy, reason "expired", by the same actor).
        pruned = self._events_after(count)[:-1]
        assert all((e.action, e.outcome, e.reason, e.actor_email) ==
                   ("collaborator.destroy", "ok", "expired", actor.email) for e in pruned)
        assert after_count == count + 1 + len(pruned), "a change writes exactly one audit event"
        if pruned:
            event("a write removed ended grants first")
        assert last.outcome == "ok" and last.reason is None
        assert (last.actor_email, last.actor_login) == (actor.email, actor.login)
        assert _snapshot(self.db) != before or last.action == "account.update"
        self.ok += 1
        event(f"{last.action} ok")
        return result

    def _events_after(self, count: int) -> list[AuditEvent]:
        with self.db.read() as s:
            return list(s.scalars(select(AuditEvent).order_by(AuditEvent.id).offset(count)))

    # -- the operations ----------------------------------------------------------------------

    @rule(actor=actors, team=teams, email=targets, role=roles)
    def add_member(self, actor, team, email, role):
        self._do(actor, lambda: ops.add_member(self.db, actor, team, email, role))

    @rule(actor=actors, team=teams, email=targets, role=roles)
    def set_role(self, actor, team, email, role):
        self._do(actor, lambda: ops.set_role(self.db, actor, team, email, role))

    @rule(actor=actors, team=teams, email=targets)
    def remove_member(self, actor, team, email):
        removal = self._do(actor, lambda: ops.remove_member(self.db, actor, team, email))
        if removal is not None:
            # SPEC rule 3: the removal lists exactly the team apps where a grant is kept.
            with self.db.read() as s:
                kept = sorted(s.scalars(
                    select(App.name).join(Grant, Grant.app_id == App.id)
                    .join(Account, Account.id == Grant.account_id)
                    .join(Team, Team.id == App.team_id)
                    .where(Account.email == email, Team.name == team,
                           Grant.expires_at.is_(None) | (Grant.expires_at > self.now))
                ))
            assert list(removal.kept_grants) == kept

    @rule(actor=actors, team=teams, email=targets, app=apps)
    def add_collaborator(self, actor, team, email, app):
        self._do(actor, lambda: ops.add_collaborator(self.db, actor, team, email, app))

    @rule(actor=actors, app=apps, team=st.one_of(st.none(), teams), locked=st.booleans())
    def create_app(self, actor, app, team, locked):
        change = self._do(actor, lambda: ops.create_app(self.db, actor, app, team, locked=locked))
        if change is not None and team is not None:
            # SPEC rule 6: the creator holds all four, by role or by grant, and --locked held.
            assert change.locked is locked
            mine = queries.app_access(self.db, actor.email, app).actor_permissions
            assert mine == ("view", "deploy", "operate", "manage")

    @rule(actor=actors, app=apps, recipient=st.one_of(teams, targets), locked=st.booleans())
    def transfer_app(self, actor, app, recipient, locked):
        change = self._do(
            actor, lambda: ops.transfer_app(self.db, actor, app, recipient, locked=locked)
        )
        if change is not None and "@" in recipient:
            # SPEC rule 7: out of the team, every grant is gone.
            with self.db.read() as s:
                left = s.scalar(select(func.count()).select_from(Grant).join(App)
                                .where(App.name == app))
            assert left == 0

    @rule(actor=actors, app=apps)
    def lock_app(self, actor, app):
        self._do(actor, lambda: ops.lock_app(self.db, actor, app))

    @rule(actor=actors, app=apps)
    def unlock_app(self, actor, app):
        self._do(actor, lambda: ops.unlock_app(self.db, actor, app))

    @rule(actor=actors, app=apps, email=targets, perms=permission_sets, expires_in=expiries)
    def grant_access(self, actor, app, email, perms, expires_in):
        self._do(actor, lambda: ops.grant_access(self.db, actor, app, email, perms,
                                                 expires_in=expires_in))

    @rule(actor=actors, app=apps, email=targets, perms=permission_sets, expires_in=expiries,
          permanent=st.booleans())
    def update_access(self, actor, app, email, perms, expires_in, permanent):
        self._do(actor, lambda: ops.update_access(self.db, actor, app, email, perms,
                                                  expires_in=expires_in, permanent=permanent))

    @rule(minutes=st.sampled_from([1, 10, 40]))
    def time_passes(self, minutes):
        self.now += timedelta(minutes=minutes)

    @rule(actor=actors, app=st.one_of(st.none(), apps))
    def prune_expired(self, actor, app):
        before = _snapshot(self.db)
        count, _ = _audit(self.db)
        try:
            removed = ops.prune_expired(self.db, actor, app)
        except StoreError:
            after_count, last = _audit(self.db)
            assert after_count == count + 1 and last.outcome == "denied"
            assert _snapshot(self.db) == before
            return
        # One event per removed grant, and none when there was nothing to remove.
        new = self._events_after(count)
        assert [(e.app_name, e.target_email) for e in new] == [(c.app, c.email) for c in removed]
        assert all((e.action, e.reason) == ("collaborator.destroy", "expired") for e in new)
        assert (_snapshot(self.db) == before) is (not removed)
        event(f"prune removed {min(len(removed), 2)}")

    @rule(actor=actors, app=apps, email=targets)
    def revoke_access(self, actor, app, email):
        self._do(actor, lambda: ops.revoke_access(self.db, actor, app, email))

    @rule(actor=actors, app=apps)
    def join_app(self, actor, app):
        self._do(actor, lambda: ops.join_app(self.db, actor, app))

    @rule(actor=actors, app=apps)
    def leave_app(self, actor, app):
        self._do(actor, lambda: ops.leave_app(self.db, actor, app))

    @rule(actor=actors, app=apps)
    def destroy_app(self, actor, app):
        self._do(actor, lambda: ops.destroy_app(self.db, actor, app))

    @rule(actor=actors, team=teams, new=teams)
    def rename_team(self, actor, team, new):
        self._do(actor, lambda: ops.rename_team(self.db, actor, team, new))

    @rule(actor=actors, team=teams)
    def create_team(self, actor, team):
        self._do(actor, lambda: ops.create_team(self.db, actor, team))

    @rule(actor=actors, enabled=st.booleans())
    def set_mfa(self, actor, enabled):
        self._do(actor, lambda: ops.set_mfa(self.db, actor, enabled))

    # -- what always holds -------------------------------------------------------------------

    @invariant()
    def every_team_has_an_admin(self):
        with self.db.read() as s:
            teams_without = s.scalars(
                select(Team.name).where(
                    ~Team.id.in_(select(Membership.team_id).where(Membership.role == "admin"))
                )
            ).all()
        assert teams_without == []

    @invariant()
    def every_grant_holds_view_and_no_personal_app_has_grants(self):
        with self.db.read() as s:
            without_view = s.scalar(
                select(func.count()).select_from(Grant).where(Grant.can_view.is_not(True))
            )
            on_personal = s.scalar(
                select(func.count()).select_from(Grant).join(App).where(App.team_id.is_(None))
            )
        assert without_view == 0
        assert on_personal == 0

    @invariant()
    def locks_belong_to_team_apps_and_carry_their_moment(self):
        with self.db.read() as s:
            rows = s.execute(select(App.name, App.team_id, App.locked, App.locked_at)).all()
        for name, team_id, locked, locked_at in rows:
            assert (locked_at is not None) is bool(locked), name
            assert team_id is not None or not locked, name

    def _world(self):
        """The raw rows the SPEC's rules read: apps, memberships and grants, by name and email."""
        with self.db.read() as s:
            apps = {
                name: (team, owner, bool(locked), locked_at)
                for name, team, owner, locked, locked_at in s.execute(
                    select(App.name, Team.name, Account.email, App.locked, App.locked_at)
                    .outerjoin(Team, Team.id == App.team_id)
                    .outerjoin(Account, Account.id == App.owner_account_id)
                )
            }
            members = {
                (team, email): (role, since)
                for team, email, role, since in s.execute(
                    select(Team.name, Account.email, Membership.role, Membership.created_at)
                    .join(Membership, Membership.team_id == Team.id)
                    .join(Account, Account.id == Membership.account_id)
                )
            }
            # An ended grant is no grant (SPEC "Temporary access"), whether removed yet or not.
            grants = {
                (app, email): sorted(g.permissions)
                for app, email, g in s.execute(
                    select(App.name, Account.email, Grant)
                    .join(App, App.id == Grant.app_id)
                    .join(Account, Account.id == Grant.account_id)
                )
                if g.expires_at is None or g.expires_at > self.now
            }
            team_names = list(s.scalars(select(Team.name).order_by(Team.name)))
        return apps, members, grants, team_names

    @staticmethod
    def _naive(apps, members, grants, app: str, email: str) -> tuple[str, ...]:
        team, owner, locked, locked_at = apps[app]
        role, since = members.get((team, email), (None, None))
        held = naive_permissions(
            team=team, owner=owner, locked=locked, locked_at=locked_at, email=email,
            role=role, member_since=since, grant=grants.get((app, email)),
        )
        return tuple(p for p in EVERY_PERMISSION if p in held)

    @invariant()
    def what_the_store_shows_matches_the_spec(self):
        """Listings and access panes, read through store.queries, against the naive reading.

        Each read costs a transaction, so every step checks every collaborator (SPEC rule 4)
        and, in turn, one team user per team and one app's access pane.
        """
        apps, members, grants, team_names = self._world()
        self.checks = getattr(self, "checks", 0) + 1
        for team in team_names:
            every_app = {a for a, facts in apps.items() if facts[0] == team}
            users = sorted(e for t, e in members if t == team)
            user = users[self.checks % len(users)]
            listed = {a.name: a.permissions for a in queries.apps(self.db, user, team)}
            assert set(listed) == every_app, "a team user lists every app of the team"
            for app, perms in listed.items():
                assert perms == self._naive(apps, members, grants, app, user), (user, app)
            for email in EMAILS:
                mine = {a for (a, e) in grants if e == email and apps[a][0] == team}
                if (team, email) in members or not mine:
                    continue
                # SPEC rule 4: a collaborator sees only the apps granted to them.
                listed = {a.name: a.permissions for a in queries.apps(self.db, email, team)}
                assert set(listed) == mine
                for app, perms in listed.items():
                    assert perms == self._naive(apps, members, grants, app, email), (email, app)
                hidden = sorted(every_app - mine)
                if hidden:
                    app = hidden[self.checks % len(hidden)]
                    try:
                        queries.app_access(self.db, email, app)
                    except NotFound:  # an app they hold no grant on doesn't exist for them
                        pass
                    except Refused as refused:  # one whose grant ended says so
                        assert "grant expired at" in str(refused)
                    else:
                        raise AssertionError(f"collaborator {email} can open {app}")
            # One app's access pane, seen by an admin: who has what, as the SPEC reads it.
            if every_app:
                app = sorted(every_app)[self.checks % len(every_app)]
                admin = next(e for (t, e), (r, _) in sorted(members.items())
                             if t == team and r == "admin")
                pane = queries.app_access(self.db, admin, app)
                shown = {row.email: row.permissions for row in pane.rows}
                expected = {e: self._naive(apps, members, grants, app, e) for e in EMAILS}
                assert shown == {e: p for e, p in expected.items() if p}, app

TestStoreStateful = StoreMachine.TestCase
TestStoreStateful.settings = settings(
    max_examples=30,
    stateful_step_count=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
