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
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session

from . import safetext, validate
from .db import Database
from .errors import Invalid, LastAdminRefused, NotFound, Refused
from .models import Account, App, AuditEvent, Grant, Membership, Team, utcnow
from .ops import Actor, _cut, _dump, _Event, _run
from .policy import Relation, relation

#: Keep every ``IN (...)`` list well under SQLite's bound-parameter limit.
_CHUNK = 900

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
    """
    with db.read() as s:
        t = s.scalars(select(Team).where(Team.name == team)).first()
        if t is None:
            raise NotFound(f"Team {team} not found: run 'teamaccess teams' to see your teams.")
        _require_admin(s, t, actor, "export the team")
        members = [
            member_row(email, name, role, mfa, since)
            for email, name, role, mfa, since in s.execute(
                select(Account.email, Account.name, Membership.role, Account.mfa_enabled,
                       Membership.created_at)
                .join(Membership, Membership.account_id == Account.id)
                .where(Membership.team_id == t.id)
                .order_by(Account.email)
            )
        ]
        roles = {m["email"]: m["role"] for m in members}
        apps = [
            app_row(a.name, t.name, None, a.locked, a.locked_at)
            for a in s.scalars(select(App).where(App.team_id == t.id).order_by(App.name))
        ]
        access: dict[str, list[dict[str, Any]]] = {}
        for app_name, email, mfa, deploy, operate, manage in s.execute(
            select(App.name, Account.email, Account.mfa_enabled, Grant.can_deploy,
                   Grant.can_operate, Grant.can_manage)
            .join(Grant, Grant.app_id == App.id)
            .join(Account, Account.id == Grant.account_id)
            .where(App.team_id == t.id)
            .order_by(App.name, Account.email)
        ):
            perms = ["view", *(p for p, held in (("deploy", deploy), ("operate", operate),
                                                  ("manage", manage)) if held)]
            access.setdefault(app_name, []).append(
                access_row(app_name, email, mfa, roles.get(email), perms)
            )
        return {"team": t.name, "members": members, "apps": apps, "access": access}


def _require_admin(s: Session, t: Team, actor: str, verb: str) -> Account | None:
    me = s.scalars(select(Account).where(Account.email == actor)).first()
    role = None
    granted = False
    if me is not None:
        role = s.scalar(
            select(Membership.role).where(Membership.team_id == t.id, Membership.account_id == me.id)
        )
        granted = bool(role is None and s.scalar(
            select(func.count()).select_from(Grant).join(App, App.id == Grant.app_id)
            .where(App.team_id == t.id, Grant.account_id == me.id)
        ))
    rel = relation(role, granted)
    if rel is not Relation.ADMIN:
        who = {Relation.COLLABORATOR: f"a collaborator on {t.name}",
               Relation.OUTSIDER: f"not a user of {t.name}"}.get(rel, f"a {rel.value} of {t.name}")
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


@dataclass(frozen=True)
class _Doc:
    team: str
    members: tuple[_MemberIn, ...]
    apps: tuple[_AppIn, ...]
    access: tuple[_AccessIn, ...]


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

    members: list[_MemberIn] = []
    seen: dict[str, str] = {}
    for i, raw in enumerate(_list(doc.get("members"), "members")):
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
    for i, raw in enumerate(_list(doc.get("apps"), "apps")):
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
    raw_access = doc.get("access") or {}
    if not isinstance(raw_access, dict):
        raise Invalid('access: expected an object {"APP": [access rows]}.')
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


def _account_ids(s: Session, emails: Sequence[str]) -> dict[str, int]:
    ids: dict[str, int] = {}
    for chunk in _chunks(emails):
        ids.update(s.execute(select(Account.email, Account.id).where(Account.email.in_(chunk))).all())
    return ids


def import_team(db: Database, actor: Actor, doc: Any) -> ImportResult:
    """Import a document into a new team (the importer becomes its admin) or an existing one.

    Into an existing team it needs the team's admin, and merges: new users are added, roles
    set to the document's, apps created or their lock set, grants added or replaced. Every row
    is checked first; a fault or a refusal leaves the database as it was, bar one denied event.
    Each change is logged as its own audit event, as the single operation making it would log
    it (the new team as team.create, a new user as team_membership.create, ...), all in the
    same transaction. MFA is set only on accounts the import creates (only an account changes
    its own MFA).
    """
    team_hint = doc.get("team") if isinstance(doc, dict) and isinstance(doc.get("team"), str) else None

    # Check the rows before taking the write lock; a fault is still logged, as a denied import.
    try:
        parsed, fault = parse(doc), None
    except Invalid as err:
        parsed, fault = None, err

    def body(s: Session, ev: _Event) -> ImportResult:
        # On success the changes log themselves (one event each); a refusal is logged by
        # ops._run from ``ev``.
        if fault is not None:
            raise fault
        assert parsed is not None
        log = _Log(actor)
        result = _apply(s, actor, parsed, ev, log)
        log.write(s)
        ev.logged_itself = True
        return result

    return _run(db, actor, "team.update", body, team=team_hint)


class _Log:
    """Audit events gathered while an import runs, written in one bulk insert."""

    def __init__(self, actor: Actor) -> None:
        # What every event shares is cut once; tens of thousands of events repeat a few
        # dozen distinct names and before/after values, so those are cut and dumped once each.
        self.base = {"at": utcnow(), "actor_email": _cut(actor.email, 254) or "",
                     "actor_login": _cut(actor.login, 64)}
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
            reason: str | None = None) -> None:
        """One event, with the columns cut and dumped as ops._run does it."""
        self.rows.append({
            **self.base, "action": action, "team_id": team_id, "team_name": self._cut(team),
            "app_name": self._cut(app), "target_email": _cut(target),
            "before": self._dump(before), "after": self._dump(after), "outcome": outcome,
            "reason": reason,
        })

    def write(self, s: Session) -> None:
        """Insert the events in one executemany; nothing if the import changed nothing."""
        if not self.rows:
            return
        conn = s.connection()
        mark = {"qmark": "?", "format": "%s", "pyformat": "%s"}.get(conn.dialect.paramstyle)
        if mark is None:  # pragma: no cover - SQLite and psycopg take one of those
            conn.execute(insert(AuditEvent), self.rows)
            return
        # Tens of thousands of rows: SQLAlchemy's per-row parameter processing would cost more
        # than the insert itself. Only ``at`` needs converting, and it is the same on every row.
        table = AuditEvent.__table__
        columns = list(self.rows[0])
        convert = table.c.at.type.dialect_impl(conn.dialect).bind_processor(conn.dialect)
        at = convert(self.base["at"]) if convert else self.base["at"]
        rows = [tuple(at if c == "at" else r[c] for c in columns) for r in self.rows]
        quote = conn.dialect.identifier_preparer.quote
        conn.exec_driver_sql(
            f"INSERT INTO {quote(table.name)} ({', '.join(map(quote, columns))}) "
            f"VALUES ({', '.join([mark] * len(columns))})",
            rows,
        )


def _apply(s: Session, actor: Actor, d: _Doc, ev: _Event, log: _Log) -> ImportResult:
    """Make the document's changes (the caller's savepoint undoes them on a refusal)."""
    me_email = validate.email(actor.email)
    now = utcnow()
    # Without timestamps, the document's users count as having joined before its locks.
    joined_default, locked_default = now - timedelta(seconds=1), now
    conn = s.connection()

    t = s.scalars(select(Team).where(Team.name == d.team).with_for_update()).first()
    created = t is None
    if created:
        # A refusal rolls the new team back and its id may be given to the next team
        # created: the denied event names the team but must not carry that id.
        ev.action, ev.team_name = "team.create", d.team
        t = Team(name=d.team)
        s.add(t)
        s.flush()
        log.add("team.create", t.id, t.name, after={"team": t.name, "admin": me_email})
    else:
        ev.team_id, ev.team_name = t.id, t.name  # a refusal is logged on the team
        _require_admin(s, t, me_email, "import into the team")

    # Accounts: create the missing ones in bulk (with the document's MFA and names).
    info: dict[str, tuple[bool | None, str | None]] = {}
    for a in d.access:
        info.setdefault(a.email, (a.mfa, None))
    for m in d.members:
        info[m.email] = (m.mfa, m.name)
    info.setdefault(me_email, (None, None))
    emails = sorted(info)
    ids = _account_ids(s, emails)
    missing = [e for e in emails if e not in ids]
    if missing:
        conn.execute(insert(Account), [
            {"email": e, "name": info[e][1], "mfa_enabled": bool(info[e][0]), "created_at": now}
            for e in missing
        ])
        ids.update(_account_ids(s, missing))
    me_id = ids[me_email]

    # Memberships.
    current = {
        acc: (mid, role)
        for mid, acc, role in s.execute(
            select(Membership.id, Membership.account_id, Membership.role)
            .where(Membership.team_id == t.id)
        ).all()
    }
    new_members = []
    role_updates = []
    if created:
        mine = next((m for m in d.members if m.email == me_email), None)
        new_members.append({"team_id": t.id, "account_id": me_id, "role": "admin",
                            "created_at": (mine.since if mine else None) or joined_default})
    for m in d.members:
        acc = ids[m.email]
        if created and acc == me_id:
            continue  # a new team's importer stays its admin, whatever the row says
        if acc in current:
            mid, role = current[acc]
            if role != m.role:
                role_updates.append({"id": mid, "role": m.role})
                log.add("team_membership.update", t.id, t.name, target=m.email,
                        before={"role": role}, after={"role": m.role})
        else:
            new_members.append({"team_id": t.id, "account_id": acc, "role": m.role,
                                "created_at": m.since or joined_default})
            log.add("team_membership.create", t.id, t.name, target=m.email,
                    after={"role": m.role})
    if new_members:
        conn.execute(insert(Membership), new_members)
    if role_updates:
        s.execute(update(Membership), role_updates)
    roles = {acc: role for acc, (_mid, role) in current.items()}
    roles.update({r["account_id"]: r["role"] for r in new_members})
    by_id = {r["id"]: r["role"] for r in role_updates}
    roles.update({acc: by_id[mid] for acc, (mid, _r) in current.items() if mid in by_id})
    if not created and "admin" not in roles.values():
        raise LastAdminRefused(
            f"The import would leave {t.name} without an admin: keep at least one admin row.",
            rule="at-least-one-admin",
        )

    # Apps: names are unique across every team and account.
    existing: dict[str, tuple[int, int | None, bool]] = {}
    for chunk in _chunks([a.name for a in d.apps]):
        for aid, name, team_id, locked in s.execute(
            select(App.id, App.name, App.team_id, App.locked).where(App.name.in_(chunk))
        ).all():
            existing[name] = (aid, team_id, locked)
    new_apps, lock_updates = [], []
    for a in d.apps:
        if a.name in existing:
            aid, team_id, locked = existing[a.name]
            if team_id != t.id:
                raise Refused(
                    f"{a.where}.name: an app named {a.name} exists outside {t.name}: rename "
                    "the row or transfer that app into the team first."
                )
            if locked != a.locked:
                lock_updates.append({"id": aid, "locked": a.locked,
                                     "locked_at": (a.locked_at or locked_default) if a.locked else None})
                log.add("app.update", t.id, t.name, app=a.name, before={"locked": locked},
                        after={"locked": a.locked})
        else:
            new_apps.append({"name": a.name, "team_id": t.id, "owner_account_id": None,
                             "locked": a.locked,
                             "locked_at": (a.locked_at or locked_default) if a.locked else None,
                             "created_by_id": me_id, "created_at": now})
            log.add("app.create", t.id, t.name, app=a.name,
                    after={"team": t.name, "locked": a.locked})
    if new_apps:
        conn.execute(insert(App), new_apps)
    if lock_updates:
        s.execute(update(App), lock_updates)

    # Grants: admins already have everything, so their rows are skipped, not refused.
    app_ids = dict(s.execute(select(App.name, App.id).where(App.team_id == t.id)).all())
    grants = {
        (app_id, acc): (gid, frozenset(
            p for p, held in (("view", True), ("deploy", d), ("operate", o), ("manage", m))
            if held))
        for gid, app_id, acc, d, o, m in s.execute(
            select(Grant.id, Grant.app_id, Grant.account_id, Grant.can_deploy,
                   Grant.can_operate, Grant.can_manage)
            .join(App, App.id == Grant.app_id).where(App.team_id == t.id)
        ).all()
    }
    new_grants, grant_updates, skipped = [], [], 0
    for a in d.access:
        if a.app not in app_ids:
            raise Invalid(
                f"{a.where}: there is no app {a.app} in the document or in {t.name}: "
                "add it to \"apps\"."
            )
        acc = ids[a.email]
        if roles.get(acc) == "admin":
            skipped += 1
            continue
        key = (app_ids[a.app], acc)
        flags = {"can_view": True, "can_deploy": "deploy" in a.permissions,
                 "can_operate": "operate" in a.permissions,
                 "can_manage": "manage" in a.permissions}
        held = grants.get(key)
        if held is None:
            new_grants.append({"app_id": key[0], "account_id": acc, **flags, "origin": "import",
                               "granted_by_id": me_id, "created_at": now})
            log.add("collaborator.create", t.id, t.name, app=a.app, target=a.email,
                    after={"permissions": validate.sort_permissions(a.permissions)})
        elif held[1] != a.permissions:
            grant_updates.append({"id": held[0], **flags})
            log.add("collaborator.update", t.id, t.name, app=a.app, target=a.email,
                    before={"permissions": validate.sort_permissions(held[1])},
                    after={"permissions": validate.sort_permissions(a.permissions)})
    for chunk in _chunks(new_grants):
        conn.execute(insert(Grant), list(chunk))
    if grant_updates:
        s.execute(update(Grant), grant_updates)

    result = ImportResult(
        t.name, created,
        members_added=len(new_members),
        roles_changed=len(role_updates), apps_added=len(new_apps),
        locks_changed=len(lock_updates), grants_added=len(new_grants),
        grants_changed=len(grant_updates), admin_rows_skipped=skipped,
    )
    return result
