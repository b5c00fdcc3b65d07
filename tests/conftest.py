"""Shared fixtures and helpers: fresh databases (SQLite files, PostgreSQL schemas), the dashboard
driven by Pilot, the store's invariants, and the naive reading of effective permissions.

Test modules import the helpers with ``from conftest import ...``: one definition each, rather
than test modules importing from one another.
"""

from __future__ import annotations

import asyncio
import functools
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import select
from teamaccess.store import ops, queries
from teamaccess.store.db import Database
from teamaccess.store.demo import DEMO_TEAM, build_demo, generate
from teamaccess.store.errors import Refused
from teamaccess.store.models import Account, App, Grant, Membership, Team

if TYPE_CHECKING:  # the dashboard is imported only by the tests that drive it
    from teamaccess.tui.app import TeamAccessApp


@pytest.fixture(autouse=True)
def _private_data_folder(tmp_path_factory, monkeypatch):
    """The user's data folder (where unexpected errors are logged) is a temporary one: a test
    that provokes an error must not write into the real user's teamaccess.log."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path_factory.mktemp("xdg-data")))


@pytest.fixture
def db(tmp_path):
    """An empty database in a temporary file."""
    database = Database(tmp_path / "teamaccess.db")
    yield database
    database.close()


@pytest.fixture
def demo_db(tmp_path):
    """A database holding the demo team acme-widgets."""
    database = Database(tmp_path / "demo.db")
    build_demo(database)
    yield database
    database.close()


@pytest.fixture
def demo(demo_db):
    """The same, under the name the dashboard tests use (a module may define its own)."""
    return demo_db


@pytest.fixture
def owned(demo_db):
    """The demo database in a file this process owns (a personal database: --as is honoured)."""
    return demo_db


# -- the command line's results ------------------------------------------------------------------


def data(result) -> str:
    """A command that prints data: exit 0, all of it on stdout, nothing on stderr."""
    assert result.exit_code == 0, (result.stdout, result.stderr)
    assert result.stderr == ""
    return result.stdout


def progress(result) -> str:
    """A command that changes something: Heroku's lines on stderr, stdout (data only) empty."""
    assert result.exit_code == 0, (result.stdout, result.stderr)
    assert result.stdout == ""
    return result.stderr


def failed(result, code: int = 1) -> str:
    """The one error line on stderr, with nothing on stdout and no traceback."""
    assert result.exit_code == code, (result.stdout, result.stderr)
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


# -- PostgreSQL (issue 6): the same store on a real server ---------------------------------------
# TEAMACCESS_TEST_PG_URL names a server (.ci/run starts one); without it a throwaway server is
# started from the local PostgreSQL binaries; without those the PostgreSQL cases are skipped
# with a reason that says how to enable them. Each test gets its own empty schema.


@pytest.fixture(scope="session")
def pg_url():
    """The URL of a PostgreSQL database the tests may fill with schemas of their own."""
    import os

    import postgres_server

    url = os.environ.get(postgres_server.URL_ENV)
    if url:
        yield url
        return
    bindir = postgres_server.find_bindir()
    if bindir is None:
        pytest.skip(postgres_server.HOW_TO_ENABLE)
    server = postgres_server.ThrowawayServer(bindir)
    try:
        url = server.start()
    except Exception as err:  # noqa: BLE001 - a server that won't start is reported, not hidden
        server.stop()
        pytest.fail(f"could not start a throwaway PostgreSQL server: {err}")
    yield url
    server.stop()


@pytest.fixture
def pg_db(pg_url):
    """A fresh, empty teamaccess database on PostgreSQL (a schema of its own)."""
    import postgres_server

    url, schema = postgres_server.fresh_schema_url(pg_url)
    database = Database(url)
    yield database
    database.close()
    postgres_server.drop_schema(pg_url, schema)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def any_db(request, tmp_path):
    """An empty database on each backend in turn: an SQLite file, then PostgreSQL."""
    if request.param == "sqlite":
        database = Database(tmp_path / "any.db")
        yield database
        database.close()
    else:
        yield request.getfixturevalue("pg_db")


@pytest.fixture
def any_demo_db(any_db):
    """The demo team acme-widgets, on each backend in turn."""
    build_demo(any_db)
    return any_db


# -- the dashboard, driven like a person (Textual's Pilot) -----------------------------------


# -- the seed's teams, for the command line's transcripts -----------------------------------------

#: Turns a current (version 4) database back into version 3's shape, to test the upgrade:
#: temporary grants' expiry and the access_request table are what version 4 added.
WITHOUT_SCHEMA_4 = ('DROP TABLE access_request; DROP INDEX ix_grant_expires_at; '
                    'ALTER TABLE "grant" DROP COLUMN expires_at;')


class Clock:
    """A clock a test moves by hand (``db.clock = clock``; ``clock.move(hours=1)``): every
    time-bound rule (expiry, lapse, time left) reads the database's clock, so no test sleeps."""

    def __init__(self, now: datetime | None = None) -> None:
        self.now = now if now is not None else datetime.now(UTC).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.now

    def move(self, **delta: float) -> None:
        self.now += timedelta(**delta)


SEED_ADMIN = ops.Actor("ada@acme.com", "ada")


def seed(db: Database) -> None:
    """The seed's teams: acme-widgets and acme (apps myapp, test, website-prod locked, website-staging)."""
    ops.create_team(db, SEED_ADMIN, "acme-widgets")
    ops.create_team(db, SEED_ADMIN, "acme")
    for name in ("website-staging", "myapp", "website-prod", "test"):
        ops.create_app(db, SEED_ADMIN, name, "acme")
    ops.lock_app(db, SEED_ADMIN, "website-prod")
    ops.add_member(db, SEED_ADMIN, "acme", "joe@acme.com", "member")
    ops.add_member(db, SEED_ADMIN, "acme", "val@acme.com", "viewer")
    ops.grant_access(db, SEED_ADMIN, "test", "sam@freelance.dev", "deploy")


@pytest.fixture
def sdb(tmp_path):
    """A database holding the seed's teams."""
    database = Database(tmp_path / "seed.db")
    seed(database)
    yield database
    database.close()


def sync(test):
    """Run an async test on a fresh event loop (no async pytest plugin is needed)."""

    @functools.wraps(test)
    def run(*args, **kwargs):
        return asyncio.run(test(*args, **kwargs))

    return run


def make(db: Database, email: str = "ada@acme.com", team: str | None = DEMO_TEAM, **kw) -> TeamAccessApp:
    """The dashboard as ``email`` on ``team``, with a fixed theme and no watching unless asked."""
    from teamaccess.tui.app import TeamAccessApp

    return TeamAccessApp(db, ops.Actor(email, email.split("@")[0]), team, theme="textual-dark",
                         watch=kw.pop("watch", False), **kw)


async def settle(pilot, app: TeamAccessApp) -> None:
    """Wait until no load or write is in flight and the screen has caught up."""
    for _ in range(400):
        await pilot.pause(0.01)
        if app.settled:
            await pilot.pause()
            if app.settled:
                return
    raise AssertionError("the dashboard never settled")


async def press(pilot, app: TeamAccessApp, *keys: str) -> None:
    await pilot.press(*keys)
    await settle(pilot, app)


def rows(app: TeamAccessApp) -> list[list[str]]:
    """The visible table of the front list, as plain text."""
    from teamaccess.tui.screens.access import AccessScreen

    screen = app.screen
    if isinstance(screen, AccessScreen):
        view = screen.view
    else:
        view = app.main.active_view
    table = view.table
    return [[c.plain if hasattr(c, "plain") else str(c) for c in table.get_row(r.key)]
            for r in table.ordered_rows]


def column(app: TeamAccessApp, index: int = 0) -> list[str]:
    return [r[index] for r in rows(app)]


def status(app: TeamAccessApp) -> str:
    from teamaccess.tui.screens.access import AccessScreen

    view = app.screen.view if isinstance(app.screen, AccessScreen) else app.main.active_view
    return str(view.query_one(".status").render())


async def open_apps(pilot, app: TeamAccessApp, select: str | None = None) -> None:
    await press(pilot, app, "2")
    if select is not None:
        app.main.active_view.table.move_cursor(row=column(app).index(select))
        await settle(pilot, app)


async def open_pane(pilot, app: TeamAccessApp, name: str) -> None:
    from teamaccess.tui.screens.access import AccessScreen

    await open_apps(pilot, app, name)
    await press(pilot, app, "enter")
    assert isinstance(app.screen, AccessScreen) and app.screen.app_name == name


# -- the store's state and invariants -------------------------------------------------------


def _state(db: Database) -> dict:
    """Everything an operation can change, without timestamps."""
    with db.read() as s:
        emails = {a.id: a.email for a in s.scalars(select(Account))}
        teams = {t.id: t.name for t in s.scalars(select(Team))}
        apps = {a.id: a.name for a in s.scalars(select(App))}
        return {
            "accounts": sorted((a.email, a.mfa_enabled) for a in s.scalars(select(Account))),
            "members": sorted((teams[m.team_id], emails[m.account_id], m.role)
                              for m in s.scalars(select(Membership))),
            "apps": sorted((a.name, teams.get(a.team_id), emails.get(a.owner_account_id), a.locked)
                           for a in s.scalars(select(App))),
            "grants": sorted((apps[g.app_id], emails[g.account_id], tuple(sorted(g.permissions)), g.origin)
                             for g in s.scalars(select(Grant))),
        }


def _check_invariants(db: Database) -> None:
    with db.read() as s:
        for team in s.scalars(select(Team)):
            admins = s.scalars(
                select(Membership).where(Membership.team_id == team.id, Membership.role == "admin")
            ).all()
            assert admins, f"team {team.name} has no admin"
        for g in s.scalars(select(Grant)):
            assert g.can_view, "a grant without view"
        for a in s.scalars(select(App)):
            assert (a.team_id is None) != (a.owner_account_id is None), a.name
            assert not a.locked or a.team_id is not None, a.name
            assert a.locked == (a.locked_at is not None), a.name


# -- a generated team with every kind of standing ------------------------------------------


@pytest.fixture
def mixed_db(db):
    """A generated team plus late joiners, admin and collaborator grants, locks after joins."""
    generate(db, team="mixco", users=40, apps=10, grants=120, seed=3)
    admin = ops.Actor("user000000@mixco.example.com")
    # Joined now, long after the generator's lock time: locked apps give them nothing.
    for i, role in enumerate(("member", "viewer", "admin", "member")):
        ops.add_member(db, admin, "mixco", f"late{i}@mixco.example.com", role)
    ops.grant_access(db, admin, "mixco-app-00000", "late0@mixco.example.com", ["deploy"])
    ops.grant_access(db, admin, "mixco-app-00000", "outside@elsewhere.io", ["operate"])
    ops.grant_access(db, admin, "mixco-app-00003", "outside@elsewhere.io", None)
    # An early and a late member with the same grant on a locked app: same role, same grant,
    # only the start of the membership tells them apart (one keeps team view, one does not).
    early = "user000005@mixco.example.com"
    if queries.relation_to(db, early, "mixco").value != "member":
        ops.set_role(db, admin, "mixco", early, "member")
    ops.revoke_access(db, admin, "mixco-app-00000", "late0@mixco.example.com")
    for who in (early, "late0@mixco.example.com", "late3@mixco.example.com"):
        try:
            ops.grant_access(db, admin, "mixco-app-00000", who, ["deploy", "operate"])
        except Refused:  # the generator gave them a grant already
            ops.update_access(db, admin, "mixco-app-00000", who, ["deploy", "operate"])
    ops.lock_app(db, admin, "mixco-app-00003")  # locked after every join, even the late ones
    ops.create_app(db, admin, "solo-app")  # a personal app
    return db


# -- the naive reading of SPEC "Effective permissions" (see test_policy_naive.py) -----------


EVERY_PERMISSION = ["view", "deploy", "operate", "manage"]


def naive_permissions(
    *,
    team: str | None,
    owner: str | None,
    locked: bool,
    locked_at: datetime | None,
    email: str,
    role: str | None,
    member_since: datetime | None,
    grant: list[str] | None,
    expires_at: datetime | None = None,
    now: datetime | None = None,
) -> dict[str, list[str]]:
    """SPEC "Effective permissions on a team app": for each permission held, the sources giving it.

    ``expires_at``/``now``: SPEC "Temporary access": "From that moment the grant gives nothing".
    """
    held: dict[str, list[str]] = {}

    def give(source: str, perms: list[str]) -> None:
        for p in perms:
            held.setdefault(p, [])
            if source not in held[p]:
                held[p].append(source)

    # "A personal app: its owner has all four; nobody else has anything."
    if team is None:
        if owner == email:
            give("owner", EVERY_PERMISSION)
        return held
    # "admin role in the owning team: all four, on every app of the team, locked or not"
    if role == "admin":
        give("admin", EVERY_PERMISSION)
    # "--expires-in ...: From that moment the grant gives nothing" (not even view)
    if grant is not None and expires_at is not None and (now is None or now >= expires_at):
        grant = None
    # "an explicit grant: the grant's set" ("Every grant holds view")
    if grant is not None:
        give("grant", ["view"] + [p for p in grant if p != "view"])
    # "member/viewer role, app unlocked: view"
    if (role == "member" or role == "viewer") and locked is False:
        give("team view", ["view"])
    # "member/viewer role, app locked, membership began before the lock was set: view"
    if (role == "member" or role == "viewer") and locked is True:
        if member_since is not None and locked_at is not None and member_since < locked_at:
            give("kept at lock", ["view"])
    # "anything else: nothing"
    return held
