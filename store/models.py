"""SQLModel tables: accounts, their SSH keys, teams, memberships, apps, grants, resources and the audit log."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import CheckConstraint, Column, Index, String, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from .words import PERMISSIONS, REQUEST_STATUSES, ROLES, Permission

#: 2 added SSH keys (ssh_key) and the audit columns actor_key / actor_peer; 3 added
#: account.os_login_by; 4 added grant.expires_at and access_request. db.py upgrades older files.
SCHEMA_VERSION = 4


def utcnow() -> datetime:
    """Now, as an aware UTC datetime (every timestamp in the store is UTC)."""
    return datetime.now(UTC)


def read_utc(moment: datetime | None) -> datetime | None:
    """A stored time as aware UTC (the column type returns it so; this also takes a naive UTC
    one, as a raw SQLite read gives)."""
    if moment is None:
        return None
    return moment.replace(tzinfo=UTC) if moment.utcoffset() is None else moment.astimezone(UTC)


class Meta(SQLModel, table=True):
    """Key/value facts about the database itself, such as the schema version."""

    key: str = Field(primary_key=True, max_length=64)
    value: str = Field(max_length=255)


class Account(SQLModel, table=True):
    """A person, known by a lower-cased unique email."""

    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(sa_column=Column(String(254), unique=True, nullable=False))
    name: str | None = Field(default=None, max_length=120)
    mfa_enabled: bool = Field(default=False)
    os_login: str | None = Field(default=None, sa_column=Column(String(64), unique=True))
    #: who authorized the os_login binding (None: the database's owner); it lapses when they
    #: no longer administer all of this account's teams (policy.decide_delegated_use)
    os_login_by: str | None = Field(default=None, sa_column=Column(String(254)))
    created_at: datetime = Field(default_factory=utcnow)


class SshKey(SQLModel, table=True):
    """An SSH public key; whoever holds its private half acts as ``account_id`` over SSH."""

    __tablename__ = "ssh_key"
    __table_args__ = (Index("ix_ssh_key_account", "account_id"),)

    id: int | None = Field(default=None, primary_key=True)
    account_id: int = Field(foreign_key="account.id", ondelete="CASCADE")
    #: "SHA256:" + unpadded base64 of sha256(key blob), as ``ssh-keygen -lf`` prints it
    fingerprint: str = Field(sa_column=Column(String(64), unique=True, nullable=False))
    key_type: str = Field(max_length=64)  # e.g. ssh-ed25519
    public_key: str = Field(sa_column=Column(Text, nullable=False))  # "TYPE BASE64"
    comment: str | None = Field(default=None, max_length=255)
    created_at: datetime = Field(default_factory=utcnow)
    created_by: str = Field(max_length=254)  # the email of whoever added it


class Team(SQLModel, table=True):
    """An Enterprise Team, known by a unique name."""

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(sa_column=Column(String(30), unique=True, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)


class Membership(SQLModel, table=True):
    """An account's team role; ``created_at`` is when the membership began (matters for locks)."""

    __table_args__ = (
        UniqueConstraint("team_id", "account_id"),
        CheckConstraint(f"role IN ({', '.join(repr(r.value) for r in ROLES)})", name="ck_membership_role"),
        Index("ix_membership_account", "account_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    team_id: int = Field(foreign_key="team.id", ondelete="CASCADE")
    account_id: int = Field(foreign_key="account.id", ondelete="CASCADE")
    role: str = Field(max_length=16)
    created_at: datetime = Field(default_factory=utcnow)


class App(SQLModel, table=True):
    """An app, owned by a team (team app) or by one account (personal app)."""

    __table_args__ = (
        CheckConstraint(
            "(team_id IS NULL) <> (owner_account_id IS NULL)", name="ck_app_one_owner"
        ),
        CheckConstraint("locked = false OR team_id IS NOT NULL", name="ck_app_lock_team_only"),
        Index("ix_app_team", "team_id"),
        Index("ix_app_owner", "owner_account_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(sa_column=Column(String(30), unique=True, nullable=False))
    team_id: int | None = Field(default=None, foreign_key="team.id")
    owner_account_id: int | None = Field(default=None, foreign_key="account.id")
    locked: bool = Field(default=False)
    locked_at: datetime | None = Field(default=None)
    created_by_id: int | None = Field(default=None, foreign_key="account.id")
    created_at: datetime = Field(default_factory=utcnow)


class HoldsPermissions(SQLModel):
    """One boolean column per Permission (``can_view`` ...), named by ``Permission.column``.

    A grant and an access request hold a set of permissions the same way; the methods below
    read and write the columns through that name, so nothing else spells the mapping out.
    """

    can_view: bool = Field(default=True)
    can_deploy: bool = Field(default=False)
    can_operate: bool = Field(default=False)
    can_manage: bool = Field(default=False)

    @classmethod
    def holding(cls, perms: Iterable[str], **fields: Any) -> Any:
        """A new row holding ``perms`` (``view`` is always held) with the other ``fields``."""
        row = cls(**fields)
        row.set_permissions(frozenset(perms))
        return row

    @property
    def permissions(self) -> frozenset[Permission]:
        """The row's permissions as names."""
        return frozenset(p for p in PERMISSIONS if getattr(self, p.column))

    @classmethod
    def permission_columns(cls) -> tuple[Any, ...]:
        """The permission columns in PERMISSIONS order, to select (read back with permissions_of)."""
        return tuple(getattr(cls, p.column) for p in PERMISSIONS)

    @staticmethod
    def permissions_of(flags: Iterable[bool]) -> tuple[Permission, ...]:
        """The permissions held by one row of ``permission_columns()`` values, in order."""
        return tuple(p for p, held in zip(PERMISSIONS, flags, strict=True) if held)

    @staticmethod
    def columns_for(perms: Iterable[str]) -> dict[str, bool]:
        """The column values that hold ``perms`` (``view`` always), for a bulk insert or update."""
        have = set(perms)
        return {p.column: p is Permission.VIEW or p in have for p in PERMISSIONS}

    def set_permissions(self, perms: frozenset[str]) -> None:
        """Replace the row's set (``view`` is always held, whatever ``perms`` says)."""
        for p in PERMISSIONS:
            setattr(self, p.column, p is Permission.VIEW or p in perms)


class Grant(HoldsPermissions, table=True):
    """Explicit app permissions of one account on one app; ``view`` is always held.

    A grant with ``expires_at`` gives nothing from that moment on (decided at read time, with
    the caller's clock); the next write to its app, or ``access:prune``, removes it.
    """

    __table_args__ = (
        UniqueConstraint("app_id", "account_id"),
        CheckConstraint("can_view = true", name="ck_grant_has_view"),
        Index("ix_grant_account", "account_id"),
        # the next grant to end (queries.next_deadline) and the ended ones (pruning), in order
        Index("ix_grant_expires_at", "expires_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    app_id: int = Field(foreign_key="app.id", ondelete="CASCADE")
    account_id: int = Field(foreign_key="account.id", ondelete="CASCADE")
    #: why the grant exists: granted, creator, transfer, join, collaborator, import
    origin: str = Field(default="granted", max_length=16)
    granted_by_id: int | None = Field(default=None, foreign_key="account.id")
    created_at: datetime = Field(default_factory=utcnow)
    #: when the grant stops giving anything (None: never); SPEC "Temporary access"
    expires_at: datetime | None = Field(default=None)


class AccessRequest(HoldsPermissions, table=True):
    """Someone's request for permissions on one app, with a reason, decided once by another.

    ``status`` is pending until an approver or denier decides; a request still pending 7 days
    after ``created_at`` counts as lapsed (decided at read time, as expiry is).
    """

    __tablename__ = "access_request"
    __table_args__ = (
        CheckConstraint(
            f"status IN ({', '.join(repr(s.value) for s in REQUEST_STATUSES)})",
            name="ck_access_request_status",
        ),
        Index("ix_access_request_app_status", "app_id", "status"),
        Index("ix_access_request_requester", "requester_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    app_id: int = Field(foreign_key="app.id", ondelete="CASCADE")
    requester_id: int = Field(foreign_key="account.id", ondelete="CASCADE")
    reason: str = Field(sa_column=Column(Text, nullable=False))
    #: how long the asked-for grant should last once approved (None: no end asked for)
    expires_in_seconds: int | None = Field(default=None)
    status: str = Field(default="pending", max_length=10)
    created_at: datetime = Field(default_factory=utcnow)
    decided_at: datetime | None = Field(default=None)
    decided_by_id: int | None = Field(default=None, foreign_key="account.id", ondelete="SET NULL")
    #: the denier's reason (optional), or the approver's note
    decision_reason: str | None = Field(default=None, sa_column=Column(Text))


class Resource(SQLModel, table=True):
    """A dyno formation or an add-on of an app, with its monthly price in cents."""

    __table_args__ = (Index("ix_resource_app", "app_id"),)

    id: int | None = Field(default=None, primary_key=True)
    app_id: int = Field(foreign_key="app.id", ondelete="CASCADE")
    kind: str = Field(max_length=16)  # "dyno" or "addon"
    name: str = Field(max_length=64)  # e.g. "web", "heroku-postgresql"
    plan: str = Field(max_length=64)  # e.g. "standard-2x", "standard-0"
    quantity: int = Field(default=1)
    monthly_cents: int = Field(default=0)


class AuditEvent(SQLModel, table=True):
    """One append-only record of a change or a refused attempt at one."""

    __tablename__ = "audit_event"
    __table_args__ = (
        Index("ix_audit_team_at", "team_id", "id"),
        Index("ix_audit_target", "target_email"),
    )

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(default_factory=utcnow)
    actor_email: str = Field(max_length=254)
    actor_login: str | None = Field(default=None, max_length=64)
    #: a served (SSH) session's key fingerprint and peer address, where a local run has a login
    actor_key: str | None = Field(default=None, max_length=64)
    actor_peer: str | None = Field(default=None, max_length=64)
    action: str = Field(max_length=40)
    team_id: int | None = Field(default=None)  # no FK: the log outlives what it names
    team_name: str | None = Field(default=None, max_length=300)
    app_name: str | None = Field(default=None, max_length=300)
    target_email: str | None = Field(default=None, max_length=300)
    before: str | None = Field(default=None, sa_column=Column(Text))
    after: str | None = Field(default=None, sa_column=Column(Text))
    outcome: str = Field(max_length=8)  # ok / denied
    reason: str | None = Field(default=None, sa_column=Column(Text))
