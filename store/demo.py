"""The demo team ``acme-widgets`` and a generator of large synthetic teams.

The demo is fixed (same rows, same timestamps every time) so that snapshots and screenshots
are stable. It shows every feature: all four roles, users without MFA, locked apps, a user who
joined after a lock, collaborators with mixed permissions, a personal app, resources, prices.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from . import ops
from .db import Database
from .errors import Refused
from .models import Account, App, AuditEvent, Grant, Membership, Resource, Team
from .policy import creator_grant

DEMO_TEAM = "acme-widgets"
DEMO_ADMIN = "ada@acme.com"

_T0 = datetime(2024, 1, 8, 9, 0, 0, tzinfo=UTC)
_LOCKED_AT = datetime(2024, 6, 3, 14, 30, 0, tzinfo=UTC)

# email, name, role (None = collaborator only), MFA, joined (days after _T0)
DEMO_USERS: tuple[tuple[str, str, str | None, bool, int], ...] = (
    ("ada@acme.com", "Ada Lovelace", "admin", True, 0),
    ("grace@acme.com", "Grace Hopper", "admin", True, 2),
    ("linus@acme.com", "Linus Torvalds", "admin", False, 5),
    ("joe@acme.com", "Joe Smith", "member", True, 10),
    ("alan@acme.com", "Alan Turing", "member", True, 12),
    ("barbara@acme.com", "Barbara Liskov", "member", False, 15),
    ("dennis@acme.com", "Dennis Ritchie", "member", True, 20),
    ("ken@acme.com", "Ken Thompson", "member", True, 21),
    ("margaret@acme.com", "Margaret Hamilton", "member", True, 30),
    ("edsger@acme.com", "Edsger Dijkstra", "member", False, 40),
    ("donald@acme.com", "Donald Knuth", "member", True, 45),
    ("katherine@acme.com", "Katherine Johnson", "member", True, 60),
    ("john@acme.com", "John McCarthy", "member", False, 200),  # joined after the lock
    ("tim@acme.com", "Tim Berners-Lee", "viewer", True, 25),
    ("vint@acme.com", "Vint Cerf", "viewer", True, 33),
    ("radia@acme.com", "Radia Perlman", "viewer", False, 50),
    ("frances@acme.com", "Frances Allen", "viewer", True, 70),
    ("guido@acme.com", "Guido van Rossum", "viewer", True, 210),  # joined after the lock
    ("hedy@acme.com", "Hedy Lamarr", "viewer", False, 90),
    ("sam@freelance.dev", "Sam Contractor", None, False, 100),
    ("li@partner.co", "Li Wei", None, True, 110),
    ("audit@ledger-firm.com", "External Auditor", None, True, 120),
    ("ops@oncall-agency.io", "On-call Agency", None, False, 130),
    ("priya@acme.com", "Priya Patel", "member", True, 150),
    ("yukihiro@acme.com", "Yukihiro Matsumoto", "viewer", True, 160),
)

# name, locked, creator (gets an all-four grant unless admin)
DEMO_APPS: tuple[tuple[str, bool, str], ...] = (
    ("admin-panel", True, "grace@acme.com"),
    ("api-prod", True, "dennis@acme.com"),
    ("api-staging", False, "dennis@acme.com"),
    ("billing-service", True, "ada@acme.com"),
    ("data-pipeline", False, "margaret@acme.com"),
    ("docs-site", False, "donald@acme.com"),
    ("marketing-site", False, "katherine@acme.com"),
    ("ml-models", False, "alan@acme.com"),
    ("mobile-backend", False, "ken@acme.com"),
    ("test", False, "joe@acme.com"),
    ("website-prod", True, "joe@acme.com"),
    ("website-staging", False, "joe@acme.com"),
)

# (email, app, permissions) beyond the creators' grants
DEMO_GRANTS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("sam@freelance.dev", "website-staging", ("view", "deploy")),
    ("sam@freelance.dev", "marketing-site", ("view", "deploy", "operate")),
    ("li@partner.co", "api-staging", ("view",)),
    ("audit@ledger-firm.com", "billing-service", ("view",)),
    ("ops@oncall-agency.io", "api-prod", ("view", "operate")),
    ("ops@oncall-agency.io", "website-prod", ("view", "operate")),
    ("barbara@acme.com", "api-prod", ("view", "deploy")),
    ("john@acme.com", "website-prod", ("view", "deploy")),
    ("tim@acme.com", "docs-site", ("view", "deploy", "manage")),
    ("edsger@acme.com", "data-pipeline", ("view", "operate")),
)

_PLANS = {
    "web": ("standard-2x", 5000),
    "worker": ("standard-1x", 2500),
    "heroku-postgresql": ("standard-0", 5000),
    "heroku-redis": ("premium-0", 1500),
    "papertrail": ("choklad", 0),
}


#: The OS login and reason every demo event carries, so that no one takes them for real events.
DEMO_LOGIN = "demo"
DEMO_REASON = "demo data: not a real event"


class _HoldsOtherData(Exception):
    """Raised inside the write when the database turned out not to be empty: not a StoreError,
    so that the whole transaction is rolled back without even a denied event."""


def _holds_other_data(session: Session) -> bool:
    return any(session.scalar(select(column).limit(1)) is not None
               for column in (Team.id, Account.id, App.id, AuditEvent.id))


def _not_empty(db: Database) -> Refused:
    where = db.path if db.path is not None else "that database"
    return Refused(
        f"{where} holds other data: the demo team is built only in its own demo.db or in an "
        "empty database; run 'teamaccess demo' without --db, or give --db a new file."
    )


def build_demo(db: Database) -> bool:
    """Create the demo team if it is not there yet. Returns True when it was created.

    Only into a database that holds nothing yet (the demo's own demo.db, or a new file): a
    database with any team, account, app or event in it is refused with nothing written, not
    even an event, since the demo's actor is nobody real. Where the demo team is already, this
    writes nothing and returns False. The demo's made-up history is written through the same
    operation path as every change (one transaction, one event per change), each event marked
    as demo data (OS login ``demo``, reason ``demo data``).
    """
    with db.read() as session:
        if session.scalars(select(Team.id).where(Team.name == DEMO_TEAM)).first() is not None:
            return False
        if _holds_other_data(session):
            raise _not_empty(db)

    def body(session: Session, event: ops._Event) -> bool:
        if _holds_other_data(session):  # someone wrote since the check above
            raise _HoldsOtherData
        _build(session, event)
        return True

    try:
        return ops._run(db, ops.Actor(DEMO_ADMIN, DEMO_LOGIN), "team.create", body, team=DEMO_TEAM)
    except _HoldsOtherData:
        raise _not_empty(db) from None


def _build(session: Session, event: ops._Event) -> None:
    team = Team(name=DEMO_TEAM, created_at=_T0)
    session.add(team)
    accounts: dict[str, Account] = {}
    for email, name, _role, mfa, _days in DEMO_USERS:
        accounts[email] = Account(email=email, name=name, mfa_enabled=mfa, created_at=_T0)
        session.add(accounts[email])
    session.flush()
    for email, _name, role, _mfa, days in DEMO_USERS:
        if role is not None:
            session.add(Membership(team_id=team.id, account_id=accounts[email].id, role=role,
                                   created_at=_T0 + timedelta(days=days)))
    apps: dict[str, App] = {}
    for i, (name, locked, creator) in enumerate(DEMO_APPS):
        apps[name] = App(name=name, team_id=team.id, locked=locked,
                         locked_at=_LOCKED_AT if locked else None,
                         created_by_id=accounts[creator].id,
                         created_at=_T0 + timedelta(days=3 + i))
        session.add(apps[name])
    personal = App(name="ada-sandbox", owner_account_id=accounts[DEMO_ADMIN].id,
                   created_by_id=accounts[DEMO_ADMIN].id, created_at=_T0)
    session.add(personal)
    session.flush()
    roles = {e: r for e, _n, r, _m, _d in DEMO_USERS}
    for name, _locked, creator in DEMO_APPS:
        creators = creator_grant(DEMO_TEAM, roles[creator])
        if creators:
            session.add(Grant.holding(creators, app_id=apps[name].id, account_id=accounts[creator].id,
                                      origin="creator", created_at=apps[name].created_at))
    for email, app, perms in DEMO_GRANTS:
        session.add(Grant.holding(perms, app_id=apps[app].id, account_id=accounts[email].id,
                                  origin="collaborator" if roles[email] is None else "granted",
                                  created_at=_T0 + timedelta(days=100)))
    rng = random.Random(7)
    for app in [*apps.values(), personal]:
        prod = app.name.endswith("-prod") or app.name in ("billing-service", "admin-panel")
        session.add(Resource(app_id=app.id, kind="dyno", name="web", plan=_PLANS["web"][0],
                             quantity=4 if prod else 1, monthly_cents=_PLANS["web"][1]))
        if prod or rng.random() < 0.5:
            session.add(Resource(app_id=app.id, kind="dyno", name="worker",
                                 plan=_PLANS["worker"][0], quantity=2 if prod else 1,
                                 monthly_cents=_PLANS["worker"][1]))
        for addon in ("heroku-postgresql", "heroku-redis", "papertrail"):
            if prod or rng.random() < 0.4:
                session.add(Resource(app_id=app.id, kind="addon", name=addon,
                                     plan=_PLANS[addon][0], monthly_cents=_PLANS[addon][1]))
    # A made-up history for the audit view, in the demo people's names and on the demo's
    # dates: each event says it is demo data, in its login and its reason.
    event.team_id = team.id
    event.changes = log = ops.Changes(ops.Actor(DEMO_ADMIN, DEMO_LOGIN))
    history = [
        (0, DEMO_ADMIN, "team.create", None, None, None, {"team": DEMO_TEAM}),
        (2, DEMO_ADMIN, "team_membership.create", None, "grace@acme.com", None, {"role": "admin"}),
        (10, DEMO_ADMIN, "team_membership.create", None, "joe@acme.com", None, {"role": "member"}),
        (147, "joe@acme.com", "app.update", "website-prod", None, {"locked": False}, {"locked": True}),
        (150, DEMO_ADMIN, "team_membership.update", None, "priya@acme.com", {"role": "viewer"}, {"role": "member"}),
        (180, "joe@acme.com", "collaborator.create", "website-staging", "sam@freelance.dev", None, {"permissions": ["view", "deploy"]}),
    ]
    for days, actor, action, app, target, before, after in history:
        log.add(action, team.id, DEMO_TEAM, app=app, target=target, before=before, after=after,
                reason=DEMO_REASON, at=_T0 + timedelta(days=days), actor_email=actor)
    log.add("team_membership.create", team.id, DEMO_TEAM, target="mallory@example.com",
            outcome="denied", at=_T0 + timedelta(days=200), actor_email="tim@acme.com",
            reason="You are a viewer of acme-widgets; to add, change or remove team users you "
                   "must be a team admin")


def generate(
    db: Database,
    *,
    team: str = "bigco",
    users: int = 10_000,
    apps: int = 2_000,
    grants: int = 50_000,
    seed: int = 0,
) -> None:
    """Fill a large synthetic team with bulk inserts (for benchmarks and scale tests).

    Roles are about 2% admin, 70% member, 28% viewer; a fifth of the users lack MFA; a tenth
    of the apps are locked; grants are spread at random (one per account and app at most).
    """
    rng = random.Random(seed)
    base = datetime(2023, 1, 1, tzinfo=UTC)
    lock_time = base + timedelta(days=400)

    def body(session) -> None:
        conn = session.connection()
        team_row = Team(name=team, created_at=base)
        session.add(team_row)
        session.flush()
        first = (session.scalar(select(Account.id).order_by(Account.id.desc()).limit(1)) or 0) + 1
        conn.execute(insert(Account), [
            {"id": first + i, "email": f"user{i:06d}@{team}.example.com",
             "name": f"User {i:06d}", "mfa_enabled": rng.random() >= 0.2,
             "created_at": base}
            for i in range(users)
        ])
        conn.execute(insert(Membership), [
            {"team_id": team_row.id, "account_id": first + i,
             "role": "admin" if i < max(1, users // 50) else ("member" if rng.random() < 0.714 else "viewer"),
             "created_at": base + timedelta(minutes=i)}
            for i in range(users)
        ])
        app_first = (session.scalar(select(App.id).order_by(App.id.desc()).limit(1)) or 0) + 1
        conn.execute(insert(App), [
            {"id": app_first + j, "name": f"{team}-app-{j:05d}", "team_id": team_row.id,
             "owner_account_id": None, "locked": j % 10 == 0,
             "locked_at": lock_time if j % 10 == 0 else None,
             "created_by_id": first + (j % users), "created_at": base}
            for j in range(apps)
        ])
        pairs: set[tuple[int, int]] = set()
        want = min(grants, users * apps)
        while len(pairs) < want:
            pairs.add((rng.randrange(apps), rng.randrange(users)))
        rows = []
        for j, i in pairs:
            r = rng.random()
            rows.append({"app_id": app_first + j, "account_id": first + i, "can_view": True,
                         "can_deploy": r < 0.5, "can_operate": r < 0.3, "can_manage": r < 0.1,
                         "origin": "granted", "created_at": base})
        for k in range(0, len(rows), 10_000):
            conn.execute(insert(Grant), rows[k:k + 10_000])
        conn.execute(insert(Resource), [
            {"app_id": app_first + j, "kind": "dyno", "name": "web", "plan": "standard-1x",
             "quantity": 1 + j % 3, "monthly_cents": 2500}
            for j in range(apps)
        ])

    db.write(body)
