"""Writes: every operation is one transaction: load, decide, check, write, audit.

Each public function takes the database and the acting account, does its work in one write
transaction and returns plain data, or raises a :class:`~store.errors.StoreError` whose message
is the one line to show. Whatever the outcome, exactly one audit event is written in the same
transaction: ``ok`` with before/after, or ``denied`` with the reason (the refused work itself is
rolled back to a savepoint, so a refusal changes nothing but the log). A body that makes many
changes at once (an import, the demo) gathers one event per change in :class:`Changes`, which
``_run`` writes in bulk on success; a refusal is still the one denied event.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.orm import Session

from . import sshkeys, validate
from .db import Database
from .errors import Invalid, LastAdminRefused, NotFound, Refused, StoreError
from .models import (
    AccessRequest,
    Account,
    App,
    AuditEvent,
    Grant,
    Membership,
    Resource,
    SshKey,
    Team,
    read_utc,
    utcnow,
)
from .policy import (
    AppAction,
    AppFacts,
    BindFacts,
    BindOutcome,
    Decision,
    Relation,
    RequestDecision,
    Standing,
    TeamAction,
    creator_grant,
    decide_admins_remain,
    decide_app,
    decide_bind,
    decide_collaborator_target,
    decide_grant_target,
    decide_granted_end,
    decide_new_grant,
    decide_own_grant,
    decide_prune,
    decide_reason,
    decide_request,
    decide_request_decision,
    decide_role_target,
    decide_team,
    decide_withdraw,
    grant_in_force,
    has_authority,
    is_stranger,
    plan_approval,
    relation,
    request_status,
    unknown_request,
)
from .queries import delegated_use, in_force, key_decision, key_decision_to_remove
from .safetext import UNSAFE
from .words import ROLES, SETTABLE_ROLES, Permission, RequestStatus, Role

T = TypeVar("T")

_AUDIT_TEXT = 300  # audit columns hold what was asked, however long, cut to this

#: the reason of the collaborator.destroy event that removes a grant that has ended
EXPIRED = "expired"



@dataclass(frozen=True)
class Actor:
    """Who is acting: their account's email and the OS login they are working under.

    Over SSH (``teamaccess serve``) there is no OS login (the server's own says nothing of the
    person), so the session's key fingerprint and the client's address (``host:port``) say who
    acted instead.
    """

    email: str
    login: str | None = None
    key_fingerprint: str | None = None
    peer: str | None = None
    #: set by identity.resolve_actor only for the OS user owning the database file (or the
    #: owner role on PostgreSQL), who may bind logins directly; never from a served session
    owns_database: bool = field(default=False, compare=False)

    def __post_init__(self) -> None:
        # Emails are stored lower-cased; an actor typed as ADA@acme.com is still ada. Only ASCII
        # is folded: str.lower turns look-alikes into ASCII (the Kelvin sign into k), and such
        # an actor must reach validate.email, which refuses it, not become someone else.
        email = self.email.strip()
        object.__setattr__(self, "email", email.lower() if email.isascii() else email)


# -- results ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class MemberChange:
    """The outcome of members:add / members:set."""

    team: str
    email: str
    role: str
    previous_role: str | None  # None: newly added


@dataclass(frozen=True)
class Removal:
    """The outcome of members:remove: the apps where the account still holds a grant."""

    team: str
    email: str
    role: str
    kept_grants: tuple[str, ...]


@dataclass(frozen=True)
class GrantChange:
    """The outcome of a grant, update, revoke, join or leave."""

    app: str
    email: str
    permissions: tuple[str, ...]  # after; empty when revoked
    previous: tuple[str, ...] = ()
    expires_at: datetime | None = None  # the grant's end (aware UTC); None: never, or removed


@dataclass(frozen=True)
class AppChange:
    """The outcome of creating, locking, unlocking, transferring or destroying an app."""

    app: str
    team: str | None
    owner: str | None
    locked: bool
    removed_grants: tuple[str, ...] = field(default=())


# -- the transaction wrapper -----------------------------------------------------------------


class _Event:
    """The audit event an operation builds up while it runs."""

    def __init__(self, action: str, team: str | None, app: str | None, target: str | None):
        self.action = action
        self.team_id: int | None = None
        self.team_name = team
        self.app_name = app
        self.target = target
        self.before: dict[str, Any] | None = None
        self.after: dict[str, Any] | None = None
        #: set by a body that makes many changes at once (an import, the demo): on success each
        #: change's own event is written from here instead; a refusal is still this one event
        self.changes: Changes | None = None
        #: the expired grants this write removed (one collaborator.destroy event each, written
        #: before the operation's own event on success, dropped with the rest on a refusal)
        self.pruned: Changes | None = None
        self.removed: list[GrantChange] = []  # and what they were
        #: "now" for every time-bound rule of this transaction (the database's clock, once)
        self.now: datetime = utcnow()
        self.actor: Actor | None = None


class _Failed:
    def __init__(self, error: StoreError) -> None:
        self.error = error


def _cut(value: object | None, limit: int = _AUDIT_TEXT) -> str | None:
    if value is None:
        return None
    # Control characters become "?": PostgreSQL refuses NUL in text (the denied event would be
    # lost with the whole transaction), and the log is shown in terminals.
    text = UNSAFE.sub("?", str(value))
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _dump(data: dict[str, Any] | None) -> str | None:
    return None if data is None else json.dumps(data, sort_keys=True, default=str)


class Changes:
    """The audit events of a body that makes many changes, one event per change, written by
    ``_run`` in one bulk insert when the body succeeds (nothing if it changed nothing)."""

    def __init__(self, actor: Actor) -> None:
        # What every event shares is cut once; tens of thousands of events repeat a few
        # dozen distinct names and before/after values, so those are cut and dumped once each.
        self.base = {"at": utcnow(), "actor_email": _cut(actor.email, 254) or "",
                     "actor_login": _cut(actor.login, 64),
                     "actor_key": _cut(actor.key_fingerprint, 64), "actor_peer": _cut(actor.peer, 64)}
        self.rows: list[dict[str, Any]] = []
        self._cuts: dict[str | None, str | None] = {None: None}
        self._dumps: dict[str, str | None] = {}

    def _cut(self, value: str | None) -> str | None:
        if value not in self._cuts:
            self._cuts[value] = _cut(value)
        return self._cuts[value]

    def _dump(self, data: dict[str, Any] | None) -> str | None:
        if data is None:
            return None
        key = repr(data)
        dumped = self._dumps.get(key)
        if dumped is None:
            dumped = self._dumps[key] = _dump(data)
        return dumped

    def add(self, action: str, team_id: int | None, team: str | None, *, app: str | None = None,
            target: str | None = None, before: dict[str, Any] | None = None,
            after: dict[str, Any] | None = None, outcome: str = "ok",
            reason: str | None = None, **shared: Any) -> None:
        """One change's event, cut and dumped as ``_run`` does it; ``shared`` overrides the
        columns every event shares (``at``, ``actor_email``, ``actor_login``)."""
        if "actor_email" in shared:
            shared["actor_email"] = _cut(shared["actor_email"], 254) or ""
        self.rows.append({
            **self.base, **shared, "action": action, "team_id": team_id,
            "team_name": self._cut(team), "app_name": self._cut(app), "target_email": _cut(target),
            "before": self._dump(before), "after": self._dump(after), "outcome": outcome,
            "reason": reason,
        })

    def write(self, session: Session) -> None:
        """Insert the events in one executemany."""
        bulk_insert(session, AuditEvent, self.rows)


class _Converted(dict):
    """A column's bind conversion of each distinct value, computed on first use."""

    def __init__(self, convert: Callable[[Any], Any]) -> None:
        super().__init__()
        self.convert = convert

    def __missing__(self, value: Any) -> Any:
        self[value] = result = self.convert(value)
        return result


def bulk_insert(session: Session, model: type, rows: list[dict[str, Any]]) -> None:
    """Insert many rows of ``model`` (each with the same keys) in one executemany.

    Tens of thousands of rows: SQLAlchemy's per-row parameter processing would cost more than
    the insert itself. Only the times and flags need converting, and they take few values.
    """
    if not rows:
        return
    conn = session.connection()
    mark = {"qmark": "?", "format": "%s", "pyformat": "%s"}.get(conn.dialect.paramstyle)
    if mark is None:  # pragma: no cover - SQLite and psycopg take one of those
        conn.execute(insert(model), rows)
        return
    table = model.__table__
    columns = list(rows[0])
    # Each column's own conversion (times, flags), done once per distinct value.
    converted: list[_Converted | None] = []
    for c in columns:
        convert = table.c[c].type.dialect_impl(conn.dialect).bind_processor(conn.dialect)
        converted.append(None if convert is None else _Converted(convert))
    pairs = list(zip(columns, converted, strict=True))
    values = [tuple(r[c] if conv is None else conv[r[c]] for c, conv in pairs) for r in rows]
    quote = conn.dialect.identifier_preparer.quote
    conn.exec_driver_sql(
        f"INSERT INTO {quote(table.name)} ({', '.join(map(quote, columns))}) "
        f"VALUES ({', '.join([mark] * len(columns))})",
        values,
    )


def _run(
    db: Database,
    actor: Actor,
    action: str,
    body: Callable[[Session, _Event], T],
    *,
    team: str | None = None,
    app: str | None = None,
    target: str | None = None,
) -> T:
    """Run ``body`` in one write transaction and write its audit event, ok or denied.

    ``body`` may rename the event's action (``ev.action``) once it knows which it is.
    """

    def transaction(session: Session) -> T | _Failed:
        event = _Event(action, team, app, target)
        event.now, event.actor = db.now(), actor
        # What the loading helpers (_app, _standing) read: the clock and where expired grants
        # they remove are recorded; set afresh each attempt, as a retry re-runs this.
        session.info[_EVENT_KEY] = event
        outcome, reason, result = "ok", None, None
        try:
            with session.begin_nested():
                validate.email(actor.email)  # a malformed actor is refused, and logged, up front
                result = body(session, event)
        except StoreError as err:
            outcome, reason, result = "denied", str(err), _Failed(err)
        else:
            if event.pruned is not None:
                event.pruned.write(session)
            if event.changes is not None:
                event.changes.write(session)
                return result  # type: ignore[return-value]
        session.add(
            AuditEvent(
                actor_email=_cut(actor.email, 254) or "",
                actor_login=_cut(actor.login, 64),
                actor_key=_cut(actor.key_fingerprint, 64),
                actor_peer=_cut(actor.peer, 64),
                action=event.action,
                team_id=event.team_id,
                team_name=_cut(event.team_name),
                app_name=_cut(event.app_name),
                target_email=_cut(event.target),
                before=_dump(event.before),
                after=_dump(event.after),
                outcome=outcome,
                reason=reason,
            )
        )
        return result  # type: ignore[return-value]

    out = db.write(transaction)
    if isinstance(out, _Failed):
        raise out.error
    return out


# -- loading facts ---------------------------------------------------------------------------

_EVENT_KEY = "teamaccess.ops.event"


def _running(session: Session) -> _Event | None:
    """The event of the operation running in ``session`` (None outside ``_run``)."""
    return session.info.get(_EVENT_KEY)


def _now(session: Session) -> datetime:
    """The running operation's "now" (the database's clock, read once per transaction)."""
    event = _running(session)
    return event.now if event is not None else utcnow()


def _team(session: Session, name: str, event: _Event | None = None, *, lock: bool = False) -> Team:
    name = validate.team_name(name)  # a malformed name is Invalid, not a query (NUL on PG)
    stmt = select(Team).where(Team.name == name)
    if lock:  # PostgreSQL: serialise writers on one team (SQLite's BEGIN IMMEDIATE already does)
        stmt = stmt.with_for_update()
    team = session.scalars(stmt).first()
    if team is None:
        raise NotFound(f"Team {name} not found: run 'teamaccess teams' to see your teams.")
    if event is not None:
        event.team_id, event.team_name = team.id, team.name
    return team


def _account(session: Session, email: str) -> Account | None:
    return session.scalars(select(Account).where(Account.email == email)).first()


def _ensure_account(session: Session, email: str) -> Account:
    account = _account(session, email)
    if account is None:
        account = Account(email=email)
        session.add(account)
        session.flush()
    return account


def _membership(session: Session, team_id: int, account_id: int | None) -> Membership | None:
    if account_id is None:
        return None
    return session.scalars(
        select(Membership).where(
            Membership.team_id == team_id, Membership.account_id == account_id
        )
    ).first()


def _grant(session: Session, app_id: int, account_id: int | None) -> Grant | None:
    if account_id is None:
        return None
    return session.scalars(
        select(Grant).where(Grant.app_id == app_id, Grant.account_id == account_id)
    ).first()


def _relation(session: Session, team: Team, account: Account | None) -> Relation:
    if account is None:
        return Relation.OUTSIDER
    membership = _membership(session, team.id, account.id)
    if membership is not None:
        return Relation(membership.role)
    has_grant = session.scalar(
        select(func.count())
        .select_from(Grant)
        .join(App, App.id == Grant.app_id)
        .where(App.team_id == team.id, Grant.account_id == account.id, in_force(_now(session)))
    )
    return relation(None, bool(has_grant))


def _app(session: Session, name: str, event: _Event | None = None) -> App:
    """Load an app for a write, first removing its expired grants (SPEC "Temporary access":
    the next write that touches the app does it, each with its own audit event). Every write
    loads its app here, so this is the one place that happens."""
    name = validate.app_name(name)  # a malformed name is Invalid, not a query (NUL on PG)
    app = session.scalars(select(App).where(App.name == name)).first()
    if app is None:
        raise _missing_app(name)
    team = session.get(Team, app.team_id) if app.team_id is not None else None
    if event is not None and team is not None:
        event.team_id, event.team_name = team.id, team.name
    _prune(session, app, team)
    return app


def _prune(session: Session, app_row: App, team: Team | None) -> list[GrantChange]:
    """Remove the app's grants that have ended at the running operation's "now", recording a
    ``collaborator.destroy`` event (reason ``expired``) for each in the running event.

    A refusal rolls this back with the rest (a refusal changes nothing but the log).
    """
    running = _running(session)
    if running is None or running.actor is None:
        return []
    now = running.now
    # SQL finds the candidates; the policy's rule decides which have ended.
    candidates = session.execute(
        select(Grant.id, Grant.account_id, Grant.expires_at, *Grant.permission_columns())
        .where(Grant.app_id == app_row.id, Grant.expires_at.is_not(None),
               Grant.expires_at <= now)
    ).all()
    ended = {row[0]: row for row in candidates if not grant_in_force(read_utc(row[2]), now)}
    if not ended:
        return []
    # DELETE ... RETURNING: of two writers pruning at once, only the one that really removed
    # a grant records it.
    gone = set(session.scalars(
        delete(Grant).where(Grant.id.in_(list(ended))).returning(Grant.id)
        .execution_options(synchronize_session=False)))
    rows = [ended[grant_id] for grant_id in gone]
    emails = dict(session.execute(
        select(Account.id, Account.email).where(Account.id.in_({row[1] for row in rows}))).all())
    if running.pruned is None:
        running.pruned = Changes(running.actor)
    removed = []
    for _id, account_id, expires_at, *flags in sorted(rows, key=lambda row: emails.get(row[1], "")):
        perms = Grant.permissions_of(flags)
        ends = read_utc(expires_at)
        running.pruned.add(
            "collaborator.destroy", team.id if team else None, team.name if team else None,
            app=app_row.name, target=emails.get(account_id),
            before={"permissions": list(perms), "expires_at": ends.isoformat() if ends else None},
            reason=EXPIRED)
        removed.append(GrantChange(app_row.name, emails.get(account_id, ""), (), perms, ends))
    running.removed += removed
    return removed


def _facts(session: Session, app: App) -> AppFacts:
    team = session.get(Team, app.team_id) if app.team_id is not None else None
    owner = session.get(Account, app.owner_account_id) if app.owner_account_id is not None else None
    return AppFacts(
        name=app.name,
        team=team.name if team else None,
        owner=owner.email if owner else None,
        locked=app.locked,
        locked_at=app.locked_at,
    )


def _standing(session: Session, app: App, email: str, account: Account | None) -> Standing:
    if account is None:
        return Standing(email=email, as_of=_now(session))
    membership = _membership(session, app.team_id, account.id) if app.team_id is not None else None
    grant_row = _grant(session, app.id, account.id)
    if grant_row is None:
        # A grant this write removed as ended still tells the policy what it was (it gives
        # nothing either way): its holder is refused as the reads refuse them, "grant expired
        # at ...", not as a stranger who never had access.
        ended = next((c for c in _removed(session) if c.app == app.name and c.email == email), None)
        if ended is not None:
            return Standing(email, membership.role if membership else None,
                            membership.created_at if membership else None,
                            frozenset(ended.previous), None, ended.expires_at, _now(session))
    return Standing(
        email=email,
        role=membership.role if membership else None,
        member_since=membership.created_at if membership else None,
        grant=grant_row.permissions if grant_row else None,
        grant_origin=grant_row.origin if grant_row else None,
        grant_expires_at=read_utc(grant_row.expires_at) if grant_row else None,
        as_of=_now(session),
    )


def _removed(session: Session) -> list[GrantChange]:
    """The ended grants the running operation removed so far."""
    running = _running(session)
    return running.removed if running is not None else []


def _check(decision: Decision, refusal: type[Refused] = Refused) -> None:
    if not decision.allowed:
        raise refusal(decision.reason, rule=decision.rule)


def _admins(session: Session, team_id: int) -> int:
    return session.scalar(
        select(func.count())
        .select_from(Membership)
        .where(Membership.team_id == team_id, Membership.role == Role.ADMIN)
    ) or 0


def _check_admins_remain(session: Session, team_row: Team, role: str, new_role: str | None, change: str) -> None:
    """Refuse (SPEC rule 1) a change of one user's role to ``new_role`` (None: removal)."""
    if role != Role.ADMIN or new_role == Role.ADMIN:
        return  # the count of admins doesn't move: no need to read it
    before = _admins(session, team_row.id)
    _check(decide_admins_remain(team_row.name, before, before - 1, change=change), LastAdminRefused)


def _require_team(session: Session, team: Team, actor: Actor, action: TeamAction, **kw) -> Account | None:
    account = _account(session, actor.email)
    _check(decide_team(action, team.name, _relation(session, team, account), **kw))
    return account


def _perms(perms: Iterable[str]) -> tuple[str, ...]:
    return tuple(validate.sort_permissions(perms))


# -- teams -----------------------------------------------------------------------------------


def create_team(db: Database, actor: Actor, name: str) -> str:
    """Create a team; the actor becomes its first admin. Returns the team's name."""

    def body(session: Session, event: _Event) -> str:
        team_name = validate.team_name(name)
        email = validate.email(actor.email)
        if session.scalars(select(Team).where(Team.name == team_name)).first() is not None:
            raise Refused(f"Team {team_name} already exists: choose another name.")
        account = _ensure_account(session, email)
        team = Team(name=team_name)
        session.add(team)
        session.flush()
        session.add(Membership(team_id=team.id, account_id=account.id, role=Role.ADMIN))
        event.team_id, event.team_name = team.id, team.name
        event.after = {"team": team.name, "admin": email}
        return team.name

    return _run(db, actor, "team.create", body, team=name)


def rename_team(db: Database, actor: Actor, team: str, new_name: str) -> str:
    """Rename a team (admins only). Returns the new name."""

    def body(session: Session, event: _Event) -> str:
        team_row = _team(session, team, event, lock=True)
        _require_team(session, team_row, actor, TeamAction.RENAME_TEAM)
        new = validate.team_name(new_name)
        if new == team_row.name:
            raise Refused(f"Team {team_row.name} already has that name.")
        if session.scalars(select(Team).where(Team.name == new)).first() is not None:
            raise Refused(f"Can't rename {team_row.name} to {new}: a team named {new} exists already.")
        event.before, event.after = {"name": team_row.name}, {"name": new}
        team_row.name = new
        session.add(team_row)
        return new

    return _run(db, actor, "team.update", body, team=team)


# -- memberships -----------------------------------------------------------------------------


def add_member(db: Database, actor: Actor, team: str, email: str, role: str) -> MemberChange:
    """members:add: add a team user with a role, or set the role of an existing one."""
    return _set_membership(db, actor, team, email, role, ROLES, create=True)


def set_role(db: Database, actor: Actor, team: str, email: str, role: str) -> MemberChange:
    """members:set: change an existing team user's role to admin or member."""
    return _set_membership(db, actor, team, email, role, SETTABLE_ROLES, create=False)


def _set_membership(
    db: Database,
    actor: Actor,
    team: str,
    email: str,
    role: str,
    allowed_roles: tuple[str, ...],
    *,
    create: bool,
) -> MemberChange:
    def body(session: Session, event: _Event) -> MemberChange:
        team_row = _team(session, team, event, lock=True)
        _require_team(session, team_row, actor, TeamAction.MANAGE_MEMBERS)
        who = validate.email(email)
        event.target = who
        new_role = validate.role(role, allowed_roles)
        account = _account(session, who)
        membership = _membership(session, team_row.id, account.id if account else None)
        current = membership.role if membership else None
        target = Relation(current) if current else _relation(session, team_row, account)
        if membership is not None:
            event.action = "team_membership.update"
        _check(decide_role_target(team_row.name, who, target, current, new_role, create=create))
        if membership is None:
            account = account or _ensure_account(session, who)
            session.add(Membership(team_id=team_row.id, account_id=account.id, role=new_role))
            event.action = "team_membership.create"
            event.after = {"role": new_role}
            return MemberChange(team_row.name, who, new_role, None)
        _check_admins_remain(session, team_row, membership.role, new_role, f"change the role of {who}")
        event.before, event.after = {"role": membership.role}, {"role": new_role}
        previous, membership.role = membership.role, new_role
        session.add(membership)
        return MemberChange(team_row.name, who, new_role, previous)

    # The body renames the action to .create or .update once it knows which it is.
    default = "team_membership.create" if create else "team_membership.update"
    return _run(db, actor, default, body, team=team, target=email)


def remove_member(db: Database, actor: Actor, team: str, email: str) -> Removal:
    """members:remove: end a membership; explicit grants stay and are listed in the result."""

    def body(session: Session, event: _Event) -> Removal:
        team_row = _team(session, team, event, lock=True)
        _require_team(session, team_row, actor, TeamAction.MANAGE_MEMBERS)
        who = validate.email(email)
        event.target = who
        account = _account(session, who)
        membership = _membership(session, team_row.id, account.id if account else None)
        if membership is None:
            raise NotFound(f"{who} is not a user of {team_row.name}: run 'teamaccess members --team {team_row.name}'.")
        _check_admins_remain(session, team_row, membership.role, None, f"remove {who}")
        kept = tuple(
            session.scalars(
                select(App.name)
                .join(Grant, Grant.app_id == App.id)
                .where(App.team_id == team_row.id, Grant.account_id == account.id,
                       in_force(_now(session)))
                .order_by(App.name)
            )
        )
        event.before = {"role": membership.role}
        event.after = {"kept_grants": list(kept)} if kept else None
        session.delete(membership)
        return Removal(team_row.name, who, membership.role, kept)

    return _run(db, actor, "team_membership.destroy", body, team=team, target=email)


def add_collaborator(db: Database, actor: Actor, team: str, email: str, app: str) -> GrantChange:
    """The team page's "add a collaborator": a view-only grant on one team app (admins only)."""

    def body(session: Session, event: _Event) -> GrantChange:
        team_row = _team(session, team, event, lock=True)
        _require_team(session, team_row, actor, TeamAction.ADD_COLLABORATOR)
        who = validate.email(email)
        event.target = who
        app_row = _app(session, validate.app_name(app))
        event.app_name = app_row.name
        if app_row.team_id != team_row.id:
            raise Refused(f"{app_row.name} is not an app of {team_row.name}: choose one of the team's apps.")
        account = _account(session, who)
        membership = _membership(session, team_row.id, account.id if account else None)
        _check(decide_collaborator_target(team_row.name, who, membership.role if membership else None,
                                          app_row.name))
        _check(decide_new_grant(who, app_row.name, _grant(session, app_row.id, account.id if account else None)
                                is not None))
        account = account or _ensure_account(session, who)
        actor_account = _account(session, actor.email)
        session.add(Grant(app_id=app_row.id, account_id=account.id, origin="collaborator",
                    granted_by_id=actor_account.id if actor_account else None))
        event.after = {"permissions": [Permission.VIEW]}
        return GrantChange(app_row.name, who, (Permission.VIEW,))

    return _run(db, actor, "collaborator.create", body, team=team, target=email, app=app)


# -- app access ------------------------------------------------------------------------------


def _missing_app(name: str) -> NotFound:
    return NotFound(f"Couldn't find that app: {name}. Run 'teamaccess apps' to list yours.")


def _require_app(session: Session, app_row: App, actor: Actor, action: AppAction) -> Account | None:
    account = _account(session, actor.email)
    facts, standing = _facts(session, app_row), _standing(session, app_row, actor.email, account)
    if is_stranger(facts, standing):
        raise _missing_app(app_row.name)
    _check(decide_app(action, facts, standing))
    return account


def _expires_in(span: timedelta | None) -> timedelta | None:
    """The store's own check of a duration the faces parsed (validate.expires_in): > 0, <= 90d."""
    if span is None:
        return None
    if not isinstance(span, timedelta) or span <= timedelta(0):
        raise Invalid("Invalid duration: it must be more than zero (e.g. 30m, 8h, 7d).")
    if span > validate.MAX_EXPIRES_IN:
        raise Invalid("Invalid duration: the longest is 90d; ask again when it runs out.")
    return span


def _end(session: Session, span: timedelta | None) -> datetime | None:
    """When a grant given now for ``span`` ends (aware UTC, whole seconds), or None."""
    if span is None:
        return None
    return (_now(session) + span).replace(microsecond=0)


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def grant_access(
    db: Database, actor: Actor, app: str, email: str, permissions: Iterable[str] | str | None = None,
    *, expires_in: timedelta | None = None,
) -> GrantChange:
    """access:add: give an account an explicit grant (view plus what is asked), for good or,
    with ``expires_in``, until that long from now."""

    def body(session: Session, event: _Event) -> GrantChange:
        app_row = _app(session, app, event)
        actor_account = _require_app(session, app_row, actor, AppAction.MANAGE_ACCESS)
        who = validate.email(email)
        event.target = who
        perms = validate.permissions(permissions)
        span = _expires_in(expires_in)
        account = _account(session, who)
        _check(decide_grant_target(event.team_name, who, _role_on(session, app_row, account)))
        _check(decide_own_grant(validate.email(actor.email), who, app_row.name))
        _check(decide_new_grant(who, app_row.name, _grant(session, app_row.id, account.id if account else None)
                                is not None))
        ends = _end(session, span)
        _check(decide_granted_end(_facts(session, app_row),
                                  _standing(session, app_row, actor.email, actor_account), ends,
                                  widens=True))
        account = account or _ensure_account(session, who)
        session.add(Grant.holding(perms, app_id=app_row.id, account_id=account.id, origin="granted",
                                  granted_by_id=actor_account.id if actor_account else None,
                                  created_at=_now(session),
                                  expires_at=ends))
        event.after = {"permissions": list(_perms(perms))}
        if ends is not None:
            event.after["expires_at"] = _iso(ends)
        return GrantChange(app_row.name, who, _perms(perms), expires_at=ends)

    return _run(db, actor, "collaborator.create", body, app=app, target=email)


def _role_on(session: Session, app_row: App, account: Account | None) -> str | None:
    if app_row.team_id is None or account is None:
        return None
    membership = _membership(session, app_row.team_id, account.id)
    return membership.role if membership else None


def update_access(
    db: Database, actor: Actor, app: str, email: str, permissions: Iterable[str] | str | None,
    *, expires_in: timedelta | None = None, permanent: bool = False,
) -> GrantChange:
    """access:update: replace an existing grant's whole set (None: keep it) and perhaps its end.

    ``expires_in`` sets a new end measured from now; ``permanent`` removes the end; neither
    keeps the grant's current end.
    """

    def body(session: Session, event: _Event) -> GrantChange:
        app_row = _app(session, app, event)
        actor_account = _require_app(session, app_row, actor, AppAction.MANAGE_ACCESS)
        who = validate.email(email)
        event.target = who
        if expires_in is not None and permanent:
            raise Invalid("Give either --expires-in or --permanent, not both.")
        span = _expires_in(expires_in)
        account = _account(session, who)
        _check(decide_grant_target(event.team_name, who, _role_on(session, app_row, account)))
        _check(decide_own_grant(validate.email(actor.email), who, app_row.name))
        grant_row = _grant(session, app_row.id, account.id if account else None)
        if grant_row is None:
            raise NotFound(f"{who} has no grant on {app_row.name}: use access:add.")
        before = _perms(grant_row.permissions)
        perms = grant_row.permissions if permissions is None else validate.permissions(permissions)
        ends_before = read_utc(grant_row.expires_at)
        ends = None if permanent else _end(session, span) if span is not None else ends_before
        if set(before) == set(perms) and ends == ends_before:
            if permissions is None and span is None and not permanent:
                raise Invalid("Nothing to change: give --permissions, --expires-in or --permanent.")
            until = "and it never ends" if ends is None else f"until {_iso(ends)}"
            raise Refused(f"{who} already has exactly {', '.join(before)} on {app_row.name}, {until}.")
        later = ends_before is not None and (ends is None or ends > ends_before)
        _check(decide_granted_end(_facts(session, app_row),
                                  _standing(session, app_row, actor.email, actor_account), ends,
                                  widens=later or not set(perms) <= set(before)))
        grant_row.set_permissions(perms)
        grant_row.expires_at = ends
        session.add(grant_row)
        event.before, event.after = {"permissions": list(before)}, {"permissions": list(_perms(perms))}
        if ends_before is not None or ends is not None:
            event.before["expires_at"], event.after["expires_at"] = _iso(ends_before), _iso(ends)
        return GrantChange(app_row.name, who, _perms(perms), before, ends)

    return _run(db, actor, "collaborator.update", body, app=app, target=email)


def revoke_access(db: Database, actor: Actor, app: str, email: str) -> GrantChange:
    """access:remove: drop an account's explicit grant (allowed for an admin's old grant too)."""

    def body(session: Session, event: _Event) -> GrantChange:
        app_row = _app(session, app, event)
        who = validate.email(email)
        event.target = who
        account = _account(session, who)
        grant_row = _grant(session, app_row.id, account.id if account else None)
        if who != validate.email(actor.email) or grant_row is None:
            _require_app(session, app_row, actor, AppAction.MANAGE_ACCESS)
        if grant_row is None:
            raise NotFound(f"{who} has no grant on {app_row.name}: nothing to remove.")
        before = _perms(grant_row.permissions)
        session.delete(grant_row)
        event.before = {"permissions": list(before)}
        if grant_row.expires_at is not None:  # the log keeps what was taken away, end included
            event.before["expires_at"] = _iso(read_utc(grant_row.expires_at))
        return GrantChange(app_row.name, who, (), before)

    return _run(db, actor, "collaborator.destroy", body, app=app, target=email)


def join_app(db: Database, actor: Actor, app: str) -> GrantChange:
    """apps:join: a member or viewer gives themselves a view grant on an unlocked team app."""

    def body(session: Session, event: _Event) -> GrantChange:
        app_row = _app(session, app, event)
        event.target = actor.email
        actor_account = _require_app(session, app_row, actor, AppAction.JOIN)
        session.add(Grant(app_id=app_row.id, account_id=actor_account.id, origin="join", granted_by_id=actor_account.id))
        event.after = {"permissions": [Permission.VIEW]}
        return GrantChange(app_row.name, actor.email, (Permission.VIEW,))

    return _run(db, actor, "collaborator.create", body, app=app, target=actor.email)


def leave_app(db: Database, actor: Actor, app: str) -> GrantChange:
    """apps:leave: drop your own grant on an app."""

    def body(session: Session, event: _Event) -> GrantChange:
        app_row = _app(session, app, event)
        event.target = actor.email
        actor_account = _require_app(session, app_row, actor, AppAction.LEAVE)
        grant_row = _grant(session, app_row.id, actor_account.id)
        before = _perms(grant_row.permissions)
        session.delete(grant_row)
        event.before = {"permissions": list(before)}
        return GrantChange(app_row.name, actor.email, (), before)

    return _run(db, actor, "collaborator.destroy", body, app=app, target=actor.email)


# -- apps ------------------------------------------------------------------------------------


def _app_change(session: Session, app_row: App, removed: Iterable[str] = ()) -> AppChange:
    f = _facts(session, app_row)
    return AppChange(app_row.name, f.team, f.owner, app_row.locked, tuple(removed))


def create_app(
    db: Database, actor: Actor, name: str, team: str | None = None, *, locked: bool = False
) -> AppChange:
    """apps:create: a personal app, or a team app whose creator gets an all-four grant."""

    def body(session: Session, event: _Event) -> AppChange:
        app_name = validate.app_name(name)
        email = validate.email(actor.email)
        if team is None:
            if locked:
                raise Invalid("Only team apps can be locked: add --team TEAM or drop --locked.")
            actor_account = _ensure_account(session, email)
            owner_kw: dict[str, Any] = {"owner_account_id": actor_account.id}
        else:
            team_row = _team(session, team, event)
            actor_account = _require_team(session, team_row, actor, TeamAction.CREATE_APP)
            owner_kw = {"team_id": team_row.id}
        if session.scalars(select(App).where(App.name == app_name)).first() is not None:
            raise Refused(f"Name {app_name} is already taken: choose another app name.")
        now = utcnow()
        app_row = App(name=app_name, created_by_id=actor_account.id, locked=locked,
                      locked_at=now if locked else None, **owner_kw)
        session.add(app_row)
        session.flush()
        creators = creator_grant(team, _role_on(session, app_row, actor_account))
        if creators:
            session.add(Grant.holding(creators, app_id=app_row.id, account_id=actor_account.id, origin="creator",
                                      granted_by_id=actor_account.id))
        event.app_name = app_row.name
        event.after = {"team": team, "locked": locked}
        return _app_change(session, app_row)

    return _run(db, actor, "app.create", body, team=team, app=name)


def _set_lock(db: Database, actor: Actor, app: str, lock: bool) -> AppChange:
    def body(session: Session, event: _Event) -> AppChange:
        app_row = _app(session, app, event)
        _require_app(session, app_row, actor, AppAction.LOCK if lock else AppAction.UNLOCK)
        event.before, event.after = {"locked": app_row.locked}, {"locked": lock}
        app_row.locked = lock
        app_row.locked_at = utcnow() if lock else None
        session.add(app_row)
        return _app_change(session, app_row)

    return _run(db, actor, "app.update", body, app=app)


def lock_app(db: Database, actor: Actor, app: str) -> AppChange:
    """apps:lock: freeze the access of team users who join from now on."""
    return _set_lock(db, actor, app, True)


def unlock_app(db: Database, actor: Actor, app: str) -> AppChange:
    """apps:unlock."""
    return _set_lock(db, actor, app, False)


def transfer_app(
    db: Database, actor: Actor, app: str, recipient: str, *, locked: bool = False
) -> AppChange:
    """apps:transfer: into a team (by name) or to an account (by email).

    Leaving a team removes every grant on the app; arriving in a team gives the actor an
    all-four grant unless they are its admin. ``locked`` locks the app in the same step.
    """

    def body(session: Session, event: _Event) -> AppChange:
        app_row = _app(session, app, event)
        actor_account = _account(session, actor.email)
        source = _facts(session, app_row)
        if is_stranger(source, _standing(session, app_row, actor.email, actor_account)):
            raise _missing_app(app_row.name)
        to_account = "@" in recipient
        # May the actor let the app go from where it is?
        if source.team is not None:
            src = session.get(Team, app_row.team_id)
            _check(decide_team(TeamAction.TRANSFER_OUT, src.name, _relation(session, src, actor_account)))
        elif source.owner != validate.email(actor.email):
            raise Refused(f"Only the owner of the personal app {app_row.name} may transfer it.")
        if to_account:
            who = validate.email(recipient)
            event.target = who
            if locked:
                raise Invalid("Only team apps can be locked: drop --locked for a personal recipient.")
            new_owner = _account(session, who)
            if new_owner is None:
                raise NotFound(f"No account {who}: they must be known to teamaccess first.")
            if source.team is None and source.owner == who:
                raise Refused(f"{app_row.name} already belongs to {who}.")
            removed = _drop_grants(session, app_row)
            event.before = {"team": source.team, "owner": source.owner, "locked": app_row.locked}
            app_row.team_id, app_row.owner_account_id, app_row.locked, app_row.locked_at = None, new_owner.id, False, None
            session.add(app_row)
            session.flush()
            event.after = {"owner": who, "removed_grants": list(removed)}
            return _app_change(session, app_row, removed)
        target = _team(session, validate.team_name(recipient), None, lock=True)
        if source.team == target.name:
            raise Refused(f"{app_row.name} already belongs to {target.name}.")
        rel = _relation(session, target, actor_account)
        _check(decide_team(TeamAction.TRANSFER_IN, target.name, rel,
                           owns_app=source.team is None and source.owner == actor.email))
        removed = _drop_grants(session, app_row) if source.team is not None else ()
        event.before = {"team": source.team, "owner": source.owner, "locked": app_row.locked}
        app_row.team_id, app_row.owner_account_id = target.id, None
        app_row.locked, app_row.locked_at = locked, utcnow() if locked else None
        session.add(app_row)
        session.flush()
        transferrers = creator_grant(target.name, rel.value)
        if transferrers:
            session.add(Grant.holding(transferrers, app_id=app_row.id, account_id=actor_account.id,
                                      origin="transfer", granted_by_id=actor_account.id))
        event.team_id, event.team_name = target.id, target.name
        event.after = {"team": target.name, "locked": locked, "removed_grants": list(removed)}
        return _app_change(session, app_row, removed)

    return _run(db, actor, "app_transfer.create", body, app=app, target=recipient)


def _drop_grants(session: Session, app_row: App) -> tuple[str, ...]:
    emails = tuple(
        session.scalars(
            select(Account.email)
            .join(Grant, Grant.account_id == Account.id)
            .where(Grant.app_id == app_row.id)
            .order_by(Account.email)
        )
    )
    session.execute(delete(Grant).where(Grant.app_id == app_row.id))
    return emails


def destroy_app(db: Database, actor: Actor, app: str) -> AppChange:
    """apps:destroy: remove an app with its grants and resources."""

    def body(session: Session, event: _Event) -> AppChange:
        app_row = _app(session, app, event)
        _require_app(session, app_row, actor, AppAction.DESTROY)
        change = _app_change(session, app_row)
        removed = _drop_grants(session, app_row)
        session.execute(delete(Resource).where(Resource.app_id == app_row.id))
        event.before = {"team": change.team, "owner": change.owner, "locked": app_row.locked,
                        "grants": list(removed)}
        session.delete(app_row)
        return AppChange(change.app, change.team, change.owner, change.locked, removed)

    return _run(db, actor, "app.destroy", body, app=app)


# -- accounts --------------------------------------------------------------------------------


def set_mfa(db: Database, actor: Actor, enabled: bool) -> bool:
    """account:mfa: the actor turns their own MFA on or off (nobody else can)."""

    def body(session: Session, event: _Event) -> bool:
        email = validate.email(actor.email)
        account = _account(session, email)
        if account is None:
            raise NotFound(f"No account {email}: ask a team admin to add you.")
        if account.mfa_enabled == enabled:
            raise Refused(f"MFA is already {'enabled' if enabled else 'disabled'} for {email}.")
        event.before, event.after = {"mfa": account.mfa_enabled}, {"mfa": enabled}
        account.mfa_enabled = enabled
        session.add(account)
        return enabled

    return _run(db, actor, "account.update", body, target=actor.email)


#: How long an offer "login L may act as EMAIL" waits for L to confirm it.
OFFER_DAYS = 7


@dataclass(frozen=True)
class Binding:
    """The outcome of accounts:bind: bound now, or offered for the login's holder to confirm."""

    login: str
    email: str
    offered: bool  # True: recorded only; the login's holder confirms by running accounts:bind
    previous: str | None = None  # the account the login was moved away from


def _admin_teams(session: Session, account: Account | None) -> frozenset[str]:
    if account is None:
        return frozenset()
    return frozenset(session.scalars(
        select(Team.name).join(Membership, Membership.team_id == Team.id)
        .where(Membership.account_id == account.id, Membership.role == "admin")))


def _account_teams(session: Session, account: Account) -> tuple[frozenset[str], frozenset[str]]:
    """The teams the account is in, and the teams of its grants: a binder must administer all
    of them (policy.has_authority)."""
    teams = frozenset(session.scalars(
        select(Team.name).join(Membership, Membership.team_id == Team.id)
        .where(Membership.account_id == account.id)))
    reach = set(session.scalars(
        select(Team.name).join(App, App.team_id == Team.id).join(Grant, Grant.app_id == App.id)
        .where(Grant.account_id == account.id)))
    return teams, frozenset(reach)


def _bind_event(email: str, login: str) -> str:
    return _dump({"email": email, "login": login}) or ""


def _offer_event(email: str, login: str) -> str:
    return _dump({"offer": {"email": email, "login": login}}) or ""


def _offered(session: Session, account: Account, login: str) -> str | None:
    """Who made an unexpired offer for ``login`` to act as ``account`` that stands, or None.

    Offers live in the audit log (one ``account.update`` event each). One counts if nothing
    bound the login since, it is younger than OFFER_DAYS, and whoever made it still has
    authority over the account now.
    """
    since = utcnow() - timedelta(days=OFFER_DAYS)
    last_bound = session.scalar(select(func.max(AuditEvent.id)).where(
        AuditEvent.action == "account.update", AuditEvent.outcome == "ok",
        AuditEvent.after.endswith(f', "login": "{login}"}}', autoescape=True),
        AuditEvent.after.startswith('{"email": ', autoescape=True))) or 0
    offers = session.scalars(select(AuditEvent.actor_email).where(
        AuditEvent.action == "account.update", AuditEvent.outcome == "ok",
        AuditEvent.target_email == account.email, AuditEvent.id > last_bound,
        AuditEvent.at >= since, AuditEvent.after == _offer_event(account.email, login),
    ).order_by(AuditEvent.id.desc()))
    teams, strong = _account_teams(session, account)
    for offerer in dict.fromkeys(offers):
        if has_authority(_admin_teams(session, _account(session, offerer)), teams, strong)[0]:
            return offerer
    return None


def bind_login(db: Database, actor: Actor, login: str, email: str) -> Binding:
    """accounts:bind: tie an OS login to an account, so that the login acts as that account.

    The rule is :func:`policy.decide_bind`: the database's owner binds directly; otherwise an
    admin with authority over the account offers "login may act as email", and the login's
    holder (proved by their uid) confirms by running the same command. Every step is audited.
    """

    def body(session: Session, event: _Event) -> Binding:
        name = validate.login(login)
        who = validate.email(email)
        event.target = who
        account = _account(session, who)
        if account is None:
            raise NotFound(f"No account {who}: add them to a team first with members:add.")
        actor_account = _account(session, actor.email)
        holder = session.scalars(select(Account).where(Account.os_login == name)).first()
        teams, strong = _account_teams(session, account)
        # A served session proves a key, never an OS login: it can't speak for one.
        own_login = None if actor.key_fingerprint else actor.login
        offerer = _offered(session, account, name) if own_login == name else None
        decision = decide_bind(BindFacts(
            email=who, login=name, actor_email=actor.email, actor_login=own_login,
            actor_owns_database=actor.owns_database, actor_admin_of=_admin_teams(session, actor_account),
            account_teams=teams, account_strong_teams=strong,
            bound_to=holder.email if holder is not None else None,
            offered=offerer is not None,
            binding_lapsed=holder is not None and holder.id == account.id
            and not delegated_use(session, account, account.os_login_by, "binding"),
        ))
        if decision.outcome is BindOutcome.REFUSE:
            raise Refused(decision.reason, rule=decision.rule)
        if decision.outcome is BindOutcome.OFFER:
            event.after = {"offer": {"email": who, "login": name}}
            return Binding(name, who, offered=True)
        previous = None
        if holder is not None and holder.id != account.id:
            previous = holder.email
            event.before = {"login": name, "email": holder.email}
            holder.os_login = None
            session.add(holder)
            session.flush()
        event.after = {"email": who, "login": name}
        account.os_login = name
        # Who authorized it, so the binding lapses when they lose authority over the account
        # (policy.decide_delegated_use); None: the database's owner, whose bindings never lapse.
        account.os_login_by = (None if decision.rule == "bind:owner"
                               else offerer if decision.rule == "bind:confirm" else actor.email)
        session.add(account)
        return Binding(name, who, offered=False, previous=previous)

    return _run(db, actor, "account.update", body, target=email)


# -- SSH keys --------------------------------------------------------------------------------


@dataclass(frozen=True)
class KeyChange:
    """The outcome of keys:add / keys:remove."""

    email: str  # the account the key belongs (belonged) to
    fingerprint: str
    key_type: str
    comment: str | None


def _act_for(session: Session, actor: Actor, account: Account, doing: str):
    """May the actor manage ``account``'s keys? (their own: always; see queries.key_decision)."""
    return key_decision(session, actor.email, account.email, doing)


def add_key(db: Database, actor: Actor, key_text: str, account: str | None = None) -> KeyChange:
    """keys:add: register an SSH public key for the actor's account (or, by the bind rule,
    for ``account``). A key belongs to one account only."""

    def body(session: Session, event: _Event) -> KeyChange:
        me_email = validate.email(actor.email)
        who = validate.email(account) if account is not None else me_email
        event.target = who
        parsed = sshkeys.parse_public_key(key_text)
        target = _account(session, who)
        if target is None:
            if who == me_email:
                raise NotFound(f"No account {who}: ask a team admin to add you to a team first.")
            raise NotFound(f"No account {who}: add them to a team first with members:add.")
        _check(_act_for(session, actor, target, "add a key to"))
        event.after = {"ssh_key": parsed.fingerprint}
        taken = session.scalars(select(SshKey).where(SshKey.fingerprint == parsed.fingerprint)).first()
        if taken is not None:
            holder = session.get(Account, taken.account_id)
            if holder is not None and holder.id == target.id:
                raise Refused(f"Key {parsed.fingerprint} is already on {who}: nothing to add.")
            if holder is not None and (
                _act_for(session, actor, holder, "see the keys of").allowed
            ):
                raise Refused(
                    f"Key {parsed.fingerprint} already belongs to {holder.email}: a key belongs "
                    "to one account; remove it there first or use another key."
                )
            raise Refused(
                f"Key {parsed.fingerprint} already belongs to another account: a key belongs "
                "to one account; use another key."
            )
        session.add(SshKey(account_id=target.id, fingerprint=parsed.fingerprint,
                           key_type=parsed.key_type, public_key=parsed.public_key,
                           comment=parsed.comment, created_by=me_email))
        return KeyChange(who, parsed.fingerprint, parsed.key_type, parsed.comment)

    return _run(db, actor, "account.update", body, target=account or actor.email)


def remove_key(db: Database, actor: Actor, fingerprint: str) -> KeyChange:
    """keys:remove: drop a key; your own always, another account's by the bind rule."""

    def body(session: Session, event: _Event) -> KeyChange:
        fp = sshkeys.normalize_fingerprint(fingerprint)
        key = session.scalars(select(SshKey).where(SshKey.fingerprint == fp)).first()
        holder = session.get(Account, key.account_id) if key is not None else None
        if key is None or holder is None or (
            not key_decision_to_remove(session, actor.email, key, holder).allowed
        ):
            # Whose a key is stays private to whoever may manage it: a stranger learns nothing.
            raise NotFound(f"No key {fp} among the keys you manage: run 'teamaccess keys' to list yours.")
        event.target = holder.email
        event.before = {"ssh_key": fp}
        change = KeyChange(holder.email, fp, key.key_type, key.comment)
        session.delete(key)
        return change

    return _run(db, actor, "account.update", body, target=None)


def refuse_act_as(db: Database, actor: Actor, reason: str) -> None:
    """Log a refused ``--as`` (the actor as claimed, the real login) and raise the refusal."""

    def body(session: Session, event: _Event) -> None:
        raise Refused(reason, rule="identity")

    _run(db, actor, "account.act_as", body, target=actor.email)


# -- temporary access (SPEC "Temporary access and access requests") -------------------------


def prune_expired(db: Database, actor: Actor, app: str | None = None) -> list[GrantChange]:
    """access:prune: remove the grants that have ended, on ``app`` or on every app whose access
    the actor may manage (team admins, ``manage`` holders), one ``collaborator.destroy`` audit
    event (reason ``expired``) each. Nothing to prune: an empty list and no event.

    Correctness never waits for this (an ended grant gives nothing from its end on); it tidies
    the lists, as the next write to each app would.
    """

    def body(session: Session, event: _Event) -> list[GrantChange]:
        # The events are the removals themselves (event.pruned); none of its own.
        event.changes = Changes(actor)
        actor_account = _account(session, validate.email(actor.email))
        if app is not None:
            # _app removes the app's ended grants on loading it; deciding after is the same as
            # before, as the actor's own standing ignores an ended grant either way.
            app_row = _app(session, app, event)
            _require_app(session, app_row, actor, AppAction.MANAGE_ACCESS)
            return list(event.removed)
        now = _now(session)
        candidates = session.scalars(
            select(App).where(App.id.in_(
                select(Grant.app_id).where(Grant.expires_at.is_not(None),
                                           Grant.expires_at <= now)))
            .order_by(App.name)).all()
        manages_any = False
        for app_row in candidates:
            facts = _facts(session, app_row)
            standing = _standing(session, app_row, actor.email, actor_account)
            if is_stranger(facts, standing) or not decide_app(AppAction.MANAGE_ACCESS, facts, standing):
                continue
            manages_any = True
            team = session.get(Team, app_row.team_id) if app_row.team_id is not None else None
            _prune(session, app_row, team)
        if not manages_any:
            _check(decide_prune(*_manages_some_app(session, actor_account, now)))
        return list(event.removed)

    return _run(db, actor, "collaborator.destroy", body, app=app)


def _manages_some_app(session: Session, account: Account | None, now: datetime) -> tuple[bool, bool]:
    """Whether the account administers a team, and whether it holds manage (in force) on an
    app: what policy.decide_prune asks."""
    if account is None:
        return False, False
    admin = bool(session.scalar(select(func.count()).select_from(Membership).where(
        Membership.account_id == account.id, Membership.role == Role.ADMIN)))
    manage = bool(session.scalar(select(func.count()).select_from(Grant).where(
        Grant.account_id == account.id, Grant.can_manage.is_(True), in_force(now))))
    return admin, manage


# -- access requests (SPEC "Temporary access and access requests") ---------------------------


@dataclass(frozen=True)
class RequestChange:
    """The outcome of access:request, access:approve or access:deny."""

    id: int
    app: str
    requester: str
    permissions: tuple[str, ...]  # what was asked for (view included)
    status: str
    expires_at: datetime | None = None  # the grant's end after an approval (None: never)


def _lock_app_row(session: Session, app_row: App) -> None:
    """PostgreSQL: serialise requests and approvals on one app (a second pending request by
    the same person, two approvals widening one grant). SQLite's BEGIN IMMEDIATE already does."""
    session.execute(select(App.id).where(App.id == app_row.id).with_for_update())


def _check_or_missing(decision: Decision, stranger_rule: str, missing: StoreError) -> None:
    if not decision.allowed and decision.rule == stranger_rule:
        raise missing
    _check(decision)


def request_access(
    db: Database, actor: Actor, app: str, permissions: Iterable[str] | str, reason: str,
    *, expires_in: timedelta | None = None,
) -> RequestChange:
    """access:request: ask for permissions on an app, with a reason; a decider approves or denies."""

    def body(session: Session, event: _Event) -> RequestChange:
        app_row = _app(session, app, event)  # (removes the app's ended grants first)
        email = validate.email(actor.email)
        event.target = email
        asked = validate.permissions(permissions)
        span = _expires_in(expires_in)
        _lock_app_row(session, app_row)
        account = _account(session, email)
        now = _now(session)
        pending = _pending_request(session, app_row, account, now)
        _check_or_missing(
            decide_request(_facts(session, app_row), _standing(session, app_row, email, account),
                           asked, reason, pending_id=pending.id if pending is not None else None),
            "request:stranger", _missing_app(app_row.name))
        text = reason.strip()
        row = AccessRequest.holding(
            asked, app_id=app_row.id, requester_id=account.id, reason=text,
            expires_in_seconds=int(span.total_seconds()) if span is not None else None,
            status=RequestStatus.PENDING, created_at=now)
        session.add(row)
        session.flush()
        event.after = {"request": row.id, "permissions": list(_perms(asked)), "reason": _cut(text),
                       "expires_in": validate.duration_text(span) if span else None,
                       "status": RequestStatus.PENDING.value}
        return RequestChange(row.id, app_row.name, email, _perms(asked), RequestStatus.PENDING.value)

    return _run(db, actor, "access_request.create", body, app=app, target=actor.email)


def _pending_request(session: Session, app_row: App, account: Account | None,
                     now: datetime) -> AccessRequest | None:
    """The account's request on the app that is still pending as of ``now`` (not lapsed)."""
    if account is None:
        return None
    rows = session.scalars(
        select(AccessRequest).where(
            AccessRequest.app_id == app_row.id, AccessRequest.requester_id == account.id,
            AccessRequest.status == RequestStatus.PENDING,
        ).order_by(AccessRequest.id.desc())
    )
    for row in rows:
        if request_status(row.status, read_utc(row.created_at), now) is RequestStatus.PENDING:
            return row
    return None


def _load_request(session: Session, request_id: int) -> AccessRequest | None:
    """The request row, locked for this transaction on PostgreSQL, so two deciders at once
    take turns and the second reads the first's decision."""
    if not isinstance(request_id, int) or isinstance(request_id, bool) or not 0 < request_id < 2**31:
        return None
    return session.scalars(
        select(AccessRequest).where(AccessRequest.id == request_id).with_for_update()
    ).first()


def _open_request(session: Session, event: _Event, request_id: int
                  ) -> tuple[AccessRequest, App, Account, str | None]:
    """What approve, deny and withdraw start from: the request row (locked), its app loaded for
    a write (its ended grants removed first), its requester and who decided it, if anyone; an
    unknown id is NotFound."""
    row = _load_request(session, request_id)
    if row is None:
        raise NotFound(unknown_request(request_id))
    app_name = session.scalar(select(App.name).where(App.id == row.app_id))
    requester = session.get(Account, row.requester_id)
    if app_name is None or requester is None:  # pragma: no cover - rows cascade with them
        raise NotFound(unknown_request(request_id))
    app_row = _app(session, app_name, event)
    event.app_name, event.target = app_row.name, requester.email
    decided_by = session.get(Account, row.decided_by_id) if row.decided_by_id else None
    return row, app_row, requester, decided_by.email if decided_by else None


def _decide(
    db: Database, actor: Actor, request_id: int, decision: RequestDecision,
    apply: Callable[[Session, _Event, AccessRequest, App, Account], RequestChange],
) -> RequestChange:
    """The shared part of approve and deny: load, decide, then ``apply`` marks the request
    decided with a conditional update (WHERE status = 'pending'), so one decision ever lands."""

    def body(session: Session, event: _Event) -> RequestChange:
        row, app_row, requester, decided_by = _open_request(session, event, request_id)
        email = validate.email(actor.email)
        decider_account = _account(session, email)
        _check_or_missing(
            decide_request_decision(
                decision, row.id, _facts(session, app_row),
                _standing(session, app_row, email, decider_account), requester=requester.email,
                status=row.status, created_at=read_utc(row.created_at), now=_now(session),
                decided_by=decided_by),
            "request_decision:unknown", NotFound(unknown_request(request_id)))
        event.before = {"request": row.id, "status": RequestStatus.PENDING.value}
        return apply(session, event, row, app_row, decider_account)

    return _run(db, actor, "access_request.update", body)


def _mark_decided(session: Session, row: AccessRequest, status: RequestStatus,
                  decider: Account, reason: str | None) -> None:
    """Record the decision only if the request is still pending: the loser of a race (whose
    read came before the winner's commit) changes nothing and is told who won."""
    done = session.execute(
        update(AccessRequest)
        .where(AccessRequest.id == row.id, AccessRequest.status == RequestStatus.PENDING)
        .values(status=status, decided_at=_now(session), decided_by_id=decider.id,
                decision_reason=reason)
        .execution_options(synchronize_session=False)
    ).rowcount
    if done != 1:
        session.expire(row)
        winner = session.get(Account, row.decided_by_id) if row.decided_by_id else None
        by = f" by {winner.email}" if winner else ""
        raise Refused(f"Request {row.id} was already {row.status}{by}: a request is decided once.",
                      rule="request_decision:decided")


def approve_request(
    db: Database, actor: Actor, request_id: int, *, expires_in: timedelta | None = None,
    permanent: bool = False,
) -> RequestChange:
    """access:approve: grant what the request asks for, in the same transaction.

    The grant lasts ``expires_in`` from now if given, never if ``permanent``, else what the
    requester asked for, else it never ends. An existing grant widens (policy.plan_approval
    says how, or refuses).
    """

    def apply(session: Session, event: _Event, row: AccessRequest, app_row: App,
              decider: Account) -> RequestChange:
        if permanent and expires_in is not None:
            raise Invalid("Give either --expires-in or --permanent, not both.")
        span = _expires_in(expires_in)
        if span is None and row.expires_in_seconds and not permanent:
            span = timedelta(seconds=row.expires_in_seconds)
        ends_at = _end(session, span)
        _lock_app_row(session, app_row)
        requester = session.get(Account, row.requester_id)
        plan = plan_approval(_facts(session, app_row),
                             _standing(session, app_row, requester.email, requester),
                             row.permissions, ends_at=ends_at)
        if isinstance(plan, Decision):
            _check(plan)
            raise AssertionError("plan_approval refuses with a denying Decision")  # pragma: no cover
        _check(decide_granted_end(_facts(session, app_row),
                                  _standing(session, app_row, decider.email, decider), plan.expires_at,
                                  widens=True))
        _mark_decided(session, row, RequestStatus.APPROVED, decider, None)
        grant_row = _grant(session, app_row.id, requester.id)  # (an ended one was removed above)
        grant_before: dict[str, Any] | None = None
        if grant_row is None:
            grant_row = Grant(app_id=app_row.id, account_id=requester.id, origin="granted",
                              created_at=_now(session))
        else:
            grant_before = {"permissions": list(_perms(grant_row.permissions)),
                            "expires_at": _iso(read_utc(grant_row.expires_at))}
        grant_row.set_permissions(plan.permissions)
        grant_row.expires_at = plan.expires_at
        grant_row.granted_by_id = decider.id
        session.add(grant_row)
        session.flush()
        # Two audit rows for one call: the decision, and the grant's own event, so the grant's
        # history reads like any other grant's.
        asked = _perms(row.permissions)
        changes = Changes(actor)
        changes.add("access_request.update", event.team_id, event.team_name, app=app_row.name,
                    target=requester.email, before=event.before,
                    after={"request": row.id, "status": RequestStatus.APPROVED.value,
                           "permissions": list(asked), "expires_at": _iso(ends_at)})
        changes.add("collaborator.update" if grant_before else "collaborator.create", event.team_id,
                    event.team_name, app=app_row.name, target=requester.email, before=grant_before,
                    after={"permissions": list(_perms(plan.permissions)),
                           "expires_at": _iso(plan.expires_at), "request": row.id})
        event.changes = changes
        return RequestChange(row.id, app_row.name, requester.email, asked,
                             RequestStatus.APPROVED.value, plan.expires_at)

    return _decide(db, actor, request_id, RequestDecision.APPROVE, apply)


def withdraw_request(db: Database, actor: Actor, request_id: int) -> RequestChange:
    """access:withdraw: the requester takes back a pending request (policy.decide_withdraw)."""

    def body(session: Session, event: _Event) -> RequestChange:
        row, app_row, requester, decided_by = _open_request(session, event, request_id)
        email = validate.email(actor.email)
        may_decide = decide_app(AppAction.MANAGE_ACCESS, _facts(session, app_row),
                                _standing(session, app_row, email, _account(session, email))).allowed
        _check_or_missing(
            decide_withdraw(row.id, email, requester.email, may_decide=may_decide, status=row.status,
                            created_at=read_utc(row.created_at), now=_now(session),
                            decided_by=decided_by),
            "request_withdraw:unknown", NotFound(unknown_request(request_id)))
        event.before = {"request": row.id, "status": RequestStatus.PENDING.value}
        _mark_decided(session, row, RequestStatus.WITHDRAWN, requester, None)
        event.after = {"request": row.id, "status": RequestStatus.WITHDRAWN.value}
        return RequestChange(row.id, app_row.name, requester.email, _perms(row.permissions),
                             RequestStatus.WITHDRAWN.value)

    return _run(db, actor, "access_request.update", body)


def deny_request(db: Database, actor: Actor, request_id: int, *, reason: str | None = None) -> RequestChange:
    """access:deny: close a pending request without granting anything; the reason is optional."""

    def apply(session: Session, event: _Event, row: AccessRequest, app_row: App,
              decider: Account) -> RequestChange:
        _check(decide_reason(reason, required=False))
        text = reason.strip() if reason and reason.strip() else None
        _mark_decided(session, row, RequestStatus.DENIED, decider, text)
        requester = session.get(Account, row.requester_id)
        event.after = {"request": row.id, "status": RequestStatus.DENIED.value, "reason": _cut(text)}
        return RequestChange(row.id, app_row.name, requester.email, _perms(row.permissions),
                             RequestStatus.DENIED.value)

    return _decide(db, actor, request_id, RequestDecision.DENY, apply)
