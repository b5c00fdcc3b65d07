"""SPEC rule 4 on the access pane: a collaborator sees who has what on their app, not the team."""

from store import ops, queries

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
