"""One definition per word: roles, permissions and sources are enums that every other list derives
from, and that still compare equal to the plain strings stored and shown."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import inspect as sa_inspect
from teamaccess.store import validate
from teamaccess.store.errors import Invalid
from teamaccess.store.models import Grant, Membership
from teamaccess.store.words import PERMISSIONS, ROLES, SETTABLE_ROLES, Permission, Role, Source


def test_the_words_are_the_specs_and_compare_equal_to_plain_strings():
    assert ROLES == ("admin", "member", "viewer")
    assert SETTABLE_ROLES == ("admin", "member")
    assert PERMISSIONS == ("view", "deploy", "operate", "manage")
    assert Source.GRANT == "explicit grant"
    assert json.dumps([Permission.VIEW, Role.ADMIN]) == '["view", "admin"]'
    assert f"{Permission.DEPLOY}" == "deploy" and "view" in frozenset(PERMISSIONS)


def test_every_permission_has_its_grant_column_and_no_other_column_holds_one():
    columns = {c.key for c in sa_inspect(Grant).columns if c.key.startswith("can_")}
    assert columns == {p.column for p in Permission}
    grant = Grant.holding({"deploy"}, app_id=1, account_id=1)
    assert grant.permissions == {"view", "deploy"}  # view always held
    grant.set_permissions(frozenset({"manage"}))
    assert grant.permissions == {"view", "manage"} and grant.can_view and not grant.can_deploy


def test_the_role_constraint_is_built_from_the_roles():
    (check,) = [c for c in Membership.__table__.constraints if c.name == "ck_membership_role"]
    assert str(check.sqltext) == "role IN ('admin', 'member', 'viewer')"


def test_validation_answers_with_the_enums_and_lists_the_valid_names():
    assert validate.role("Admin ") is Role.ADMIN
    assert validate.permissions("deploy, MANAGE") == {Permission.VIEW, Permission.DEPLOY, Permission.MANAGE}
    with pytest.raises(Invalid, match="use one of admin, member, viewer"):
        validate.role("owner")
    with pytest.raises(Invalid, match="use any of view, deploy, operate, manage"):
        validate.permissions("admin")
    assert validate.sort_permissions({"manage", "view"}) == ["view", "manage"]


def test_the_access_pane_header_and_legend_come_from_the_permissions():
    from teamaccess.tui.screens.access import _LEGEND, AccessView

    assert dict(AccessView.COLUMNS)["perms"] == "V D O M"
    assert _LEGEND == "V view, D deploy, O operate, M manage"
