"""Reads for the faces: each one a few SQL queries (never one per row), checked by the policy.

Reads write no audit events; a read the actor may not make raises
:class:`~store.errors.Refused` with the policy's reason.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from sqlalchemy import String, exists, func, literal, or_, select, type_coerce, union
from sqlalchemy.orm import Session, aliased

from . import validate
from .db import Database
from .errors import NotFound, Refused
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
)
from .policy import (
    PERMISSIONS,
    REQUEST_LAPSE,
    AppAction,
    AppFacts,
    Effective,
    Relation,
    RequestDecision,
    Standing,
    TeamAction,
    UsersVisible,
    decide_act_for,
    decide_app,
    decide_delegated_use,
    decide_remove_key,
    decide_request_decision,
    decide_team,
    effective_permissions,
    explain_missing,
    grant_in_force,
    is_stranger,
    relation,
    request_status,
    users_visible_to,
)
from .words import COLLABORATOR, ROLES, Permission, RequestStatus, Role

# -- rows ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TeamRow:
    """A team the actor belongs to, with their relation to it."""

    name: str
    role: str  # admin / member / viewer / collaborator


@dataclass(frozen=True)
class MemberRow:
    """One line of a team's roster: a team user, or a collaborator (role ``collaborator``)."""

    email: str
    name: str | None
    role: str
    mfa: bool
    since: datetime  # membership began; for a collaborator, their first grant in the team
    apps: tuple[str, ...] = ()  # a collaborator's apps in the team, by name (empty for team users)


# COLLABORATOR (store/words.py), imported above, is the roster's role for an account with a
# grant on a team app but no membership (SPEC "Words"); faces read it as queries.COLLABORATOR.


@dataclass(frozen=True)
class AppRow:
    """One app the actor may list, with the actor's own effective permissions on it."""

    name: str
    team: str | None
    owner: str | None  # personal owner's email
    locked: bool
    locked_at: datetime | None
    permissions: tuple[str, ...]
    app_id: int | None = None  # the row's key and creation time, for its public id (ids.py)
    created_at: datetime | None = None
    pending_requests: int = 0  # pending access requests on it the actor may decide


@dataclass(frozen=True)
class AccessRow:
    """Who has what on an app, and why."""

    email: str
    role: str | None  # team role, or None for a collaborator
    mfa: bool
    permissions: tuple[str, ...]
    sources: tuple[tuple[str, tuple[str, ...], str], ...]  # (source, permissions, detail)
    grant: tuple[str, ...] | None  # the explicit grant's set, if any (in force)
    #: the grant's end while it is in force (aware UTC); None: no grant, or one that never ends.
    #: An ended grant gives nothing: its row shows only what else the account has, or no row.
    expires_at: datetime | None = None


@dataclass(frozen=True)
class AccessView:
    """An app's access pane: the app, the actor's own rights on it, and every row."""

    app: AppFacts
    actor_permissions: tuple[str, ...]
    can_manage: bool
    rows: tuple[AccessRow, ...]
    app_id: int | None = None  # the app's key and creation time, for public ids (ids.py)
    app_created_at: datetime | None = None
    pending_requests: int = 0  # pending access requests on the app the actor may decide


@dataclass(frozen=True)
class WhyRow:
    """access:why: one permission, held or not, and the rule behind it."""

    permission: str
    held: bool
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class ResourceRow:
    """A dyno formation or add-on of a team app."""

    app: str
    kind: str
    name: str
    plan: str
    quantity: int
    monthly_cents: int
    resource_id: int | None = None  # with the app's creation time, its public id (ids.py)
    app_created_at: datetime | None = None


@dataclass(frozen=True)
class BillingRow:
    """Monthly cost of one app."""

    app: str
    monthly_cents: int


@dataclass(frozen=True)
class AuditRow:
    """One audit event, as stored (shown literally by the faces)."""

    id: int
    at: datetime
    actor_email: str
    actor_login: str | None
    action: str
    team: str | None
    app: str | None
    target: str | None
    before: dict | None
    after: dict | None
    outcome: str
    reason: str | None
    actor_key: str | None = None  # a served session's key fingerprint
    actor_peer: str | None = None  # and the client's address


@dataclass(frozen=True)
class KeyRow:
    """One SSH public key of an account."""

    id: int
    email: str
    fingerprint: str
    key_type: str
    public_key: str
    comment: str | None
    created_at: datetime
    created_by: str
    #: why the key can't log in now (its creator lost authority over the account), or None
    suspended: str | None = None


# -- helpers ---------------------------------------------------------------------------------


def _team(session: Session, name: str) -> Team:
    team = session.scalars(select(Team).where(Team.name == name)).first()
    if team is None:
        raise NotFound(f"Team {name} not found: run 'teamaccess teams' to see your teams.")
    return team


def _me(session: Session, email: str) -> Account | None:
    return session.scalars(select(Account).where(Account.email == email)).first()


def in_force(now: datetime):  # type: ignore[no-untyped-def]
    """SQL for "this grant gives something at ``now``" (policy.grant_in_force), for the reads
    and writes that pick rows (a collaborator's teams and apps) before the policy sees them."""
    return Grant.expires_at.is_(None) | (Grant.expires_at > now)


def _relation(session: Session, team: Team, actor_account: Account | None,
              now: datetime | None = None) -> tuple[Relation, Membership | None]:
    if actor_account is None:
        return Relation.OUTSIDER, None
    membership = session.scalars(
        select(Membership).where(Membership.team_id == team.id, Membership.account_id == actor_account.id)
    ).first()
    if membership is not None:
        return Relation(membership.role), membership
    granted = session.scalar(
        select(func.count())
        .select_from(Grant)
        .join(App, App.id == Grant.app_id)
        .where(App.team_id == team.id, Grant.account_id == actor_account.id,
               in_force(now if now is not None else _utcnow()))
    )
    return relation(None, bool(granted)), None


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _require(session: Session, team: Team, actor: str, action: TeamAction,
             now: datetime | None = None):
    actor_account = _me(session, actor)
    rel, membership = _relation(session, team, actor_account, now)
    d = decide_team(action, team.name, rel)
    if not d.allowed:
        raise Refused(d.reason, rule=d.rule)
    return actor_account, rel, membership


def _perm_tuple(perms) -> tuple[str, ...]:
    return tuple(p for p in PERMISSIONS if p in perms)


def _as_utc(value: object) -> datetime | None:
    """A timestamp read as ``type_coerce(column, String)``, as the model's type would return it.

    SQLite hands back the stored text (UTC, no offset); other drivers hand back a datetime.
    """
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    assert isinstance(value, datetime)
    return value.replace(tzinfo=UTC) if value.utcoffset() is None else value.astimezone(UTC)


#: A grant's permission columns, in PERMISSIONS order, for reads that skip the ORM objects.
_GRANT_FLAGS = tuple(getattr(Grant, p.column) for p in PERMISSIONS)

_FLAG_SETS: dict[tuple[bool, bool, bool, bool], frozenset[str]] = {}


def _grant_perms(*held: bool) -> frozenset[str]:
    """The same set as ``Grant.permissions`` from the ``_GRANT_FLAGS`` columns' values, shared
    between rows (there are only 16)."""
    flags = tuple(bool(h) for h in held)
    found = _FLAG_SETS.get(flags)
    if found is None:
        found = _FLAG_SETS[flags] = frozenset(p for p, held in zip(PERMISSIONS, flags, strict=True) if held)
    return found


# -- teams -----------------------------------------------------------------------------------


def teams(db: Database, actor: str) -> list[TeamRow]:
    """The teams the actor belongs to (as a user or a collaborator), sorted by name."""
    now = db.now()
    with db.read() as session:
        actor_account = _me(session, actor)
        if actor_account is None:
            return []
        rows = {
            name: role
            for name, role in session.execute(
                select(Team.name, Membership.role)
                .join(Membership, Membership.team_id == Team.id)
                .where(Membership.account_id == actor_account.id)
            )
        }
        for (name,) in session.execute(
            select(Team.name)
            .join(App, App.team_id == Team.id)
            .join(Grant, Grant.app_id == App.id)
            .where(Grant.account_id == actor_account.id, in_force(now))
            .distinct()
        ):
            rows.setdefault(name, COLLABORATOR)
        return [TeamRow(n, rows[n]) for n in sorted(rows)]


def relation_to(db: Database, actor: str, team: str) -> Relation:
    """The actor's column in the SPEC's team table for ``team``."""
    now = db.now()
    with db.read() as session:
        return _relation(session, _team(session, team), _me(session, actor), now)[0]


def account(db: Database, email: str) -> Account | None:
    """The account with this email, if any."""
    with db.read() as session:
        return _me(session, email)


def account_by_login(db: Database, login: str) -> Account | None:
    """The account bound to an OS login, if any."""
    with db.read() as session:
        return session.scalars(select(Account).where(Account.os_login == login)).first()


def binding_lapsed(db: Database, account: Account) -> str | None:
    """Why ``account``'s login binding can't be used now (its authorizer lost authority over the
    account: policy.decide_delegated_use), or None when it can."""
    with db.read() as session:
        fresh = session.get(Account, account.id)
        if fresh is None:
            return None
        decision = delegated_use(session, fresh, fresh.os_login_by, "binding")
        return None if decision else decision.reason


def team_keys(db: Database, names: Iterable[str]) -> dict[str, tuple[int, datetime]]:
    """Each named team's integer id and creation time, from which its public id is made
    (store/ids.py). Nothing here is secret: a face asks after a read that showed the teams."""
    wanted = list(names)
    if not wanted:
        return {}
    with db.read() as session:
        return {name: (key, created) for name, key, created in session.execute(
            select(Team.name, Team.id, Team.created_at).where(Team.name.in_(wanted)))}


def grant_times(db: Database, actor: str, app: str) -> dict[str, datetime]:
    """When each explicit grant on ``app`` was made, by email, for whoever may see its access
    (as :func:`app_access`); the times ``access --json`` shows as ``created_at``."""
    now = db.now()
    with db.read() as session:
        app_row, facts, _team = _load_app(session, app)
        mine = _standing(session, app_row, actor, _me(session, actor), now)
        if is_stranger(facts, mine):
            raise NotFound(f"Couldn't find that app: {app}. Run 'teamaccess apps' to list yours.")
        d = decide_app(AppAction.VIEW, facts, mine)
        if not d.allowed:
            raise Refused(d.reason, rule=d.rule)
        return dict(session.execute(select(Account.email, Grant.created_at)
                                    .join(Grant, Grant.account_id == Account.id)
                                    .where(Grant.app_id == app_row.id)).all())


# -- roster ----------------------------------------------------------------------------------


def roster(
    db: Database,
    actor: str,
    team: str,
    *,
    role: str | None = None,
    text: str | None = None,
    no_mfa_only: bool = False,
    limit: int | None = None,
) -> list[MemberRow]:
    """The team's users and collaborators with role and MFA status, sorted by email.

    The seed counts collaborators (a grant on a team app, no membership) among the team's
    users: they are listed with role ``collaborator`` and the apps they hold. Filters run in
    SQL; ``limit`` returns only the first rows: a first screen that costs the same on a team
    of 100,000 as on one of 100 (load the rest afterwards, in the background). Three reads
    whatever the team's size: the team users, the collaborators' grants, merged by email.
    """
    wanted = validate.role(role, (*_TEAM_ROLES, COLLABORATOR)) if role else None
    like = None
    if text:
        like = "%" + text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    now = db.now()
    with db.read() as session:
        team_row = _team(session, team)
        _require(session, team_row, actor, TeamAction.LIST_MEMBERS, now)
        conn = session.connection()
        users: list[MemberRow] = []
        if wanted != COLLABORATOR:
            stmt = (
                select(Account.email, Account.name, Membership.role, Account.mfa_enabled,
                       Membership.created_at)
                .join(Membership, Membership.account_id == Account.id)
                .where(Membership.team_id == team_row.id)
                .order_by(Account.email)
            )
            if wanted:
                stmt = stmt.where(Membership.role == wanted)
            if no_mfa_only:
                stmt = stmt.where(Account.mfa_enabled.is_(False))
            if like is not None:
                stmt = stmt.where(
                    or_(
                        Account.email.like(like, escape="\\"),
                        func.lower(Account.name).like(like, escape="\\"),
                        Membership.role.like(like, escape="\\"),
                    )
                )
            if limit is not None:
                stmt = stmt.limit(limit)
            # Core execution: the ORM's row loading costs about a third more on 10,000 rows.
            users = [MemberRow(*row) for row in conn.execute(stmt).all()]
        collaborators: list[MemberRow] = []
        if wanted in (None, COLLABORATOR):
            # A full first page of team users ends at some email: no collaborator after it can
            # be on that page, and reading only up to it keeps the first page cheap at 10k.
            upto = users[-1].email if limit is not None and len(users) >= limit else None
            collaborators = _collaborators(conn, team_row, no_mfa_only, like, upto, now)
        if not collaborators:
            return users
        merged = sorted(users + collaborators, key=lambda row: row.email)
        return merged[:limit] if limit is not None else merged


_TEAM_ROLES = ROLES


def _collaborators(conn, team_row: Team, no_mfa_only: bool, like: str | None,
                   upto: str | None = None, now: datetime | None = None) -> list[MemberRow]:
    """The team's collaborators, each with the apps they hold, in one read of their grants."""
    member = select(Membership.id).where(
        Membership.team_id == team_row.id, Membership.account_id == Account.id
    )
    stmt = (
        select(Account.email, Account.name, Account.mfa_enabled, App.name, Grant.created_at)
        .join(Grant, Grant.account_id == Account.id)
        .join(App, App.id == Grant.app_id)
        .where(App.team_id == team_row.id, ~exists(member),
               in_force(now if now is not None else _utcnow()))
        .order_by(Account.email, App.name)
    )
    if upto is not None:
        stmt = stmt.where(Account.email <= upto)
    if no_mfa_only:
        stmt = stmt.where(Account.mfa_enabled.is_(False))
    if like is not None and like.strip("%") not in COLLABORATOR:
        stmt = stmt.where(
            or_(Account.email.like(like, escape="\\"), func.lower(Account.name).like(like, escape="\\"))
        )
    found: dict[str, tuple[str | None, bool, list[str], datetime]] = {}
    for email, name, mfa, app, granted_at in conn.execute(stmt).all():
        entry = found.get(email)
        if entry is None:
            found[email] = (name, bool(mfa), [app], granted_at)
        else:
            entry[2].append(app)
            if granted_at < entry[3]:
                found[email] = (entry[0], entry[1], entry[2], granted_at)
    return [MemberRow(email, name, COLLABORATOR, mfa, since, tuple(apps))
            for email, (name, mfa, apps, since) in found.items()]


# -- apps ------------------------------------------------------------------------------------


def apps(db: Database, actor: str, team: str | None = None) -> list[AppRow]:
    """The apps the actor may list, sorted by name, with the actor's own permissions.

    With ``team``: that team's apps (a collaborator sees only the apps granted to them).
    Without: the actor's personal apps, the apps of every team they belong to, and every app
    they hold a grant on.
    """
    now = db.now()
    with db.read() as session:
        actor_account = _me(session, actor)
        owner = aliased(Account)
        base = (
            select(App.id, App.name, App.team_id, App.locked, App.locked_at, Team.name,
                   owner.email, App.created_at)
            .outerjoin(Team, Team.id == App.team_id)
            .outerjoin(owner, owner.id == App.owner_account_id)
        )
        if team is not None:
            team_row = _team(session, team)
            _, rel, _m = _require(session, team_row, actor, TeamAction.LIST_APPS, now)
            stmt = base.where(App.team_id == team_row.id)
            if rel is Relation.COLLABORATOR:
                stmt = stmt.where(
                    App.id.in_(select(Grant.app_id).where(Grant.account_id == actor_account.id,
                                                          in_force(now)))
                )
        else:
            if actor_account is None:
                return []
            stmt = base.where(
                or_(
                    App.owner_account_id == actor_account.id,
                    App.team_id.in_(
                        select(Membership.team_id).where(Membership.account_id == actor_account.id)
                    ),
                    App.id.in_(select(Grant.app_id).where(Grant.account_id == actor_account.id,
                                                          in_force(now))),
                )
            )
        found = session.connection().execute(stmt.order_by(App.name)).all()
        return _with_pending_requests(session, actor_account,
                                      _app_rows(session, actor_account, actor, found, now), now)


def _app_rows(session: Session, actor_account: Account | None, actor: str, found,
              now: datetime | None = None) -> list[AppRow]:
    """AppRows for ``(id, name, team_id, locked, locked_at, team, owner, created_at)`` rows."""
    memberships: dict[int, tuple[str, datetime]] = {}
    grants: dict[int, tuple[frozenset[str], str, datetime | None]] = {}
    if actor_account is not None:
        conn = session.connection()
        memberships = {
            team_id: (role, since)
            for team_id, role, since in conn.execute(
                select(Membership.team_id, Membership.role, Membership.created_at)
                .where(Membership.account_id == actor_account.id)
            )
        }
        grants = {
            app_id: (_grant_perms(*flags), origin, read_utc(ends))
            for app_id, *flags, origin, ends in conn.execute(
                select(Grant.app_id, *_GRANT_FLAGS, Grant.origin, Grant.expires_at)
                .where(Grant.account_id == actor_account.id)
            )
        }
    # The actor's standing is the same on most apps of a team, so each distinct
    # (app state, standing) is decided once; the app's name only words the reasons,
    # which an AppRow does not carry.
    decided: dict[tuple, tuple[str, ...]] = {}
    rows = []
    for app_id, name, team_id, locked, locked_at, team_name, owner_email, created in found:
        membership = memberships.get(team_id) if team_id is not None else None
        grant_row = grants.get(app_id)
        key = (team_name, owner_email, locked, locked_at, membership, grant_row)
        perms = decided.get(key)
        if perms is None:
            eff = effective_permissions(
                AppFacts(name, team_name, owner_email, locked, locked_at),
                Standing(actor, membership[0] if membership else None, membership[1] if membership else None,
                         grant_row[0] if grant_row else None, grant_row[1] if grant_row else None,
                         grant_row[2] if grant_row else None, now),
            )
            perms = decided[key] = _perm_tuple(eff.permissions)
        rows.append(AppRow(name, team_name, owner_email, locked, locked_at, perms, app_id, created))
    return rows


def _load_app(session: Session, name: str) -> tuple[App, AppFacts, Team | None]:
    app = session.scalars(select(App).where(App.name == name)).first()
    if app is None:
        raise NotFound(f"Couldn't find that app: {name}. Run 'teamaccess apps' to list yours.")
    team = session.get(Team, app.team_id) if app.team_id is not None else None
    owner = session.get(Account, app.owner_account_id) if app.owner_account_id is not None else None
    facts = AppFacts(app.name, team.name if team else None, owner.email if owner else None,
                     app.locked, app.locked_at)
    return app, facts, team


def _standing(session: Session, app: App, email: str, acct: Account | None,
              now: datetime | None = None) -> Standing:
    """What the policy needs of ``email`` on ``app``, as of ``now`` (the database's clock)."""
    if acct is None:
        return Standing(email, as_of=now)
    membership = None
    if app.team_id is not None:
        membership = session.scalars(
            select(Membership).where(
                Membership.team_id == app.team_id, Membership.account_id == acct.id
            )
        ).first()
    grant_row = session.scalars(
        select(Grant).where(Grant.app_id == app.id, Grant.account_id == acct.id)
    ).first()
    return Standing(email, membership.role if membership else None, membership.created_at if membership else None,
                    grant_row.permissions if grant_row else None, grant_row.origin if grant_row else None,
                    read_utc(grant_row.expires_at) if grant_row else None, now)


def _sources(eff: Effective) -> tuple[tuple[str, tuple[str, ...], str], ...]:
    return tuple((p.source.value, _perm_tuple(p.permissions), p.detail) for p in eff.sources)


def app_access(db: Database, actor: str, app: str, *, limit: int | None = None) -> AccessView:
    """The access pane of one app: every account with any permission on it, and why.

    Sorted by email. Team admins, grant holders, and team users whose view comes from the
    team (all of them on an unlocked app; those who joined before the lock on a locked one).
    A collaborator, who may not see the team's users, gets only the admins and grant holders.
    ``limit`` returns only the first rows of that list, reading (and deciding) only about as
    many accounts, so a first page costs the same on a team of 100,000 as on one of 100.
    """
    now = db.now()
    with db.read() as session:
        app_row, facts, team = _load_app(session, app)
        actor_account = _me(session, actor)
        mine = _standing(session, app_row, actor, actor_account, now)
        if is_stranger(facts, mine):
            raise NotFound(f"Couldn't find that app: {app}. Run 'teamaccess apps' to list yours.")
        d = decide_app(AppAction.VIEW, facts, mine)
        if not d.allowed:
            raise Refused(d.reason, rule=d.rule)
        my_eff = effective_permissions(facts, mine)
        visible = users_visible_to(mine.role)
        # Plain columns, not ORM objects: this pane lists every user of a 10,000-user team.
        conn = session.connection()
        # With a limit, only the first accounts (by email) that might be listed are read: a few
        # more than the limit, as some of them may end up with nothing.
        first: list[str] | None = None
        if limit is not None:
            first = _access_candidates(conn, app_row, team, visible, limit * 2 + 8)
        grants_stmt = (
            select(Account.email, Account.mfa_enabled, *_GRANT_FLAGS, Grant.origin, Grant.expires_at)
            .join(Account, Account.id == Grant.account_id)
            .where(Grant.app_id == app_row.id)
        )
        if first is not None:
            grants_stmt = grants_stmt.where(Account.email.in_(first))
        # A grant that has ended (policy.grant_in_force) is read as no grant: its row shows
        # only what else the account has, or nothing.
        grants: dict[str, tuple[frozenset[str] | None, str | None, bool, datetime | None]] = {}
        for email, mfa, *flags, origin, ends in conn.execute(grants_stmt).all():
            ends = read_utc(ends)
            if grant_in_force(ends, now):
                grants[email] = (_grant_perms(*flags), origin, mfa, ends)
            else:
                grants[email] = (None, None, mfa, None)
        # email -> (role, raw start of the membership, mfa, began before the lock)
        members: dict[str, tuple[str, object, bool, bool]] = {}
        if team is not None:
            if app_row.locked:
                # Whether each membership began before the lock is all that matters; SQL says so
                # for every row, and only the few rows that stand for a distinct standing get
                # their timestamp parsed (parsing 10,000 of them costs more than the rest).
                since_col = type_coerce(Membership.created_at, String)
                kept_col = Membership.created_at < app_row.locked_at
            else:  # on an unlocked app, when a membership began doesn't matter
                since_col, kept_col = literal(None), literal(False)
            stmt = (
                select(Account.email, Membership.role, since_col, Account.mfa_enabled, kept_col)
                .join(Membership, Membership.account_id == Account.id)
                .where(Membership.team_id == team.id)
            )
            if app_row.locked:
                # Only admins and those who joined before the lock get anything from the team.
                stmt = stmt.where(
                    or_(Membership.role == Role.ADMIN, Membership.created_at < app_row.locked_at,
                        Membership.account_id.in_(
                            select(Grant.account_id).where(Grant.app_id == app_row.id)
                        ))
                )
            if not visible.everyone:
                stmt = stmt.where(_visible_members(visible, app_row))
            if first is not None:
                # By account id within the team's (team_id, account_id) index: filtering the
                # emails alone let SQLite walk every membership of the team (tests/bench/RESULTS.md).
                stmt = stmt.where(Membership.account_id.in_(
                    select(Account.id).where(Account.email.in_(first))))
            members = {e: (r, c, mfa, bool(k)) for e, r, c, mfa, k in conn.execute(stmt).all()}
        rows = []
        if facts.team is None and facts.owner:
            owner_acct = _me(session, facts.owner)
            eff = effective_permissions(facts, Standing(facts.owner))
            rows.append(AccessRow(facts.owner, None, bool(owner_acct and owner_acct.mfa_enabled),
                                  _perm_tuple(eff.permissions), _sources(eff), None))
        # On a team app, what the policy answers depends on the email only through the role,
        # whether the membership began before the lock, and the grant; thousands of users share
        # a handful of such standings, so each is decided once (the rows stay per-account).
        decided: dict[tuple, tuple[tuple[str, ...], tuple, tuple[str, ...] | None, datetime | None]] = {}
        for email in sorted(grants.keys() | members.keys()):
            perms, origin, gmfa, ends = grants.get(email, (None, None, None, None))
            role, raw_since, mmfa, kept = members.get(email, (None, None, None, False))
            key = None
            if facts.team is not None:
                key = (role, kept, perms, origin, ends)
                found = decided.get(key)
                if found is not None:
                    if found[0]:
                        rows.append(AccessRow(email, role, bool(mmfa if mmfa is not None else gmfa),
                                              *found))
                    continue
            eff = effective_permissions(
                facts, Standing(email, role, _as_utc(raw_since), perms, origin, ends, now)
            )
            found = (_perm_tuple(eff.permissions), _sources(eff),
                     _perm_tuple(perms) if perms is not None else None, ends)
            if key is not None:
                decided[key] = found
            if not eff.permissions:
                continue
            rows.append(AccessRow(email, role, bool(mmfa if mmfa is not None else gmfa), *found))
        can_manage = decide_app(AppAction.MANAGE_ACCESS, facts, mine).allowed
        if first is not None and limit is not None:
            if len(rows) < limit and len(first) == limit * 2 + 8:
                # Too many of the first accounts had nothing: read the whole list instead.
                whole = app_access(db, actor, app)
                return AccessView(whole.app, whole.actor_permissions, whole.can_manage,
                                  whole.rows[:limit], whole.app_id, whole.app_created_at,
                                  whole.pending_requests)
            rows = rows[:limit]
        pending = (_pending_counts(session, actor_account, [app_row.id], now).get(app_row.id, 0)
                   if can_manage and facts.team is not None else 0)
        return AccessView(facts, _perm_tuple(my_eff.permissions), can_manage, tuple(rows),
                          app_row.id, app_row.created_at, pending)


def _visible_members(visible: UsersVisible, app_row: App):  # type: ignore[no-untyped-def]
    """SQL for ``visible.shows(role, holds_grant)`` on a Membership row of ``a``'s team."""
    either = [Membership.role.in_(sorted(visible.roles))]
    if visible.grant_holders:
        # A superset (ended grants too): the policy drops what an ended grant would have shown.
        either.append(Membership.account_id.in_(select(Grant.account_id).where(Grant.app_id == app_row.id)))
    return or_(*either)


def _access_candidates(conn, app_row: App, team: Team | None, visible: UsersVisible,
                       count: int) -> list[str]:
    """The first ``count`` emails, sorted, of a superset of the accounts :func:`app_access`
    lists: grant holders, and on a team app the team users who may get something from it."""
    parts = [select(Account.email.label("email"))
             .join(Grant, Grant.account_id == Account.id).where(Grant.app_id == app_row.id)]
    if team is not None:
        belongs = [Membership.account_id == Account.id, Membership.team_id == team.id]
        if not visible.everyone:
            # A superset is enough here: grant holders come from the first part already.
            belongs.append(Membership.role.in_(sorted(visible.roles)))
        elif app_row.locked:
            belongs.append(or_(Membership.role == Role.ADMIN, Membership.created_at < app_row.locked_at))
        # EXISTS rather than a join: the database can then walk the accounts in email order
        # and stop after ``count`` members, where a join reads every membership of the team
        # and sorts them (timings in tests/bench/RESULTS.md).
        parts.append(select(Account.email.label("email")).where(exists().where(*belongs)))
    # Each part brings only its own first emails, so the union sorts and dedupes 2 * count rows
    # rather than every user of the team (timings in tests/bench/RESULTS.md).
    firsts = [select(p.order_by("email").limit(count).subquery().c.email) for p in parts]
    both = union(*firsts).subquery()
    return list(conn.execute(select(both.c.email).order_by(both.c.email).limit(count)).scalars())


def may(db: Database, actor: str, app: str, action: AppAction) -> bool:
    """Would the store let ``actor`` do ``action`` on ``app``? For faces that ask before acting.

    Only a hint (the operation decides again, in its own transaction): a face uses it to skip
    a confirmation that would be followed by a refusal anyway, so the refusal is logged.
    """
    now = db.now()
    with db.read() as session:
        try:
            app_row, facts, _team_ = _load_app(session, app)
        except NotFound:
            return False
        mine = _standing(session, app_row, actor, _me(session, actor), now)
        return not is_stranger(facts, mine) and decide_app(action, facts, mine).allowed


def why(db: Database, actor: str, app: str, email: str) -> list[WhyRow]:
    """access:why: for each permission, whether ``email`` holds it on ``app`` and why (not)."""
    who = validate.email(email)
    now = db.now()
    with db.read() as session:
        app_row, facts, _team_ = _load_app(session, app)
        actor_account = _me(session, actor)
        mine = _standing(session, app_row, actor, actor_account, now)
        if is_stranger(facts, mine):
            raise NotFound(f"Couldn't find that app: {app}. Run 'teamaccess apps' to list yours.")
        standing = _standing(session, app_row, who, _me(session, who), now) if who != actor else mine
        if who != actor:
            d = decide_app(AppAction.VIEW, facts, mine)
            if not d.allowed:
                raise Refused(d.reason, rule=d.rule)
            if facts.team is not None and not users_visible_to(mine.role).shows(
                standing.role, standing.live_grant is not None
            ):
                # SPEC rule 4: a collaborator never sees the team's users (as in app_access).
                raise Refused(
                    f"As a collaborator on {facts.name} you may ask only about its admins and "
                    f"the holders of grants on it; run 'teamaccess access --app {facts.name}'."
                )
        eff = effective_permissions(facts, standing)
        out = []
        for perm in PERMISSIONS:
            given = eff.why(perm)
            if given:
                out.append(WhyRow(perm, True, tuple(p.detail for p in given)))
            else:
                out.append(WhyRow(perm, False, (explain_missing(facts, standing, perm),)))
        return out


def member_access(db: Database, actor: str, team: str, email: str) -> list[tuple[AppRow, tuple]]:
    """members:access: every app of ``team`` that ``email`` can reach, with each source.

    Admins see every app; others see only the apps they may view themselves (and anyone may
    ask about themselves).
    """
    who = validate.email(email)
    now = db.now()
    with db.read() as session:
        team_row = _team(session, team)
        actor_account = _me(session, actor)
        rel, _m = _relation(session, team_row, actor_account, now)
        if who != actor:
            d = decide_team(TeamAction.LIST_MEMBERS, team_row.name, rel)
            if not d.allowed:
                raise Refused(d.reason, rule=d.rule)
        target = _me(session, who)
        if target is None:
            raise NotFound(f"No account {who}: check the email, or add them with members:add.")
        found = session.execute(select(App, Team.name).join(Team, Team.id == App.team_id)
                                .where(App.team_id == team_row.id).order_by(App.name)).all()
        tm = session.scalars(select(Membership).where(Membership.team_id == team_row.id,
                                                      Membership.account_id == target.id)).first()
        tg = {grant_row.app_id: grant_row for grant_row in session.scalars(select(Grant).join(App, App.id == Grant.app_id)
                                                                           .where(App.team_id == team_row.id,
                                                                                  Grant.account_id == target.id))}
        mg = {}
        if actor_account is not None and who != actor:
            mg = {grant_row.app_id: grant_row for grant_row in session.scalars(select(Grant).join(App, App.id == Grant.app_id)
                                                                               .where(App.team_id == team_row.id,
                                                                                      Grant.account_id == actor_account.id))}
        out = []
        for app_row, team_name in found:
            facts = AppFacts(app_row.name, team_name, None, app_row.locked, app_row.locked_at)
            if who != actor and rel is not Relation.ADMIN:
                grant_row = mg.get(app_row.id)
                mine = Standing(actor, _m.role if _m else None, _m.created_at if _m else None,
                                grant_row.permissions if grant_row else None, None,
                                read_utc(grant_row.expires_at) if grant_row else None, now)
                if Permission.VIEW not in effective_permissions(facts, mine).permissions:
                    continue
            grant_row = tg.get(app_row.id)
            eff = effective_permissions(facts, Standing(
                who, tm.role if tm else None, tm.created_at if tm else None,
                grant_row.permissions if grant_row else None, grant_row.origin if grant_row else None,
                read_utc(grant_row.expires_at) if grant_row else None, now))
            if eff.permissions:
                out.append((AppRow(app_row.name, team_name, None, app_row.locked, app_row.locked_at,
                                   _perm_tuple(eff.permissions), app_row.id, app_row.created_at),
                            _sources(eff)))
        return out


# -- resources, billing, audit ---------------------------------------------------------------


def resources(db: Database, actor: str, team: str) -> list[ResourceRow]:
    """The dynos and add-ons of the team's apps, sorted by app then kind and name."""
    now = db.now()
    with db.read() as session:
        team_row = _team(session, team)
        _require(session, team_row, actor, TeamAction.VIEW_RESOURCES, now)
        stmt = (
            select(App.name, Resource.kind, Resource.name, Resource.plan, Resource.quantity,
                   Resource.monthly_cents, Resource.id, App.created_at)
            .join(App, App.id == Resource.app_id)
            .where(App.team_id == team_row.id)
            .order_by(App.name, Resource.kind, Resource.name)
        )
        return [ResourceRow(*row) for row in session.execute(stmt)]


def billing(db: Database, actor: str, team: str) -> list[BillingRow]:
    """Monthly cost per team app (admins only), sorted by app; sum them for the total."""
    now = db.now()
    with db.read() as session:
        team_row = _team(session, team)
        _require(session, team_row, actor, TeamAction.BILLING, now)
        stmt = (
            select(App.name, func.coalesce(func.sum(Resource.monthly_cents * Resource.quantity), 0))
            .outerjoin(Resource, Resource.app_id == App.id)
            .where(App.team_id == team_row.id)
            .group_by(App.name)
            .order_by(App.name)
        )
        return [BillingRow(name, int(total)) for name, total in session.execute(stmt)]


def audit(
    db: Database,
    actor: str,
    team: str,
    *,
    who: str | None = None,
    app: str | None = None,
    action: str | None = None,
    limit: int | None = 500,
) -> list[AuditRow]:
    """The team's audit log, newest first (admins only), filtered by actor, app or action.

    An event is shown only to admins of the team it belongs to: the team's own events, and the
    account events (MFA, bindings, refused ``--as``) of accounts that were the team's users when
    the event happened. Adding an account to one's own team shows nothing of its past.
    """
    now = db.now()
    with db.read() as session:
        team_row = _team(session, team)
        _require(session, team_row, actor, TeamAction.READ_AUDIT, now)
        was_member = exists().where(
            Account.email == AuditEvent.target_email,
            Membership.account_id == Account.id,
            Membership.team_id == team_row.id,
            Membership.created_at <= AuditEvent.at,
        )
        stmt = select(AuditEvent).where(
            or_(
                AuditEvent.team_id == team_row.id,
                AuditEvent.team_id.is_(None)
                & AuditEvent.action.startswith("account.")
                & was_member,
            )
        )
        if who:
            stmt = stmt.where(AuditEvent.actor_email.contains(who.lower(), autoescape=True))
        if app:
            stmt = stmt.where(AuditEvent.app_name.contains(app, autoescape=True))
        if action:
            stmt = stmt.where(AuditEvent.action.startswith(action, autoescape=True))
        stmt = stmt.order_by(AuditEvent.id.desc())
        if limit:
            stmt = stmt.limit(limit)
        return [
            AuditRow(e.id, e.at, e.actor_email, e.actor_login, e.action, e.team_name, e.app_name,
                     e.target_email, json.loads(e.before) if e.before else None,
                     json.loads(e.after) if e.after else None, e.outcome, e.reason,
                     e.actor_key, e.actor_peer)
            for e in session.scalars(stmt)
        ]


def audit_count(db: Database) -> int:
    """How many audit events there are in all (for tests and the stress check)."""
    with db.read() as session:
        return session.scalar(select(func.count()).select_from(AuditEvent)) or 0


# -- SSH keys --------------------------------------------------------------------------------


def act_for_facts(session: Session, actor_account: Account | None, account: Account) -> dict[str, object]:
    """What decide_act_for needs: the teams ``me`` administers, ``account``'s teams and apps."""
    administers: set[str] = set()
    if actor_account is not None:
        administers = set(session.scalars(
            select(Team.name).join(Membership, Membership.team_id == Team.id)
            .where(Membership.account_id == actor_account.id, Membership.role == "admin")))
    teams = set(session.scalars(
        select(Team.name).join(Membership, Membership.team_id == Team.id)
        .where(Membership.account_id == account.id)))
    teams |= set(session.scalars(
        select(Team.name).join(App, App.team_id == Team.id).join(Grant, Grant.app_id == App.id)
        .where(Grant.account_id == account.id)))
    personal = tuple(session.scalars(
        select(App.name).where(App.owner_account_id == account.id).order_by(App.name)))
    return {"administers": frozenset(administers), "target_teams": frozenset(teams),
            "target_personal_apps": personal}


def delegated_use(session: Session, account: Account, authorizer: str | None, what: str):
    """policy.decide_delegated_use for ``account``'s key or binding authorized by ``authorizer``.

    Two queries at most: the account's teams (memberships and grant teams, as
    ops._account_teams computes them) and the teams the authorizer administers.
    """
    if authorizer is None or authorizer == account.email:
        return decide_delegated_use(account.email, authorizer, authorizer_admin_of=frozenset(),
                                    account_teams=frozenset(), what=what)
    teams = frozenset(session.scalars(union(
        select(Team.name).join(Membership, Membership.team_id == Team.id)
        .where(Membership.account_id == account.id),
        select(Team.name).join(App, App.team_id == Team.id).join(Grant, Grant.app_id == App.id)
        .where(Grant.account_id == account.id))))
    admin_of = frozenset(session.scalars(
        select(Team.name).join(Membership, Membership.team_id == Team.id)
        .join(Account, Account.id == Membership.account_id)
        .where(Account.email == authorizer, Membership.role == "admin")))
    return decide_delegated_use(account.email, authorizer, authorizer_admin_of=admin_of,
                                account_teams=teams, what=what)


def account_for_key(db: Database, fingerprint: str) -> str | None:
    """The email of the account an SSH key (by its ``SHA256:`` fingerprint) logs in as, if any.

    The SSH server asks this at every login. A key added by someone other than the account
    works only while its creator still has authority over the account
    (policy.decide_delegated_use): three queries at most, one for the account's own keys.
    """
    with db.read() as session:
        row = session.execute(
            select(Account, SshKey.created_by)
            .join(SshKey, SshKey.account_id == Account.id)
            .where(SshKey.fingerprint == fingerprint)
        ).first()
        if row is None:
            return None
        account, created_by = row
        if not delegated_use(session, account, created_by, "key"):
            return None
        return account.email


def _admin_of_a_team_of(session: Session, actor: str, account: str) -> bool:
    """Whether ``actor`` administers a team ``account`` is in (or holds a grant of)."""
    actor_account, target = _me(session, actor), _me(session, account)
    if actor_account is None or target is None:
        return False
    facts = act_for_facts(session, actor_account, target)
    return bool(facts["administers"] & facts["target_teams"])  # type: ignore[operator]


def key_decision_to_remove(session: Session, actor: str, key: SshKey, account: Account):
    """policy.decide_remove_key: the keys rule, or an admin of a team of the account removing
    a key whose creator lost authority over it."""
    act_for = key_decision(session, actor, account.email, "remove a key of")
    if act_for:
        return act_for
    facts = act_for_facts(session, _me(session, actor), account)
    return decide_remove_key(
        act_for, actor_admin_of=facts["administers"],  # type: ignore[arg-type]
        account_teams=facts["target_teams"],  # type: ignore[arg-type]
        key_suspended=not delegated_use(session, account, key.created_by, "key"))


def key_rule(db: Database, actor: str, account: str):
    """The policy's Decision: may ``actor`` add, list or remove ``account``'s SSH keys?

    For the dashboard to refuse "add a key" with the reason before any form opens; the store
    decides again when the key is added.
    """
    me_email, who = validate.email(actor), validate.email(account)
    with db.read() as session:
        return key_decision(session, me_email, who, "add a key to")


def key_decision(session: Session, actor: str, account: str, doing: str):
    """The one place the keys rule is asked (ops and these reads): may ``actor`` manage the
    SSH keys of ``account``? The rule itself is :func:`policy.decide_act_for`."""
    target = _me(session, account)
    if account == actor or target is None:
        # Someone unknown: refused like an account in none of your teams (which it is).
        return decide_act_for(actor, account, doing=doing, administers=frozenset({"-"}),
                              target_teams=frozenset())
    return decide_act_for(actor, account, doing=doing, **act_for_facts(session, _me(session, actor), target))


def keys(db: Database, actor: str, account: str | None = None) -> list[KeyRow]:
    """The SSH keys of the actor, or of ``account`` for whoever may manage its keys.

    Listing another account's keys follows the rule for adding them (``decide_act_for``).
    """
    me_email = validate.email(actor)
    who = validate.email(account) if account is not None else me_email
    with db.read() as session:
        allowed = True
        if who != me_email:
            decision = key_decision(session, me_email, who, "list the keys of")
            if not decision.allowed:
                # An admin of one of the account's teams sees its suspended keys (to remove
                # them), nothing else.
                if not _admin_of_a_team_of(session, me_email, who):
                    raise Refused(decision.reason, rule=decision.rule)
                allowed = False
        target = _me(session, who)
        if target is None:
            return []
        rows = session.execute(
            select(SshKey).where(SshKey.account_id == target.id).order_by(SshKey.created_at, SshKey.id)
        ).scalars()
        rows = list(rows)
        lapsed = {by: delegated_use(session, target, by, "key") for by in {k.created_by for k in rows}}
        return [
            KeyRow(k.id, who, k.fingerprint, k.key_type, k.public_key, k.comment,
                   _as_utc(k.created_at) or k.created_at, k.created_by,
                   None if lapsed[k.created_by] else lapsed[k.created_by].reason)
            for k in rows
            if allowed or not lapsed[k.created_by]
        ]


# -- access requests (SPEC "Temporary access and access requests") ---------------------------


@dataclass(frozen=True)
class RequestRow:
    """One access request, as the requester or a decider sees it."""

    id: int
    app: str
    team: str | None
    requester: str
    permissions: tuple[str, ...]  # what was asked for (view included)
    reason: str
    status: str  # pending / approved / denied / lapsed (lapsed decided at read time)
    created_at: datetime
    expires_in: timedelta | None  # how long the grant should last once approved (None: no end)
    decided_by: str | None
    decided_at: datetime | None
    decision_reason: str | None
    may_decide: bool  # the actor may approve or deny it now
    mine: bool  # the actor filed it


_REQUEST_FLAGS = tuple(getattr(AccessRequest, p.column) for p in PERMISSIONS)


def _decidable_apps(actor_account: Account, now: datetime):  # type: ignore[no-untyped-def]
    """SQL for the ids of the team apps where the actor may manage access (policy.decide_app's
    MANAGE_ACCESS: a team admin on every app of the team, a grant holding manage while in force).

    A superset is harmless: each row's ``may_decide`` is decided by the policy again.
    """
    admin_of = select(Membership.team_id).where(
        Membership.account_id == actor_account.id, Membership.role == Role.ADMIN)
    managed = select(Grant.app_id).where(
        Grant.account_id == actor_account.id, Grant.can_manage.is_(True),
        in_force(now))
    return select(App.id).where(App.team_id.is_not(None),
                                or_(App.team_id.in_(admin_of), App.id.in_(managed)))


def _pending_counts(session: Session, actor_account: Account | None, app_ids: Iterable[int] | None,
                    now: datetime) -> dict[int, int]:
    """Pending (not lapsed) requests per app, leaving out the actor's own: a decider's to-do."""
    stmt = (select(AccessRequest.app_id, func.count())
            .where(AccessRequest.status == RequestStatus.PENDING,
                   AccessRequest.created_at > now - REQUEST_LAPSE)
            .group_by(AccessRequest.app_id))
    if actor_account is not None:
        stmt = stmt.where(AccessRequest.requester_id != actor_account.id)
    if app_ids is not None:
        stmt = stmt.where(AccessRequest.app_id.in_(list(app_ids)))
    return {app_id: count for app_id, count in session.connection().execute(stmt)}


def pending_to_decide(db: Database, actor: str, team: str) -> int:
    """How many pending requests in ``team`` the actor may decide (the dashboard's Apps tab
    title): the same as counting ``access_requests(..., pending_only=True)`` rows with
    ``may_decide``, in one counting read instead of deciding every row."""
    with db.read() as session:
        actor_account = _me(session, actor)
        if actor_account is None:
            return 0
        now = db.now()
        team_apps = select(App.id).join(Team, Team.id == App.team_id).where(Team.name == team)
        return session.scalar(
            select(func.count()).select_from(AccessRequest)
            .where(AccessRequest.app_id.in_(team_apps),
                   AccessRequest.app_id.in_(_decidable_apps(actor_account, now)),
                   AccessRequest.requester_id != actor_account.id,
                   AccessRequest.status == RequestStatus.PENDING,
                   AccessRequest.created_at > now - REQUEST_LAPSE)) or 0


def _with_pending_requests(session: Session, actor_account: Account | None, rows: list[AppRow],
                           now: datetime) -> list[AppRow]:
    """``rows`` with each app's count of pending requests the actor may decide (0 elsewhere)."""
    if actor_account is None or not any(Permission.MANAGE in r.permissions and r.team for r in rows):
        return rows
    # Pending requests are few, whatever the team's size: count them all, keep the actor's apps.
    counts = _pending_counts(session, actor_account, None, now)
    if not counts:
        return rows
    return [replace(r, pending_requests=counts.get(r.app_id, 0))
            if r.team and Permission.MANAGE in r.permissions and r.app_id in counts else r
            for r in rows]


def access_requests(
    db: Database, actor: str, *, app: str | None = None, team: str | None = None,
    pending_only: bool = False,
) -> list[RequestRow]:
    """access:requests: the requests the actor may decide and their own, newest first.

    ``app`` or ``team`` narrows the list (an app the actor can't see is "Couldn't find that
    app", as everywhere); ``pending_only`` keeps the requests still waiting for a decision.
    """
    now = db.now()
    with db.read() as session:
        actor_account = _me(session, actor)
        where = []
        if app is not None:
            app_row, facts, _team_row = _load_app(session, validate.app_name(app))
            if is_stranger(facts, _standing(session, app_row, actor, actor_account, now)):
                raise NotFound(f"Couldn't find that app: {app_row.name}. Run 'teamaccess apps' to list yours.")
            where.append(AccessRequest.app_id == app_row.id)
        if team is not None:
            team_row = _team(session, validate.team_name(team))
            _require(session, team_row, actor, TeamAction.LIST_APPS)
            where.append(App.team_id == team_row.id)
        if actor_account is None:
            return []
        where.append(or_(AccessRequest.app_id.in_(_decidable_apps(actor_account, now)),
                         AccessRequest.requester_id == actor_account.id))
        if pending_only:
            where += [AccessRequest.status == RequestStatus.PENDING,
                      AccessRequest.created_at > now - REQUEST_LAPSE]
        requester, decider, owner = aliased(Account), aliased(Account), aliased(Account)
        stmt = (
            select(AccessRequest.id, AccessRequest.app_id, App.name, Team.name, requester.email,
                   *_REQUEST_FLAGS, AccessRequest.reason, AccessRequest.status,
                   AccessRequest.created_at, AccessRequest.expires_in_seconds, decider.email,
                   AccessRequest.decided_at, AccessRequest.decision_reason,
                   App.team_id, App.locked, App.locked_at, owner.email)
            .join(App, App.id == AccessRequest.app_id)
            .outerjoin(Team, Team.id == App.team_id)
            .outerjoin(owner, owner.id == App.owner_account_id)
            .join(requester, requester.id == AccessRequest.requester_id)
            .outerjoin(decider, decider.id == AccessRequest.decided_by_id)
            .where(*where)
            .order_by(AccessRequest.created_at.desc(), AccessRequest.id.desc())
        )
        conn = session.connection()
        found = conn.execute(stmt).all()
        # Whether the actor may decide is the policy's answer, once per app, from the actor's
        # memberships and grants read in two queries (however many apps the list spans).
        memberships = {team_id: (role, _as_utc(since)) for team_id, role, since in conn.execute(
            select(Membership.team_id, Membership.role, type_coerce(Membership.created_at, String))
            .where(Membership.account_id == actor_account.id))}
        grants = {app_id: (_grant_perms(*flags), origin, _as_utc(ends))
                  for app_id, *flags, origin, ends in conn.execute(
                      select(Grant.app_id, *_GRANT_FLAGS, Grant.origin,
                             type_coerce(Grant.expires_at, String))
                      .where(Grant.account_id == actor_account.id))}
        standing: dict[int, tuple[AppFacts, Standing]] = {}
        rows = []
        for (request_id, app_id, app_name, team_name, requester_email, *flags, reason, stored,
             created, seconds, decided_by, decided_at, decision_reason, team_id, locked,
             locked_at, owner_email) in found:
            created_at = _as_utc(created)
            status = request_status(stored, created_at, now)
            mine = requester_email == actor
            may_decide = False
            if status is RequestStatus.PENDING and not mine:
                if app_id not in standing:
                    role, since = memberships.get(team_id, (None, None))
                    perms, origin, ends = grants.get(app_id, (None, None, None))
                    standing[app_id] = (
                        AppFacts(app_name, team_name, owner_email, bool(locked), _as_utc(locked_at)),
                        Standing(actor, role, since, perms, origin, ends, now))
                facts, mine_standing = standing[app_id]
                may_decide = decide_request_decision(
                    RequestDecision.APPROVE, request_id, facts, mine_standing,
                    requester=requester_email, status=stored, created_at=created_at, now=now,
                ).allowed
            rows.append(RequestRow(
                request_id, app_name, team_name, requester_email,
                _perm_tuple(_grant_perms(*flags)), reason, status.value, created_at,
                timedelta(seconds=seconds) if seconds else None, decided_by,
                _as_utc(decided_at), decision_reason, may_decide, mine))
        return rows


#: how many of the soonest grant ends (of every team) next_deadline reads before asking directly
_DEADLINE_SCAN = 500


def next_deadline(db: Database, team: str, after: datetime | None = None) -> datetime | None:
    """The next moment time alone changes what ``team``'s dashboards show: a grant on one of
    its apps ending, or a pending request on one of them lapsing (None: nothing is due).

    Nothing is written at such a moment (expiry and lapse are decided at read time), so no
    change is announced; a dashboard reloads itself then, as if one had been. ``after``: the
    moment the caller's other reads were decided at (default now), so a deadline passing between
    those reads and this one is still returned, and acted on at once.
    """
    with db.read() as session:
        now = after if after is not None else db.now()
        team_id = session.scalar(select(Team.id).where(Team.name == team))
        team_apps = select(App.id).where(App.team_id == team_id)
        # The ends still to come, soonest first, along ix_grant_expires_at: few grants have one,
        # so this stops at once, where a team-first plan would read every grant of the team.
        soonest = session.execute(
            select(Grant.expires_at, App.team_id).join(App, App.id == Grant.app_id)
            .where(Grant.expires_at > now).order_by(Grant.expires_at).limit(_DEADLINE_SCAN)
        ).all()
        grant_end = next((ends for ends, app_team in soonest if app_team == team_id), None)
        if grant_end is None and len(soonest) == _DEADLINE_SCAN:
            grant_end = session.scalar(  # very many temporary grants elsewhere: ask directly
                select(func.min(Grant.expires_at))
                .where(Grant.app_id.in_(team_apps), Grant.expires_at > now))
        oldest_waiting = session.scalar(
            select(func.min(AccessRequest.created_at))
            .where(AccessRequest.app_id.in_(team_apps),
                   AccessRequest.status == RequestStatus.PENDING,
                   AccessRequest.created_at > now - REQUEST_LAPSE))
    due = [read_utc(grant_end)] if grant_end is not None else []
    if oldest_waiting is not None:
        due.append(read_utc(oldest_waiting) + REQUEST_LAPSE)
    return min(due, default=None)
