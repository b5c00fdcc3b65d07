"""``queries.app_access(limit=N)``: the access pane's first page read on its own is exactly the
first N rows of the whole list (same rows, same provenance, same app facts), for every app, for
admins, members, viewers and collaborators, on unlocked, locked and personal apps."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from teamaccess.store import ops, queries
from teamaccess.store.errors import StoreError
from teamaccess.store.models import App

LIMITS = (1, 2, 5, 60)


def _apps(db) -> list[str]:
    with db.read() as s:
        return list(s.scalars(select(App.name).order_by(App.name)))


def _check(db, actor: str) -> int:
    """Compare every app's first pages with its whole list; how many panes were compared."""
    compared = 0
    for name in _apps(db):
        try:
            whole = queries.app_access(db, actor, name)
        except StoreError as err:
            with pytest.raises(type(err)):
                queries.app_access(db, actor, name, limit=5)
            continue
        for limit in LIMITS:
            page = queries.app_access(db, actor, name, limit=limit)
            assert page.rows == whole.rows[:limit], (actor, name, limit)
            assert (page.app, page.actor_permissions, page.can_manage) == (
                whole.app, whole.actor_permissions, whole.can_manage)
        compared += 1
    return compared


@pytest.mark.parametrize("actor", [
    "user000000@mixco.example.com",  # the generator's admin
    "user000005@mixco.example.com",  # a member with grants on a locked app
    "late1@mixco.example.com",  # a viewer who joined after every lock
    "outside@elsewhere.io",  # a collaborator
])
def test_first_page_is_the_start_of_the_whole_list(mixed_db, actor):  # noqa: F811
    assert _check(mixed_db, actor) > 0


def test_first_page_when_most_early_accounts_get_nothing(mixed_db):  # noqa: F811
    """A locked app where the first accounts by email joined after the lock: the page skips
    them and still matches the whole list."""
    admin = ops.Actor("user000000@mixco.example.com")
    ops.lock_app(mixed_db, admin, "mixco-app-00001")
    for i in range(30):
        ops.add_member(mixed_db, admin, "mixco", f"aaa{i:02d}@mixco.example.com", "member")
    whole = queries.app_access(mixed_db, admin.email, "mixco-app-00001")
    assert not any(r.email.startswith("aaa") for r in whole.rows)
    for limit in (1, 5, 60):
        page = queries.app_access(mixed_db, admin.email, "mixco-app-00001", limit=limit)
        assert page.rows == whole.rows[:limit]


@pytest.mark.parametrize("actor", ["ada@acme.com", "john@acme.com", "frances@acme.com",
                                   "sam@freelance.dev"])
def test_first_page_is_the_start_of_the_whole_list_on_each_backend(any_demo_db, actor):
    # The first page's SQL (EXISTS, IN over a subquery, per-part LIMIT in a UNION) runs on
    # PostgreSQL too: the same pages there as on SQLite.
    assert _check(any_demo_db, actor) > 0
