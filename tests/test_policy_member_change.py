"""policy.decide_member_change and lost_by_role_change: what the dashboard decides before asking."""

from __future__ import annotations

from teamaccess.store.policy import Relation, TeamAction, decide_member_change, lost_by_role_change

T = "acme"


def test_only_admins_may_change_roles():
    for rel in (Relation.MEMBER, Relation.VIEWER, Relation.COLLABORATOR, Relation.OUTSIDER):
        assert not decide_member_change(T, rel, "joe@acme.com", "member", "viewer", 2)
    assert decide_member_change(T, Relation.ADMIN, "joe@acme.com", "member", "viewer", 1)


def test_the_only_admin_keeps_the_role_and_the_team():
    for new in ("member", "viewer", None):
        d = decide_member_change(T, Relation.ADMIN, "ada@acme.com", "admin", new, 1)
        assert not d and d.rule == "at-least-one-admin" and "only admin" in d.reason
        assert decide_member_change(T, Relation.ADMIN, "ada@acme.com", "admin", new, 2)


def test_a_collaborator_has_no_role_to_change_and_same_role_is_refused():
    d = decide_member_change(T, Relation.ADMIN, "sam@x.io", "collaborator", "member", 2)
    assert not d and "collaborator" in d.reason
    d = decide_member_change(T, Relation.ADMIN, "joe@acme.com", "member", "member", 2)
    assert not d and "already a member" in d.reason


def test_what_a_demotion_takes_away():
    lost = lost_by_role_change(T, Relation.ADMIN, Relation.MEMBER)
    assert TeamAction.READ_AUDIT in lost and TeamAction.MANAGE_MEMBERS in lost
    assert TeamAction.CREATE_APP not in lost  # members create apps too
    assert lost_by_role_change(T, Relation.MEMBER, Relation.ADMIN) == ()
    assert TeamAction.LIST_MEMBERS in lost_by_role_change(T, Relation.VIEWER, Relation.OUTSIDER)
