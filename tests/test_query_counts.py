"""Every read a screen or a CLI listing makes costs a fixed number of SQL statements.

An N+1 pattern (one query per user, app or grant) shows up as a statement count that grows with
the team; so each read is counted on a team of 10 and of 100 users, apps and grants, and the two
counts must be equal. Statements are counted with SQLAlchemy's ``before_cursor_execute`` event on
the engine, which sees everything the store sends to the database.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import event
from teamaccess.store import ops, queries
from teamaccess.store.db import Database
from teamaccess.store.demo import generate
from teamaccess.store.identity import os_login, resolve_actor

TEAM = "countco"
ADMIN = f"user000000@{TEAM}.example.com"
OUTSIDER = "collab@elsewhere.io"


@contextmanager
def counting(db: Database) -> Iterator[list[str]]:
    """Collect every SQL statement sent on ``db``'s engine while the block runs."""
    seen: list[str] = []

    def on_execute(_conn, _cursor, statement, _params, _context, _many) -> None:
        seen.append(statement)

    event.listen(db.engine, "before_cursor_execute", on_execute)
    try:
        yield seen
    finally:
        event.remove(db.engine, "before_cursor_execute", on_execute)


def _build(path, n: int) -> Database:
    """A team of ``n`` users, ``n`` apps and ``n`` grants, a collaborator and an audit trail."""
    db = Database(path)
    generate(db, team=TEAM, users=n, apps=n, grants=n, seed=1)
    admin = ops.Actor(ADMIN)
    # the admin binds their own login (so "who acts" looks it up)
    ops.bind_login(db, ops.Actor(ADMIN, os_login()), os_login(), ADMIN)
    # The collaborator holds grants on a tenth of the apps, so their listings grow too.
    for j in range(0, n, 10):
        ops.grant_access(db, admin, f"{TEAM}-app-{j:05d}", OUTSIDER, ["deploy"])
    for j in range(1, n, 10):  # audit events that grow with the team
        ops.lock_app(db, admin, f"{TEAM}-app-{j:05d}")
        email = f"user{j:06d}@{TEAM}.example.com"
        ops.set_mfa(db, ops.Actor(email), not queries.account(db, email).mfa_enabled)
    return db


@pytest.fixture(scope="module")
def teams(tmp_path_factory) -> Iterator[dict[int, Database]]:
    built = {n: _build(tmp_path_factory.mktemp(f"n{n}") / "t.db", n) for n in (10, 100)}
    yield built
    for db in built.values():
        db.close()


MEMBER = f"user000005@{TEAM}.example.com"
UNLOCKED_APP = f"{TEAM}-app-00002"
LOCKED_APP = f"{TEAM}-app-00000"  # the generator locks every tenth app

#: What each screen and listing reads, by name: the call, and whether its answer grows with
#: the team (those must really return more rows on the bigger team, or the check proves little).
READS: dict[str, tuple[Callable[[Database], object], bool]] = {
    "roster": (lambda db: queries.roster(db, ADMIN, TEAM), True),
    "roster filtered": (
        lambda db: queries.roster(db, ADMIN, TEAM, text="user00", no_mfa_only=True), True),
    "roster by role": (lambda db: queries.roster(db, MEMBER, TEAM, role="member"), True),
    "apps of the team (admin)": (lambda db: queries.apps(db, ADMIN, TEAM), True),
    "apps of the team (member)": (lambda db: queries.apps(db, MEMBER, TEAM), True),
    "apps of the team (collaborator)": (lambda db: queries.apps(db, OUTSIDER, TEAM), True),
    "all my apps": (lambda db: queries.apps(db, MEMBER), True),
    "access pane, unlocked app": (lambda db: queries.app_access(db, ADMIN, UNLOCKED_APP), True),
    "access pane, locked app": (lambda db: queries.app_access(db, ADMIN, LOCKED_APP), True),
    "access pane as a member": (lambda db: queries.app_access(db, MEMBER, UNLOCKED_APP), True),
    "access:why": (lambda db: queries.why(db, ADMIN, LOCKED_APP, MEMBER), False),
    "members:access": (lambda db: queries.member_access(db, ADMIN, TEAM, MEMBER), True),
    "resources": (lambda db: queries.resources(db, ADMIN, TEAM), True),
    "billing": (lambda db: queries.billing(db, ADMIN, TEAM), True),
    "audit": (lambda db: queries.audit(db, ADMIN, TEAM), True),
    "teams": (lambda db: queries.teams(db, OUTSIDER), False),
    "relation": (lambda db: queries.relation_to(db, MEMBER, TEAM), False),
    "who acts (bound login)": (lambda db: resolve_actor(db), False),
}


def _size(result: object) -> int:
    rows = getattr(result, "rows", result)
    return len(rows) if isinstance(rows, list | tuple) else 1


@pytest.mark.parametrize("name", list(READS))
def test_statement_count_does_not_grow_with_the_team(teams, name, monkeypatch):
    monkeypatch.delenv("TEAMACCESS_AS", raising=False)
    read, grows = READS[name]
    counts, sizes = {}, {}
    for n, db in teams.items():
        read(db)  # warm: the first call may set up connections
        with counting(db) as seen:
            sizes[n] = _size(read(db))
        counts[n] = len(seen)
        assert seen, f"{name}: no statement was counted; is the listener on the right engine?"
    assert counts[10] == counts[100], (
        f"{name}: {counts[10]} statements for 10 users/apps/grants but {counts[100]} for 100 "
        "(a query per row?)"
    )
    if grows:
        assert sizes[100] > sizes[10], (name, sizes)


def test_the_counter_catches_a_query_per_row(teams):
    """The check itself must be able to fail: a deliberate N+1 read is caught."""

    def per_user(db: Database) -> list:
        return [queries.account(db, row.email) for row in queries.roster(db, ADMIN, TEAM)]

    counts = {}
    for n, db in teams.items():
        with counting(db) as seen:
            per_user(db)
        counts[n] = len(seen)
    assert counts[100] > counts[10]


async def _dashboard_statements(db: Database) -> dict[str, int]:
    """Statements the dashboard sends to show the roster, the apps list and an access pane."""
    from teamaccess.tui.app import TeamAccessApp
    from teamaccess.tui.screens.access import AccessScreen

    app = TeamAccessApp(db, ops.Actor(ADMIN, "counter"), TEAM, watch=False)
    counts: dict[str, int] = {}
    with counting(db) as seen:
        async with app.run_test(headless=True, size=(120, 40)) as pilot:
            async def until(ready) -> None:
                for _ in range(2000):
                    if ready():
                        return
                    await pilot.pause(0.01)
                raise AssertionError("the dashboard did not get there")

            await until(lambda: app.roster_shown_at is not None and app.settled)
            counts["roster screen"] = len(seen)
            await pilot.press("2")
            apps = app.main.view("apps")
            await until(lambda: apps.loaded and app.settled)
            counts["apps screen"] = len(seen) - sum(counts.values())
            app.open_access(UNLOCKED_APP)

            def pane_loaded() -> bool:
                try:
                    return app.screen.view.loaded and app.settled  # type: ignore[attr-defined]
                except Exception:  # the pane is still being mounted
                    return False

            await until(lambda: isinstance(app.screen, AccessScreen) and pane_loaded())
            counts["access pane"] = len(seen) - sum(counts.values())
    return counts


def test_dashboard_screens_cost_the_same_statements_at_10_and_100(teams):
    """Per screen load, end to end: the dashboard's own reads (context, lists, pane) included."""
    by_size = {n: asyncio.run(_dashboard_statements(db)) for n, db in teams.items()}
    assert all(c > 0 for c in by_size[10].values()), by_size
    assert by_size[10] == by_size[100], by_size
