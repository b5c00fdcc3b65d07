"""A team's whole state as one JSON document: export it, import it (all or nothing, in bulk).

The document is built from the rows Heroku's CLI prints with ``--json``, so a team can be
carried over from ``heroku members --json``, ``heroku apps --json`` and ``heroku access --json``:

    {"team": NAME, "members": [member rows], "apps": [app rows], "access": {APP: [access rows]}}

A member row needs ``email`` and ``role`` and may carry ``two_factor_authentication``,
``created_at`` and ``user.name``; an app row needs ``name`` and may carry ``locked`` and
``locked_at``; an access row names the account by ``email`` or ``user.email`` and gives
``permissions`` as names or ``{"name": ...}`` objects. Other fields are ignored. The row
builders here are also what the command line prints, so the two never drift apart.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from . import safetext, validate
from .db import Database
from .errors import Invalid, LastAdminRefused, NotFound, Refused, StoreError
from .models import Account, App, AuditEvent, Grant, Membership, Team, read_utc, utcnow
from .ops import Actor, Changes, _Event, _run, bulk_insert
from .policy import Relation, decide_admins_left, grant_in_force, relation

#: Keep every ``IN (...)`` list well under SQLite's bound-parameter limit.
_CHUNK = 900

#: What one import may bring (README "Moving a team"): enough for a 10,000-user team in one
#: document, small enough that the write holds SQLite's lock for a few seconds at most, so
#: that others' writes wait, not fail. A larger team is imported in parts: imports merge.
MAX_MEMBERS = 10_000
MAX_APPS = 2_000
MAX_ACCESS_ROWS = 50_000
#: The document itself, read by the command line before it is parsed (JSON of the largest
#: allowed team, indented as 'teamaccess export' writes it, is about 30 MB).
MAX_DOCUMENT_BYTES = 64 * 1024 * 1024

# -- rows, as the command line prints them ----------------------------------------------------


def iso(value: datetime | None) -> str | None:
    """A UTC timestamp as Heroku's API writes it (SQLite hands datetimes back without a zone)."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def member_row(
    email: str, name: str | None, role: str, mfa: bool, since: datetime | None
) -> dict[str, Any]:
    """A team user with the Platform API's team-member field names."""
    return {
        "email": email,
        "role": role,
        "two_factor_authentication": mfa,
        "created_at": iso(since),
        "user": {"email": email, "name": name},
    }


def app_row(
    name: str, team: str | None, owner: str | None, locked: bool, locked_at: datetime | None
) -> dict[str, Any]:
    """An app with the Platform API's field names (``locked_at`` added: it decides who sees it)."""
    return {
        "name": name,
        "locked": locked,
        "locked_at": iso(locked_at),
        "team": {"name": team} if team else None,
        "owner": {"email": owner} if owner else None,
    }


def access_row(
    app: str, email: str, mfa: bool, role: str | None, permissions: Iterable[str]
) -> dict[str, Any]:
    """Who has what on an app, with the Platform API's collaborator field names."""
    return {
        "app": {"name": app},
        "email": email,
        "user": {"email": email, "two_factor_authentication": mfa},
        "role": role or "collaborator",
        "permissions": [{"name": p} for p in sorted(permissions)],
    }


# -- export ----------------------------------------------------------------------------------


def export_team(db: Database, actor: str, team: str) -> dict[str, Any]:
    """The team's users, apps and explicit grants as one document (team admins only).

    Only explicit grants are exported: what roles give follows from the members and the locks.
    Each access row carries its grant's ``expires_at`` (null: it never ends), so a round trip
    keeps temporary access temporary; a grant that has ended gives nothing and is left out.
    """
    now = db.now()
    with db.read() as session:
        team_row = session.scalars(select(Team).where(Team.name == team)).first()
        if team_row is None:
            raise NotFound(f"Team {team} not found: run 'teamaccess teams' to see your teams.")
        _require_admin(session, team_row, actor, "export the team")
        members = [
            member_row(email, name, role, mfa, since)
            for email, name, role, mfa, since in session.execute(
                select(Account.email, Account.name, Membership.role, Account.mfa_enabled,
                       Membership.created_at)
                .join(Membership, Membership.account_id == Account.id)
                .where(Membership.team_id == team_row.id)
                .order_by(Account.email)
            )
        ]
        roles = {membership["email"]: membership["role"] for membership in members}
        apps = [
            app_row(a.name, team_row.name, None, a.locked, a.locked_at)
            for a in session.scalars(select(App).where(App.team_id == team_row.id).order_by(App.name))
        ]
        access: dict[str, list[dict[str, Any]]] = {}
        for app_name, email, mfa, ends, *flags in session.execute(
            select(App.name, Account.email, Account.mfa_enabled, Grant.expires_at,
                   *Grant.permission_columns())
            .join(Grant, Grant.app_id == App.id)
            .join(Account, Account.id == Grant.account_id)
            .where(App.team_id == team_row.id)
            .order_by(App.name, Account.email)
        ):
            ends = read_utc(ends)
            if not grant_in_force(ends, now):
                continue
            perms = list(Grant.permissions_of(flags))
            access.setdefault(app_name, []).append(
                {**access_row(app_name, email, mfa, roles.get(email), perms), "expires_at": iso(ends)}
            )
        return {"team": team_row.name, "members": members, "apps": apps, "access": access}


def _require_admin(session: Session, team_row: Team, actor: str, verb: str) -> Account | None:
    me = session.scalars(select(Account).where(Account.email == actor)).first()
    role = None
    granted = False
    if me is not None:
        role = session.scalar(
            select(Membership.role).where(Membership.team_id == team_row.id, Membership.account_id == me.id)
        )
        granted = bool(role is None and session.scalar(
            select(func.count()).select_from(Grant).join(App, App.id == Grant.app_id)
            .where(App.team_id == team_row.id, Grant.account_id == me.id)
        ))
    rel = relation(role, granted)
    if rel is not Relation.ADMIN:
        who = {Relation.COLLABORATOR: f"a collaborator on {team_row.name}",
               Relation.OUTSIDER: f"not a user of {team_row.name}"}.get(rel, f"a {rel.value} of {team_row.name}")
        raise Refused(f"You are {who}; to {verb} you must be a team admin",
                      rule="team:import_export")
    return me


# -- import: parsing -------------------------------------------------------------------------


@dataclass(frozen=True)
class _MemberIn:
    email: str
    role: str
    mfa: bool | None
    name: str | None
    since: datetime | None


@dataclass(frozen=True)
class _AppIn:
    name: str
    locked: bool
    locked_at: datetime | None
    where: str


@dataclass(frozen=True)
class _AccessIn:
    app: str
    email: str
    permissions: frozenset[str]
    mfa: bool | None
    where: str
    expires_at: datetime | None = None  # the grant's end (None: it never ends)


@dataclass(frozen=True)
class _Doc:
    team: str
    members: tuple[_MemberIn, ...]
    apps: tuple[_AppIn, ...]
    access: tuple[_AccessIn, ...]
    #: the moment the import decides at (the database's clock): grants' ends are checked by it
    now: datetime | None = None


def _at(where: str, err: Invalid) -> Invalid:
    return Invalid(f"{where}: {err}")


def _field(row: Any, where: str) -> dict[str, Any]:
    if not isinstance(row, dict):
        raise Invalid(f"{where}: expected an object like {{\"email\": ..., \"role\": ...}}.")
    return row


def _bool(value: Any, where: str) -> bool | None:
    if value is None:
        return None
    if not isinstance(value, bool):
        raise Invalid(f"{where}: expected true or false, not {validate._shown(repr(value))}.")
    return value


def _time(value: Any, where: str) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value) if isinstance(value, str) else None
        if parsed is not None:  # in UTC; a time near year 1 or 9999 may not fit (OverflowError)
            parsed = parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        parsed = None
    if parsed is None:
        raise Invalid(f"{where}: expected an ISO 8601 time like 2024-06-03T14:30:00Z.")
    return parsed


#: What Rich/Textual would read as markup: a name must never restyle the screen showing it.
_MARKUP = re.compile(r"\[/?[A-Za-z#@$][^\]]*\]|\[/\]")

def _hidden(value: str) -> str | None:
    """The first unsafe character (store/safetext.py) that is not a plain control character.

    Format characters (bidi overrides and isolates, zero-width spaces and joiners, BOM) and
    blank look-alikes (U+3164) make a name show as something it is not; line separators break
    the one-line output; a lone surrogate can't be stored as UTF-8 at all.
    """
    found = safetext.has_unsafe(value)
    return None if found is None or unicodedata.category(found) == "Cc" else found


def _text(value: Any, where: str, limit: int) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > limit:
        raise Invalid(f"{where}: expected text of at most {limit} characters.")
    hidden = _hidden(value)
    if hidden is not None:
        raise Invalid(
            f"{where}: the name holds an invisible or direction-changing character "
            f"(U+{ord(hidden):04X}); remove it and import again."
        )
    if validate._CONTROL.search(value) or _MARKUP.search(value):
        raise Invalid(f"{where}: control characters and [markup] tags are not allowed in a name.")
    return value


def _list(value: Any, where: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise Invalid(f"{where}: expected a list of rows.")
    return value


def _too_many(where: str, count: int, limit: int, what: str) -> Invalid:
    return Invalid(
        f"{where}: {count:,} {what} is more than one import may bring (at most {limit:,}); "
        "split the document into several imports (they merge into the team)."
    )


def parse(doc: Any) -> _Doc:
    """Check every row of a document before anything is written; the first fault is named."""
    if not isinstance(doc, dict):
        raise Invalid(
            'The document must be a JSON object {"team", "members", "apps", "access"}: '
            "give the output of 'teamaccess export'."
        )
    try:
        team = validate.team_name(doc.get("team"))
    except Invalid as err:
        raise _at("team", err) from None

    # The limits are checked before any row is: a document far too large is refused at once.
    member_rows = _list(doc.get("members"), "members")
    if len(member_rows) > MAX_MEMBERS:
        raise _too_many("members", len(member_rows), MAX_MEMBERS, "team users")
    app_rows = _list(doc.get("apps"), "apps")
    if len(app_rows) > MAX_APPS:
        raise _too_many("apps", len(app_rows), MAX_APPS, "apps")
    raw_access = doc.get("access") or {}
    if not isinstance(raw_access, dict):
        raise Invalid('access: expected an object {"APP": [access rows]}.')
    if len(raw_access) > MAX_APPS:
        raise _too_many("access", len(raw_access), MAX_APPS, "apps")
    access_count = sum(len(rows) for rows in raw_access.values() if isinstance(rows, list))
    if access_count > MAX_ACCESS_ROWS:
        raise _too_many("access", access_count, MAX_ACCESS_ROWS, "access rows")

    members: list[_MemberIn] = []
    seen: dict[str, str] = {}
    for i, raw in enumerate(member_rows):
        where = f"members[{i}]"
        row = _field(raw, where)
        try:
            email = validate.email(row.get("email"))
        except Invalid as err:
            raise _at(f"{where}.email", err) from None
        if email in seen:
            raise Invalid(f"{where}.email: {email} is listed twice (also {seen[email]}).")
        seen[email] = where
        try:
            role = validate.role(row.get("role"))
        except Invalid as err:
            raise _at(f"{where}.role", err) from None
        user = row.get("user") if isinstance(row.get("user"), dict) else {}
        members.append(_MemberIn(
            email, role,
            _bool(row.get("two_factor_authentication"), f"{where}.two_factor_authentication"),
            _text(user.get("name", row.get("name")), f"{where}.user.name", 120),
            _time(row.get("created_at"), f"{where}.created_at"),
        ))

    apps: list[_AppIn] = []
    names: dict[str, str] = {}
    for i, raw in enumerate(app_rows):
        where = f"apps[{i}]"
        row = _field(raw, where)
        try:
            name = validate.app_name(row.get("name"))
        except Invalid as err:
            raise _at(f"{where}.name", err) from None
        if name in names:
            raise Invalid(f"{where}.name: {name} is listed twice (also {names[name]}).")
        names[name] = where
        locked = bool(_bool(row.get("locked"), f"{where}.locked"))
        apps.append(_AppIn(name, locked, _time(row.get("locked_at"), f"{where}.locked_at"), where))

    access: list[_AccessIn] = []
    for app_key, rows in raw_access.items():
        try:
            app = validate.app_name(app_key)
        except Invalid as err:
            raise _at(f"access.{validate._shown(str(app_key))}", err) from None
        emails: dict[str, str] = {}
        for i, raw in enumerate(_list(rows, f"access.{app}")):
            where = f"access.{app}[{i}]"
            row = _field(raw, where)
            user = row.get("user") if isinstance(row.get("user"), dict) else {}
            try:
                email = validate.email(row.get("email") or user.get("email"))
            except Invalid as err:
                raise _at(f"{where}.email", err) from None
            if email in emails:
                raise Invalid(f"{where}.email: {email} is listed twice (also {emails[email]}).")
            emails[email] = where
            perms_raw = row.get("permissions", ["view"])
            if not isinstance(perms_raw, list):
                raise Invalid(f"{where}.permissions: expected a list like [\"view\", \"deploy\"].")
            names_in = [p.get("name") if isinstance(p, dict) else p for p in perms_raw]
            try:
                perms = validate.permissions(names_in)
            except Invalid as err:
                raise _at(f"{where}.permissions", err) from None
            access.append(_AccessIn(
                app, email, perms,
                _bool(user.get("two_factor_authentication"), f"{where}.user.two_factor_authentication"),
                where,
                _time(row.get("expires_at"), f"{where}.expires_at"),
            ))
    return _Doc(team, tuple(members), tuple(apps), tuple(access))


# -- import: writing -------------------------------------------------------------------------


@dataclass(frozen=True)
class ImportResult:
    """What an import did, for the report."""

    team: str
    created_team: bool
    members_added: int = 0
    roles_changed: int = 0
    apps_added: int = 0
    locks_changed: int = 0
    grants_added: int = 0
    grants_changed: int = 0
    admin_rows_skipped: int = 0

    @property
    def changes(self) -> int:
        """How many changes the import made, one audit event each.

        A new team's first membership (its importer's) is logged as the team.create.
        """
        return (self.members_added + self.roles_changed + self.apps_added + self.locks_changed
                + self.grants_added + self.grants_changed)

    def counts(self) -> dict[str, int]:
        """The numbers, by name."""
        return {k: v for k, v in self.__dict__.items() if isinstance(v, int) and not isinstance(v, bool)}

    def summary(self) -> list[str]:
        """Lines saying what was added and changed."""
        where = f"the new team {self.team}" if self.created_team else self.team
        lines = [
            f"Added {_n(self.members_added, 'team user')}, {_n(self.apps_added, 'app')} and "
            f"{_n(self.grants_added, 'grant')} to {where}."
        ]
        if self.roles_changed or self.locks_changed or self.grants_changed:
            lines.append(
                f"Changed {_n(self.roles_changed, 'role')}, {_n(self.locks_changed, 'lock')} and "
                f"{_n(self.grants_changed, 'grant')}."
            )
        if self.admin_rows_skipped:
            lines.append(
                f"Skipped {_n(self.admin_rows_skipped, 'access row')} of team admins "
                "(they already have every permission)."
            )
        return lines


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _chunks(items: Sequence[Any]) -> Iterator[Sequence[Any]]:
    for k in range(0, len(items), _CHUNK):
        yield items[k:k + _CHUNK]


def _account_ids(session: Session, emails: Sequence[str]) -> dict[str, int]:
    ids: dict[str, int] = {}
    for chunk in _chunks(emails):
        ids.update(session.execute(select(Account.email, Account.id).where(Account.email.in_(chunk))).all())
    return ids


def import_team(db: Database, actor: Actor, doc: Any) -> ImportResult:
    """Import a document into a new team (the importer becomes its admin) or an existing one.

    Into an existing team it needs the team's admin, and merges: new users are added, roles
    set to the document's, apps created or their lock set, grants added or replaced. Every row
    is checked first; a fault or a refusal leaves the database as it was, bar one denied event.
    Each change is logged as its own audit event, as the single operation making it would log
    it (the new team as team.create, a new user as team_membership.create, ...), all in the
    same transaction. MFA and names are never imported: only an account changes its own MFA
    (SPEC rule 9), and a document's name for someone else's account is only a claim.

    The rows are parsed and checked, and every change decided, before the write lock is taken
    (on SQLite, from a snapshot that the write then checks is still current), so the write
    itself is one short bulk transaction; what one import may bring is bounded (``MAX_MEMBERS``,
    ``MAX_APPS``, ``MAX_ACCESS_ROWS``).
    """
    team_hint = doc.get("team") if isinstance(doc, dict) and isinstance(doc.get("team"), str) else None

    # Check the rows before taking the write lock; a fault is still logged, as a denied import.
    try:
        parsed, fault = replace(parse(doc), now=db.now()), None
    except Invalid as err:
        parsed, fault = None, err

    # SQLite has one write lock for the whole file: decide from a snapshot first, so that
    # others' writes wait only for the inserts. Every write logs an event in the append-only
    # log and SQLite's writers take turns, so an unchanged last event id means unchanged facts.
    # (PostgreSQL locks rows, not the database: there the decision is made inside the write.)
    early: tuple[int | None, _Plan] | None = None
    if parsed is not None and db.backend == "sqlite":
        with db.read() as session:
            early = (_log_mark(session), _decide(session, actor, parsed))

    def body(session: Session, event: _Event) -> ImportResult:
        if fault is not None:
            raise fault
        assert parsed is not None
        if early is not None and early[0] == _log_mark(session):
            plan = early[1]
        else:  # someone wrote since the snapshot (or PostgreSQL): decide again, on current facts
            plan = _decide(session, actor, parsed)
        event.action, event.team_id, event.team_name = plan.action, plan.team_id, plan.team
        if plan.refusal is not None:
            raise plan.refusal
        return plan.write(session, actor, event)

    return _run(db, actor, "team.update", body, team=team_hint)


def _log_mark(session: Session) -> int | None:
    return session.scalar(select(func.max(AuditEvent.id)))


@dataclass
class _Plan:
    """Every change an import will make, decided from the facts, ready to be written in bulk."""

    team: str | None
    team_id: int | None = None  # None: the import creates the team
    action: str = "team.update"  # of the event a refusal is logged as
    refusal: StoreError | None = None
    account_ids: dict[str, int] = field(default_factory=dict)
    new_accounts: list[str] = field(default_factory=list)
    new_members: list[tuple[str, str, datetime]] = field(default_factory=list)
    role_updates: list[dict[str, Any]] = field(default_factory=list)
    new_apps: list[dict[str, Any]] = field(default_factory=list)
    lock_updates: list[dict[str, Any]] = field(default_factory=list)
    app_ids: dict[str, int] = field(default_factory=dict)
    new_grants: list[tuple[str, str, dict[str, bool]]] = field(default_factory=list)
    grant_updates: list[dict[str, Any]] = field(default_factory=list)
    #: one event per change, in document order (a new team's id is filled in when written)
    changes: Changes | None = None
    admin_rows_skipped: int = 0
    now: datetime = field(default_factory=utcnow)

    def write(self, session: Session, actor: Actor, event: _Event) -> ImportResult:
        """Make the planned changes in bulk and log one event each (through ``ev``)."""
        me_email = validate.email(actor.email)
        created = self.team_id is None
        assert self.changes is not None
        event.changes = self.changes  # ops._run writes them, when all of this has succeeded
        if created:
            team_row = Team(name=self.team)
            session.add(team_row)
            session.flush()
            team_id = team_row.id
        else:
            team_id = self.team_id
        ids = dict(self.account_ids)
        if self.new_accounts:  # MFA and names stay unset: only each account sets its own
            bulk_insert(session, Account, [
                {"email": e, "name": None, "mfa_enabled": False, "created_at": self.now}
                for e in self.new_accounts])
            ids.update(_account_ids(session, self.new_accounts))
        bulk_insert(session, Membership, [
            {"team_id": team_id, "account_id": ids[e], "role": role, "created_at": since}
            for e, role, since in self.new_members])
        if self.role_updates:
            session.execute(update(Membership), self.role_updates)
        if self.new_apps:
            me_id = ids[me_email]
            bulk_insert(session, App, [{**a, "team_id": team_id, "created_by_id": me_id,
                                        "created_at": self.now} for a in self.new_apps])
        if self.lock_updates:
            session.execute(update(App), self.lock_updates)
        app_ids = self.app_ids
        if self.new_apps:
            app_ids = dict(session.execute(select(App.name, App.id).where(App.team_id == team_id)).all())
        if self.new_grants:
            me_id = ids[me_email]
            bulk_insert(session, Grant, [
                {"app_id": app_ids[app], "account_id": ids[email], **flags, "origin": "import",
                 "granted_by_id": me_id, "created_at": self.now}
                for app, email, flags in self.new_grants])
        if self.grant_updates:
            session.execute(update(Grant), self.grant_updates)
        if created:
            for row in self.changes.rows:
                row["team_id"] = team_id
        return ImportResult(
            self.team or "", created,
            members_added=len(self.new_members),
            roles_changed=len(self.role_updates), apps_added=len(self.new_apps),
            locks_changed=len(self.lock_updates), grants_added=len(self.new_grants),
            grants_changed=len(self.grant_updates), admin_rows_skipped=self.admin_rows_skipped,
        )


def _decide(session: Session, actor: Actor, d: _Doc) -> _Plan:
    """Plan the document's changes from the facts in ``s``; a refusal is planned too."""
    plan = _Plan(team=d.team) if d.now is None else _Plan(team=d.team, now=d.now)
    try:
        _plan(session, actor, d, plan)
    except StoreError as err:
        plan.refusal = err
    return plan


def _plan(session: Session, actor: Actor, d: _Doc, plan: _Plan) -> None:
    me_email = validate.email(actor.email)
    now = plan.now
    # Without timestamps, the document's users count as having joined before its locks.
    joined_default, locked_default = now - timedelta(seconds=1), now

    team_row = session.scalars(select(Team).where(Team.name == d.team).with_for_update()).first()
    created = team_row is None
    log = plan.changes = Changes(actor)
    if created:
        # A refusal rolls the new team back and its id may be given to the next team
        # created: the denied event names the team but must not carry that id.
        plan.action = "team.create"
        log.add("team.create", None, d.team, after={"team": d.team, "admin": me_email})
    else:
        plan.team_id, plan.team = team_row.id, team_row.name  # a refusal is logged on the team
        _require_admin(session, team_row, me_email, "import into the team")
    team_id, team_name = plan.team_id, plan.team
    shown: dict[frozenset[str], list[str]] = {}  # each distinct set of permissions, sorted once

    def listed(permissions: frozenset[str]) -> dict[str, list[str]]:
        if permissions not in shown:
            shown[permissions] = validate.sort_permissions(permissions)
        return {"permissions": shown[permissions]}

    # Accounts: the missing ones are created bare (MFA and names are never imported).
    emails = sorted({me_email, *(membership.email for membership in d.members), *(a.email for a in d.access)})
    ids = plan.account_ids = _account_ids(session, emails)
    plan.new_accounts = [e for e in emails if e not in ids]

    # Memberships.
    current = {
        acc: (mid, role)
        for mid, acc, role in session.execute(
            select(Membership.id, Membership.account_id, Membership.role)
            .where(Membership.team_id == team_row.id)
        ).all()
    } if team_row is not None else {}
    roles: dict[str, str] = {}  # by email, after the import
    if created:
        mine = next((membership for membership in d.members if membership.email == me_email), None)
        roles[me_email] = "admin"
        plan.new_members.append((me_email, "admin", (mine.since if mine else None) or joined_default))
    else:
        by_id = {acc: email for email, acc in ids.items()}
        roles.update({by_id[acc]: role for acc, (_mid, role) in current.items() if acc in by_id})
    for membership in d.members:
        if created and membership.email == me_email:
            continue  # a new team's importer stays its admin, whatever the row says
        acc = ids.get(membership.email)
        if acc is not None and acc in current:
            mid, role = current[acc]
            if role != membership.role:
                plan.role_updates.append({"id": mid, "role": membership.role})
                log.add("team_membership.update", team_id, team_name, target=membership.email,
                        before={"role": role}, after={"role": membership.role})
                roles[membership.email] = membership.role
        else:
            plan.new_members.append((membership.email, membership.role, membership.since or joined_default))
            log.add("team_membership.create", team_id, team_name, target=membership.email,
                    after={"role": membership.role})
            roles[membership.email] = membership.role
    if not created:
        demoted = {ids[membership.email] for membership in d.members if membership.email in ids and membership.role != "admin"}
        admins_left = sum(1 for acc, (_mid, role) in current.items()
                          if role == "admin" and acc not in demoted)
        admins_left += sum(1 for _e, role, _t in plan.new_members if role == "admin")
        decision = decide_admins_left(team_row.name, admins_left)
        if not decision.allowed:
            raise LastAdminRefused(
                f"The import would leave {team_row.name} without an admin: keep at least one admin row.",
                rule=decision.rule,
            )

    # Apps: names are unique across every team and account.
    existing: dict[str, tuple[int, int | None, bool]] = {}
    for chunk in _chunks([a.name for a in d.apps]):
        for aid, name, team_id, locked in session.execute(
            select(App.id, App.name, App.team_id, App.locked).where(App.name.in_(chunk))
        ).all():
            existing[name] = (aid, team_id, locked)
    for a in d.apps:
        if a.name in existing:
            aid, team_id, locked = existing[a.name]
            if team_row is None or team_id != team_row.id:
                raise Refused(
                    f"{a.where}.name: an app named {a.name} exists outside {team_name}: rename "
                    "the row or transfer that app into the team first."
                )
            if locked != a.locked:
                plan.lock_updates.append({"id": aid, "locked": a.locked, "locked_at":
                                          (a.locked_at or locked_default) if a.locked else None})
                log.add("app.update", team_id, team_name, app=a.name, before={"locked": locked},
                        after={"locked": a.locked})
        else:
            plan.new_apps.append({"name": a.name, "owner_account_id": None, "locked": a.locked,
                                  "locked_at": (a.locked_at or locked_default) if a.locked else None})
            log.add("app.create", team_id, team_name, app=a.name,
                    after={"team": team_name, "locked": a.locked})

    # Grants: admins already have everything, so their rows are skipped, not refused.
    app_ids = plan.app_ids = dict(
        session.execute(select(App.name, App.id).where(App.team_id == team_row.id)).all()
    ) if team_row is not None else {}
    grants = {
        (app_id, acc): (gid, frozenset(Grant.permissions_of(flags)))
        for gid, app_id, acc, *flags in session.execute(
            select(Grant.id, Grant.app_id, Grant.account_id, *Grant.permission_columns())
            .join(App, App.id == Grant.app_id).where(App.team_id == team_row.id)
        ).all()
    } if team_row is not None else {}
    ends_held = dict(session.execute(
        select(Grant.id, Grant.expires_at).join(App, App.id == Grant.app_id)
        .where(App.team_id == team_row.id, Grant.expires_at.is_not(None))).all()
    ) if team_row is not None else {}
    new_app_names = {a["name"] for a in plan.new_apps}
    for a in d.access:
        if a.app not in app_ids and a.app not in new_app_names:
            raise Invalid(
                f"{a.where}: there is no app {a.app} in the document or in {team_name}: "
                "add it to \"apps\"."
            )
        if roles.get(a.email) == "admin":
            plan.admin_rows_skipped += 1
            continue
        ends = _grant_end(a, now)
        flags = {**Grant.columns_for(a.permissions), "expires_at": ends}
        acc = ids.get(a.email)
        held = grants.get((app_ids[a.app], acc)) if a.app in app_ids and acc is not None else None
        if held is None:
            plan.new_grants.append((a.app, a.email, flags))
            log.add("collaborator.create", team_id, team_name, app=a.app, target=a.email,
                    after=_with_end(listed(a.permissions), ends))
        else:
            held_ends = read_utc(ends_held.get(held[0]))
            if held[1] != a.permissions or held_ends != ends:
                plan.grant_updates.append({"id": held[0], **flags})
                log.add("collaborator.update", team_id, team_name, app=a.app, target=a.email,
                        before=_with_end(listed(held[1]), held_ends),
                        after=_with_end(listed(a.permissions), ends))


def _grant_end(row: _AccessIn, now: datetime) -> datetime | None:
    """An imported grant's end, checked as ``--expires-in`` is: later than now (a past end
    would import access that gives nothing; refused, so nothing is written), at most 90 days
    away. None: the row has no end (``expires_at`` null or absent), a grant that never ends.
    """
    ends = row.expires_at
    if ends is None:
        return None
    if not grant_in_force(ends, now):
        raise Invalid(
            f"{row.where}.expires_at: {iso(ends)} has passed: the grant would give nothing; "
            "drop the row or give a later time."
        )
    if ends - now > validate.MAX_EXPIRES_IN:
        raise Invalid(f"{row.where}.expires_at: {iso(ends)} is more than 90 days away: the "
                      "longest a grant may last is 90d.")
    return ends


def _with_end(listed: dict[str, Any], ends: datetime | None) -> dict[str, Any]:
    """An audit event's permissions, with the grant's end when it has one (as ops logs it)."""
    return listed if ends is None else {**listed, "expires_at": ends.isoformat()}
