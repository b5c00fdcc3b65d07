"""A second, deliberately naive reading of the SPEC's rules, compared with store.policy on random facts.

The naive rules below are transcribed from SPEC.md sentence by sentence and share no code with
store/policy.py (only the conversion of facts into policy's input types is shared ground). If
the two ever disagree, one of them misreads the SPEC.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from conftest import EVERY_PERMISSION, naive_permissions
from hypothesis import given, settings
from hypothesis import strategies as st
from teamaccess.store.policy import (
    AppAction,
    AppFacts,
    Relation,
    Source,
    Standing,
    TeamAction,
    decide_admins_remain,
    decide_app,
    decide_grant_target,
    decide_team,
    effective_permissions,
    users_visible_to,
)

# -- the naive reading -----------------------------------------------------------------------


# The SPEC's team table, copied as text: admin, member, viewer, collaborator, outsider.
NAIVE_TEAM_TABLE = {
    "LIST_MEMBERS": "yes yes yes no no",
    "MANAGE_MEMBERS": "yes no no no no",
    "ADD_COLLABORATOR": "yes no no no no",
    "LIST_APPS": "yes yes yes yes no",  # a collaborator: only apps granted
    "VIEW_RESOURCES": "yes yes yes no no",
    "BILLING": "yes no no no no",
    "RENAME_TEAM": "yes no no no no",
    "READ_AUDIT": "yes no no no no",
    "CREATE_APP": "yes yes no no no",
    "TRANSFER_IN": "yes own no no no",
    "TRANSFER_OUT": "yes no no no no",
}
NAIVE_COLUMNS = ["admin", "member", "viewer", "collaborator", "outsider"]


def naive_team(action: str, relation: str, owns_app: bool) -> bool:
    cell = NAIVE_TEAM_TABLE[action].split()[NAIVE_COLUMNS.index(relation)]
    if cell == "own":
        return owns_app
    return cell == "yes"


def naive_app(action: str, facts: dict, email: str, role: str | None, grant: list[str] | None,
              held: dict[str, list[str]]) -> bool:
    """SPEC's app-level table plus rules 5 and 8, read naively."""
    personal = facts["team"] is None
    is_admin = (not personal) and role == "admin"
    has_manage = "manage" in held
    if action == "VIEW":  # "anyone with view on it (effective)"
        return "view" in held
    if action == "LOCK":  # team admins; manage; rule 8: not when already locked
        return (not personal) and (is_admin or has_manage) and not facts["locked"]
    if action == "UNLOCK":
        return (not personal) and (is_admin or has_manage) and facts["locked"]
    if action == "MANAGE_ACCESS":  # personal apps are shared only by moving them into a team
        return (not personal) and (is_admin or has_manage)
    if action == "JOIN":
        # member/viewer on an unlocked app; an admin is refused as redundant; someone who
        # already holds a grant is refused (rule 5: "already has access")
        if personal:
            return False
        return role in ("member", "viewer") and not facts["locked"] and grant is None
    if action == "LEAVE":  # "anyone holding a grant on it"
        return grant is not None
    if action == "DESTROY":
        if personal:
            return facts["owner"] == email
        return is_admin or has_manage
    raise AssertionError(action)


# -- bridging the two vocabularies -----------------------------------------------------------

_SOURCE_NAME = {
    Source.ADMIN_ROLE: "admin",
    Source.GRANT: "grant",
    Source.TEAM_VIEW: "team view",
    Source.TEAM_VIEW_KEPT: "kept at lock",
    Source.OWNER: "owner",
}

T0 = datetime(2024, 1, 1, tzinfo=UTC)
# A few instants so that equal times (joined at the very moment of the lock) come up often.
moments = st.sampled_from([T0 + timedelta(hours=h) for h in range(4)])
emails = st.sampled_from(["ada@acme.com", "joe@acme.com"])
roles = st.sampled_from([None, "admin", "member", "viewer"])
grants = st.one_of(
    st.none(),
    st.sets(st.sampled_from(["deploy", "operate", "manage"])).map(lambda s: ["view", *sorted(s)]),
)
#: "now" for the expiry dimension, and grant ends around it: a second before, at, a second
#: after, farther off, or none (a grant that never ends).
NOW = T0 + timedelta(hours=2)
ends = st.sampled_from([None, NOW - timedelta(hours=1), NOW - timedelta(seconds=1), NOW,
                        NOW + timedelta(seconds=1), NOW + timedelta(hours=1)])


@st.composite
def situations(draw):
    team = draw(st.sampled_from([None, "acme"]))
    locked = draw(st.booleans()) if team else False
    facts = {
        "name": "myapp",
        "team": team,
        "owner": draw(emails) if team is None else None,
        "locked": locked,
        "locked_at": draw(moments) if locked else None,
    }
    role = draw(roles)
    who = {
        "email": draw(emails),
        "role": role,
        "member_since": draw(moments) if role else None,
        "grant": draw(grants),
        "origin": draw(st.sampled_from(["granted", "creator", "transfer", "join", "collaborator"])),
        "expires_at": draw(ends),
        "now": NOW,
    }
    return facts, who


def _policy_inputs(facts: dict, who: dict) -> tuple[AppFacts, Standing]:
    app = AppFacts(facts["name"], facts["team"], facts["owner"], facts["locked"], facts["locked_at"])
    standing = Standing(
        who["email"], who["role"], who["member_since"],
        frozenset(who["grant"]) if who["grant"] is not None else None,
        who["origin"] if who["grant"] is not None else None,
        who["expires_at"] if who["grant"] is not None else None,
        who["now"],
    )
    return app, standing


def _naive_held(facts: dict, who: dict) -> dict[str, list[str]]:
    return naive_permissions(
        team=facts["team"], owner=facts["owner"], locked=facts["locked"],
        locked_at=facts["locked_at"], email=who["email"], role=who["role"],
        member_since=who["member_since"], grant=who["grant"],
        expires_at=who["expires_at"], now=who["now"],
    )


def _naive_live_grant(who: dict) -> list[str] | None:
    """The grant as the app table reads "holding a grant": an ended one is held no more."""
    if who["grant"] is not None and who["expires_at"] is not None and who["now"] >= who["expires_at"]:
        return None
    return who["grant"]


# -- the comparisons -------------------------------------------------------------------------


@settings(max_examples=400, deadline=None)
@given(situations())
def test_effective_permissions_agree_with_the_naive_reading(situation):
    facts, who = situation
    app, standing = _policy_inputs(facts, who)
    eff = effective_permissions(app, standing)
    held = _naive_held(facts, who)
    assert set(eff.permissions) == set(held)
    for perm in EVERY_PERMISSION:
        policy_sources = sorted(_SOURCE_NAME[p.source] for p in eff.why(perm))
        assert policy_sources == sorted(held.get(perm, [])), perm


@settings(max_examples=400, deadline=None)
@given(situations(), st.sampled_from(list(AppAction)))
def test_every_app_decision_agrees_with_the_naive_reading(situation, action):
    facts, who = situation
    app, standing = _policy_inputs(facts, who)
    held = _naive_held(facts, who)
    expected = naive_app(action.name, facts, who["email"], who["role"], _naive_live_grant(who), held)
    d = decide_app(action, app, standing)
    assert d.allowed is expected, (action, facts, who, d)
    assert d.reasons and all(r.strip() for r in d.reasons)


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(list(TeamAction)),
    st.sampled_from(NAIVE_COLUMNS),
    st.booleans(),
    st.from_regex(r"[a-z][a-z0-9-]{0,28}[a-z0-9]", fullmatch=True),
)
def test_every_team_decision_agrees_with_the_naive_reading(action, rel, owns_app, team):
    d = decide_team(action, team, Relation(rel), owns_app=owns_app)
    assert d.allowed is naive_team(action.name, rel, owns_app)
    assert d.reasons and all(r.strip() for r in d.reasons)
    if not d.allowed:
        assert team in d.reason


def test_the_naive_team_table_names_every_action():
    assert set(NAIVE_TEAM_TABLE) == {a.name for a in TeamAction}


# -- the rules on team users and grants (SPEC "Rules that always hold" 1, 4, 5) ---------------


def naive_admins_remain(admins_after: int) -> bool:
    """Rule 1: "Every team has at least one admin."""
    return admins_after >= 1


def naive_grant_target_ok(team: str | None, role: str | None) -> bool:
    """Rule 5: "Granting to a team admin ... is refused as redundant"."""
    return not (team is not None and role == "admin")


def naive_sees(actor_role: str | None, user_role: str | None, holds_grant: bool) -> bool:
    """Rule 4: "A collaborator never sees ... the team's users"; like Heroku's `access`, the
    app's admins and grant holders are still listed to them. Team users see everyone."""
    if actor_role in ("admin", "member", "viewer"):
        return True
    return user_role == "admin" or holds_grant


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 5), st.integers(0, 5))
def test_the_last_admin_rule_agrees_with_the_naive_reading(before, after):
    d = decide_admins_remain("acme", before, after, change="remove joe@acme.com")
    assert d.allowed is naive_admins_remain(after)
    assert d.reasons and all(r.strip() for r in d.reasons)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from([None, "acme"]), roles)
def test_the_grant_target_rule_agrees_with_the_naive_reading(team, role):
    assert decide_grant_target(team, "joe@acme.com", role).allowed is naive_grant_target_ok(team, role)


@settings(max_examples=200, deadline=None)
@given(roles, roles, st.booleans())
def test_collaborator_visibility_agrees_with_the_naive_reading(actor_role, user_role, holds_grant):
    assert users_visible_to(actor_role).shows(user_role, holds_grant) is naive_sees(
        actor_role, user_role, holds_grant)
