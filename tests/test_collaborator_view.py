"""SPEC rule 4 on the access pane: a collaborator sees who has what on their app, not the team."""

import pytest
from teamaccess.store import ops, queries
from teamaccess.store.errors import NotFound, Refused

ADA = ops.Actor("ada@acme.com")


def test_a_collaborators_access_pane_lists_admins_and_grant_holders_only(demo_db):
    # sam@freelance.dev holds grants on website-staging (unlocked: every team user can view it).
    as_admin = {r.email for r in queries.app_access(demo_db, ADA.email, "website-staging").rows}
    as_sam = queries.app_access(demo_db, "sam@freelance.dev", "website-staging")
    shown = {r.email for r in as_sam.rows}
    admins = {r.email for r in queries.roster(demo_db, ADA.email, "acme-widgets", role="admin")}
    holders = {r.email for r in queries.app_access(demo_db, ADA.email, "website-staging").rows
               if r.grant is not None}
    assert shown == admins | holders
    # The admin's pane does list plain team viewers; the collaborator's must not.
    assert "alan@acme.com" in as_admin and "alan@acme.com" not in shown
    assert as_sam.actor_permissions == ("view", "deploy")


def test_a_team_member_still_sees_every_team_user_with_view(demo_db):
    as_joe = {r.email for r in queries.app_access(demo_db, "joe@acme.com", "website-staging").rows}
    assert "alan@acme.com" in as_joe


def test_access_why_keeps_the_team_hidden_from_a_collaborator(demo_db):
    # sam may ask about the app's admins and grant holders, as the pane shows them...
    rows = queries.why(demo_db, "sam@freelance.dev", "website-staging", "ada@acme.com")
    assert all(r.held for r in rows)
    # ...but not about a plain team user, whose role the answer would reveal.
    with pytest.raises(Refused, match="may ask only about its admins and the holders of grants"):
        queries.why(demo_db, "sam@freelance.dev", "website-staging", "alan@acme.com")


def test_an_outsider_learns_nothing_about_an_app_not_even_its_team(demo_db):
    for read in (lambda: queries.why(demo_db, "eve@evil.example", "website-prod", "eve@evil.example"),
                 lambda: queries.app_access(demo_db, "eve@evil.example", "website-prod")):
        with pytest.raises(NotFound) as info:
            read()
        assert str(info.value) == ("Couldn't find that app: website-prod. "
                                   "Run 'teamaccess apps' to list yours.")
