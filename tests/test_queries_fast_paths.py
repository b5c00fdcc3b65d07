"""The fast paths of store.queries (plain columns, one decision per distinct standing) agree
with a straightforward per-row reading of the same rules over ORM objects.

The reference below is the first, simple version of ``apps`` and ``app_access``: it loads ORM
objects and asks the policy once per row. The shipped versions skip the ORM and share decisions
between rows with the same standing, which is only right if the policy looks at nothing else;
these tests fail if that ever stops being true.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select
from teamaccess.store import queries
from teamaccess.store.demo import DEMO_USERS, build_demo
from teamaccess.store.models import Account, App, Grant, Membership, Team
from teamaccess.store.policy import AppFacts, Standing, effective_permissions

PERMS = ("view", "deploy", "operate", "manage")


def _perm_tuple(perms) -> tuple[str, ...]:
    return tuple(p for p in PERMS if p in perms)


def _facts(s, app: App) -> AppFacts:
    team = s.get(Team, app.team_id) if app.team_id is not None else None
    owner = s.get(Account, app.owner_account_id) if app.owner_account_id is not None else None
    return AppFacts(app.name, team.name if team else None, owner.email if owner else None,
                    app.locked, app.locked_at)


def _standing(s, app: App, acct: Account) -> Standing:
    m = None
    if app.team_id is not None:
        m = s.scalars(select(Membership).where(Membership.team_id == app.team_id,
                                               Membership.account_id == acct.id)).first()
    g = s.scalars(select(Grant).where(Grant.app_id == app.id,
                                      Grant.account_id == acct.id)).first()
    return Standing(acct.email, m.role if m else None, m.created_at if m else None,
                    g.permissions if g else None, g.origin if g else None)


def reference_access(db, app_name: str) -> list[tuple]:
    """Every account with any permission on the app, asked of the policy one by one."""
    out = []
    with db.read() as s:
        app = s.scalars(select(App).where(App.name == app_name)).one()
        facts = _facts(s, app)
        for acct in s.scalars(select(Account).order_by(Account.email)):
            st = _standing(s, app, acct)
            eff = effective_permissions(facts, st)
            if not eff.permissions:
                continue
            sources = tuple((p.source.value, _perm_tuple(p.permissions), p.detail)
                            for p in eff.sources)
            out.append((acct.email, st.role, acct.mfa_enabled, _perm_tuple(eff.permissions),
                        sources, _perm_tuple(st.grant) if st.grant is not None else None))
    return out


def reference_apps(db, actor: str, team: str) -> list[tuple]:
    with db.read() as s:
        acct = s.scalars(select(Account).where(Account.email == actor)).one()
        t = s.scalars(select(Team).where(Team.name == team)).one()
        out = []
        for app in s.scalars(select(App).where(App.team_id == t.id).order_by(App.name)):
            eff = effective_permissions(_facts(s, app), _standing(s, app, acct))
            out.append((app.name, team, None, app.locked, app.locked_at,
                        _perm_tuple(eff.permissions)))
        return out


def _access_tuples(view) -> list[tuple]:
    return [(r.email, r.role, r.mfa, r.permissions, r.sources, r.grant) for r in view.rows]


def test_app_access_matches_the_reference_on_every_demo_app(demo_db):
    build_demo(demo_db)
    with demo_db.read() as s:
        names = list(s.scalars(select(App.name).order_by(App.name)))
    assert len(names) > 10
    for name in names:
        owner = "ada@acme.com"
        view = queries.app_access(demo_db, owner, name)
        assert _access_tuples(view) == reference_access(demo_db, name), name


def test_app_access_matches_the_reference_on_a_mixed_generated_team(mixed_db):
    admin = "user000000@mixco.example.com"
    with mixed_db.read() as s:
        names = list(s.scalars(select(App.name).where(App.team_id.is_not(None))))
    locked_rows = 0
    for name in names:
        got = _access_tuples(queries.app_access(mixed_db, admin, name))
        assert got == reference_access(mixed_db, name), name
        locked_rows += sum(1 for row in got if row[0].startswith("late"))
    # The late joiners must show up on unlocked apps and be missing from locked ones.
    assert locked_rows > 0
    locked = queries.app_access(mixed_db, admin, "mixco-app-00000")
    emails = {r.email for r in locked.rows}
    assert "late0@mixco.example.com" in emails  # via the grant
    by_email = {r.email: r for r in locked.rows}
    early, late = by_email["user000005@mixco.example.com"], by_email["late3@mixco.example.com"]
    assert (early.role, early.grant) == (late.role, late.grant) == ("member", ("view", "deploy", "operate"))
    assert len(early.sources) == len(late.sources) + 1  # only the early one keeps team view
    assert "late1@mixco.example.com" not in emails  # viewer who joined after the lock
    assert "late2@mixco.example.com" in emails  # admin


def test_personal_app_access_shows_only_the_owner(mixed_db):
    view = queries.app_access(mixed_db, "user000000@mixco.example.com", "solo-app")
    assert _access_tuples(view) == reference_access(mixed_db, "solo-app")
    assert [r.email for r in view.rows] == ["user000000@mixco.example.com"]


@pytest.mark.parametrize("email", [u[0] for u in DEMO_USERS if u[2] is not None])
def test_apps_match_the_reference_for_every_demo_team_user(demo_db, email):
    got = [(a.name, a.team, a.owner, a.locked, a.locked_at, a.permissions)
           for a in queries.apps(demo_db, email, "acme-widgets")]
    assert got == reference_apps(demo_db, email, "acme-widgets")


@pytest.mark.parametrize("email", ["user000001@mixco.example.com", "late0@mixco.example.com",
                                   "late1@mixco.example.com", "late2@mixco.example.com"])
def test_apps_match_the_reference_on_the_mixed_team(mixed_db, email):
    got = [(a.name, a.team, a.owner, a.locked, a.locked_at, a.permissions)
           for a in queries.apps(mixed_db, email, "mixco")]
    assert got == reference_apps(mixed_db, email, "mixco")
    assert any(a[5] for a in got)


def test_roster_limit_gives_the_first_rows_of_the_full_roster(mixed_db):
    admin = "user000000@mixco.example.com"
    full = queries.roster(mixed_db, admin, "mixco")
    assert len(full) > 10
    assert queries.roster(mixed_db, admin, "mixco", limit=10) == full[:10]
    viewers = queries.roster(mixed_db, admin, "mixco", role="viewer")
    assert queries.roster(mixed_db, admin, "mixco", role="viewer", limit=2) == viewers[:2]
