"""The access-request rules of store/policy.py: decision-table rows written out literally, and a
naive second reading of the SPEC compared with the policy over every combination of the small
dimensions (role, grant, lock, what is asked, the reason, a pending request; decider standing,
status, age).

The naive rules share no code with store/policy.py (only conftest's naive effective permissions).
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest
from conftest import naive_permissions
from teamaccess.store.policy import (
    AppFacts,
    ApprovalPlan,
    Decision,
    RequestDecision,
    Standing,
    decide_request,
    decide_request_decision,
    decide_withdraw,
    plan_approval,
    request_status,
)

TEAM = "acme-widgets"
APP = "myapp"
NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
LOCKED_AT = NOW - timedelta(days=100)
BEFORE_LOCK = LOCKED_AT - timedelta(days=30)
AFTER_LOCK = LOCKED_AT + timedelta(days=30)

UNLOCKED = AppFacts(APP, TEAM)
LOCKED = AppFacts(APP, TEAM, locked=True, locked_at=LOCKED_AT)
PERSONAL = AppFacts(APP, None, owner="joe@acme.com")


def who(role: str | None = None, grant: set[str] | None = None, *, email: str = "joe@acme.com",
        since: datetime | None = BEFORE_LOCK, ends: datetime | None = None) -> Standing:
    return Standing(email, role, since if role else None,
                    frozenset(grant) if grant is not None else None,
                    "granted" if grant is not None else None, ends, NOW)


def asks(*perms: str) -> frozenset[str]:
    return frozenset({"view", *perms})


# -- who may request: one row per rule ----------------------------------------------------------

REQUEST_ROWS = [
    # (id, app, standing, asked, reason, pending id, allowed, rule)
    ("member asks for deploy", UNLOCKED, who("member"), asks("deploy"), "on call", None,
     True, "request"),
    ("viewer asks for operate", UNLOCKED, who("viewer"), asks("operate"), "on call", None,
     True, "request"),
    ("member who joined after the lock asks for view", LOCKED, who("member", since=AFTER_LOCK),
     asks(), "need to read logs", None, True, "request"),
    ("collaborator of that app asks for deploy", UNLOCKED, who(None, {"view"}), asks("deploy"),
     "contract work", None, True, "request"),
    ("collaborator whose grant ended is told when", UNLOCKED, who(None, {"view"}, ends=NOW),
     asks("deploy"), "x", None, False, "request:grant_ended"),
    ("member whose deploy grant ended may ask again", UNLOCKED,
     who("member", {"view", "deploy"}, ends=NOW - timedelta(hours=1)), asks("deploy"), "x", None,
     True, "request"),
    ("member with deploy until later holds it", UNLOCKED,
     who("member", {"view", "deploy"}, ends=NOW + timedelta(seconds=1)), asks("deploy"), "x",
     None, False, "request:already_held"),
    ("stranger is told the app isn't there", UNLOCKED, who(None, None), asks("deploy"), "x", None,
     False, "request:stranger"),
    ("admin has everything already", UNLOCKED, who("admin"), asks("deploy"), "x", None,
     False, "request:admin"),
    ("someone else's personal app is not there", PERSONAL, who(None, None, email="ann@acme.com"),
     asks("deploy"), "x", None, False, "request:stranger"),
    ("one's own personal app: nothing to ask", PERSONAL, who(None, None), asks("deploy"), "x", None,
     False, "request:personal"),
    ("no reason", UNLOCKED, who("member"), asks("deploy"), "", None, False,
     "request:reason:missing"),
    ("a blank reason", UNLOCKED, who("member"), asks("deploy"), " \t ", None, False,
     "request:reason:missing"),
    ("a reason with a terminal escape", UNLOCKED, who("member"), asks("deploy"),
     "ok\x1b[2Jwiped", None, False, "request:reason:unsafe"),
    ("a reason over two lines", UNLOCKED, who("member"), asks("deploy"), "one\ntwo", None,
     False, "request:reason:unsafe"),
    ("a reason with a bidi override", UNLOCKED, who("member"), asks("deploy"), "abc\u202edef",
     None, False, "request:reason:unsafe"),
    ("a reason of 501 characters", UNLOCKED, who("member"), asks("deploy"), "x" * 501, None,
     False, "request:reason:too_long"),
    ("a reason of 500 characters", UNLOCKED, who("member"), asks("deploy"), "x" * 500, None,
     True, "request"),
    ("member asks for the view the team gives", UNLOCKED, who("member"), asks(), "x", None,
     False, "request:already_held"),
    ("grant holder asks for what the grant holds", UNLOCKED, who("member", {"view", "deploy"}),
     asks("deploy"), "x", None, False, "request:already_held"),
    ("grant holder asks for part held, part new", UNLOCKED, who("member", {"view", "deploy"}),
     asks("deploy", "operate"), "x", None, True, "request"),
    ("a second request while one is pending", UNLOCKED, who("member"), asks("deploy"), "x", 7,
     False, "request:already_pending"),
]


@pytest.mark.parametrize(("app", "standing", "asked", "reason", "pending", "allowed", "rule"),
                         [pytest.param(*row[1:], id=row[0]) for row in REQUEST_ROWS])
def test_who_may_request(app, standing, asked, reason, pending, allowed, rule):
    d = decide_request(app, standing, asked, reason, pending_id=pending)
    assert d.allowed is allowed, d
    assert d.rule == rule
    assert d.reason.strip()


def test_the_refusals_say_what_to_do():
    stranger = decide_request(UNLOCKED, who(None, None), asks("deploy"), "x")
    assert stranger.reason == "Couldn't find that app: myapp. Run 'teamaccess apps' to list yours."
    pending = decide_request(UNLOCKED, who("member"), asks("deploy"), "x", pending_id=12)
    assert "you already asked: request 12" in pending.reason.lower()
    admin = decide_request(UNLOCKED, who("admin"), asks("deploy"), "x")
    assert "team admin" in admin.reason and "nothing to request" in admin.reason


# -- who may approve or deny ----------------------------------------------------------------------

ADA = "ada@acme.com"
JOE = "joe@acme.com"
FILED = NOW - timedelta(hours=1)

DECISION_ROWS = [
    # (id, decider standing, status, created_at, allowed, rule)
    ("team admin approves", who("admin", email=ADA), "pending", FILED, True,
     "request_decision:approve"),
    ("manage holder approves", who("member", {"view", "manage"}, email=ADA), "pending", FILED,
     True, "request_decision:approve"),
    ("collaborator with manage approves", who(None, {"view", "manage"}, email=ADA), "pending",
     FILED, True, "request_decision:approve"),
    ("member without manage may not", who("member", email=ADA), "pending", FILED, False,
     "request_decision:manage"),
    ("deploy holder may not", who("member", {"view", "deploy"}, email=ADA), "pending", FILED,
     False, "request_decision:manage"),
    ("stranger is told there's no such request", who(None, None, email=ADA), "pending", FILED,
     False, "request_decision:unknown"),
    ("the requester may not, even as an admin", who("admin", email=JOE), "pending", FILED, False,
     "request_decision:own"),
    ("the requester with manage may not", who("member", {"view", "manage"}, email=JOE), "pending",
     FILED, False, "request_decision:own"),
    ("an approved request is not decided again", who("admin", email=ADA), "approved", FILED, False,
     "request_decision:decided"),
    ("a denied request is not decided again", who("admin", email=ADA), "denied", FILED, False,
     "request_decision:decided"),
    ("one second before 7 days it is still pending", who("admin", email=ADA), "pending",
     NOW - timedelta(days=7) + timedelta(seconds=1), True, "request_decision:approve"),
    ("at 7 days it has lapsed", who("admin", email=ADA), "pending", NOW - timedelta(days=7), False,
     "request_decision:lapsed"),
    ("one second after 7 days it has lapsed", who("admin", email=ADA), "pending",
     NOW - timedelta(days=7, seconds=1), False, "request_decision:lapsed"),
    ("a lapsed status stored is lapsed", who("admin", email=ADA), "lapsed", FILED, False,
     "request_decision:lapsed"),
]


@pytest.mark.parametrize("decision", list(RequestDecision))
@pytest.mark.parametrize(("decider", "status", "created_at", "allowed", "rule"),
                         [pytest.param(*row[1:], id=row[0]) for row in DECISION_ROWS])
def test_who_may_decide(decision, decider, status, created_at, allowed, rule):
    d = decide_request_decision(decision, 12, UNLOCKED, decider, requester=JOE, status=status,
                                created_at=created_at, now=NOW, decided_by="grace@acme.com")
    assert d.allowed is allowed, d
    expected_rule = f"request_decision:{decision.value}" if allowed else rule
    assert d.rule == expected_rule


def test_a_decided_request_names_who_decided():
    d = decide_request_decision(RequestDecision.DENY, 12, UNLOCKED, who("admin", email=ADA),
                                requester=JOE, status="approved", created_at=FILED, now=NOW,
                                decided_by="grace@acme.com")
    assert d.reason.startswith("Request 12 was already approved by grace@acme.com")


def test_no_decision_on_a_personal_app():
    """An app moved out of its team: a stranger still sees nothing, its owner can't decide."""
    d = decide_request_decision(RequestDecision.APPROVE, 3, PERSONAL,
                                who(None, None, email=ADA), requester=JOE, status="pending",
                                created_at=FILED, now=NOW)
    assert not d.allowed and d.rule == "request_decision:unknown"
    owned = AppFacts(APP, None, owner=ADA)
    d = decide_request_decision(RequestDecision.DENY, 3, owned, who(None, None, email=ADA),
                                requester=JOE, status="pending", created_at=FILED, now=NOW)
    assert not d.allowed and d.rule == "request_decision:personal"
    assert "personal app" in d.reason


@pytest.mark.parametrize(("status", "age", "expected"), [
    ("pending", timedelta(0), "pending"),
    ("pending", timedelta(days=7) - timedelta(seconds=1), "pending"),
    ("pending", timedelta(days=7), "lapsed"),
    ("pending", timedelta(days=30), "lapsed"),
    ("approved", timedelta(days=30), "approved"),
    ("denied", timedelta(days=30), "denied"),
])
def test_lapse_is_decided_at_read_time(status, age, expected):
    assert request_status(status, NOW - age, NOW) == expected


# -- what an approval does to the requester's grant ----------------------------------------------

LATER = NOW + timedelta(hours=8)
SOONER = NOW + timedelta(hours=1)

APPROVAL_ROWS = [
    # (id, requester (their grant's end in it), asked, approval's end, expected: (perms, end,
    # creates) or the refusing rule)
    ("no grant, temporary approval: a new grant", who("member"), asks("deploy"), LATER,
     ({"view", "deploy"}, LATER, True)),
    ("no grant, permanent approval", who("member"), asks("deploy"), None,
     ({"view", "deploy"}, None, True)),
    ("temporary grant widens to the union and the later end when the request names it all",
     who("member", {"view", "operate"}, ends=SOONER), asks("deploy", "operate"), LATER,
     ({"view", "operate", "deploy"}, LATER, False)),
    ("a later end would carry operate, which nobody asked for, past its end: refused",
     who("member", {"view", "operate"}, ends=SOONER), asks("deploy"), LATER,
     "approve:extends_unasked"),
    ("view alone is carried along (every grant holds it)",
     who(None, {"view"}, ends=SOONER), asks("deploy"), LATER,
     ({"view", "deploy"}, LATER, False)),
    ("a shorter approval would last until the grant's end: refused",
     who("member", {"view", "operate"}, ends=LATER), asks("deploy"), SOONER,
     "approve:shorter_than_grant"),
    ("an approval ending with the grant widens it",
     who("member", {"view", "operate"}, ends=LATER), asks("deploy"), LATER,
     ({"view", "operate", "deploy"}, LATER, False)),
    ("a permanent approval of a temporary grant: refused (it would make operate permanent)",
     who("member", {"view", "operate"}, ends=SOONER), asks("deploy"), None,
     "approve:temporary_grant"),
    ("permanent grant, permanent approval: the union", who("member", {"view", "operate"}),
     asks("deploy"), None, ({"view", "operate", "deploy"}, None, False)),
    ("permanent grant, temporary approval: refused", who("member", {"view", "operate"}),
     asks("deploy"), LATER, "approve:permanent_grant"),
    ("an ended grant counts as none: a new grant", who("member", {"view", "operate"}, ends=NOW),
     asks("deploy"), LATER, ({"view", "deploy"}, LATER, True)),
    ("requester left the team, no grant: refused", who(None, None), asks("deploy"), None,
     "approve:requester_gone"),
    ("collaborator whose grant ended: refused", who(None, {"view"}, ends=NOW - timedelta(seconds=1)),
     asks("deploy"), None, "approve:requester_gone"),
    ("requester became an admin: refused", who("admin"), asks("deploy"), None,
     "approve:requester_admin"),
    ("requester already holds it: refused", who("member", {"view", "deploy"}), asks("deploy"),
     None, "approve:already_held"),
    ("collaborator who kept their grant widens it", who(None, {"view"}), asks("deploy"),
     None, ({"view", "deploy"}, None, False)),
]


@pytest.mark.parametrize(("requester", "asked", "ends_at", "expected"),
                         [pytest.param(*row[1:], id=row[0]) for row in APPROVAL_ROWS])
def test_what_an_approval_does(requester, asked, ends_at, expected):
    plan = plan_approval(UNLOCKED, requester, asked, ends_at=ends_at)
    if isinstance(expected, str):
        assert isinstance(plan, Decision) and not plan.allowed and plan.rule == expected
        assert plan.reason.strip()
    else:
        assert plan == ApprovalPlan(frozenset(expected[0]), expected[1], expected[2])


def test_a_temporary_grant_refusal_names_its_end_and_the_way_out():
    plan = plan_approval(UNLOCKED, who("member", {"view", "operate"}, ends=SOONER), asks("deploy"),
                         ends_at=None)
    assert isinstance(plan, Decision)
    assert f"has a temporary grant on myapp until {SOONER:%Y-%m-%d %H:%M:%S} UTC" in plan.reason
    assert "--expires-in" in plan.reason and "access:update" in plan.reason


def test_a_permanent_grant_refusal_names_the_way_out():
    plan = plan_approval(UNLOCKED, who("member", {"view"}), asks("deploy"), ends_at=LATER)
    assert isinstance(plan, Decision)
    assert "has a permanent grant on myapp" in plan.reason and "access:update" in plan.reason


# -- the naive reading, over every combination ----------------------------------------------------

ROLES = ["admin", "member", "viewer", None]
GRANTS = [None, ["view"], ["view", "deploy"], ["view", "manage"]]
ENDS = [None, NOW - timedelta(hours=1), NOW, NOW + timedelta(hours=1)]  # the grant's end
APPS = {"unlocked": (False, None), "locked": (True, LOCKED_AT)}
SINCES = [BEFORE_LOCK, AFTER_LOCK]
ASKED = [["view"], ["view", "deploy"], ["view", "deploy", "manage"]]
REASONS = ["", "fix the release", "bad\x07bell", "y" * 501]


def naive_live(grant, end):
    """SPEC "Temporary access": from its end on, a grant gives nothing."""
    if grant is None:
        return None
    if end is not None and not NOW < end:
        return None
    return grant


def naive_request(role, grant, end, locked, locked_at, since, asked, reason, pending) -> bool:
    """SPEC: "access:request ... by a team user, or a collaborator of that app, files a pending
    request (a reason is required)"; the brief: an admin has everything; asking for what one
    holds, or a second pending request, is refused; a reason is one safe line of at most 500."""
    live = naive_live(grant, end)
    if role is None and live is None:
        return False  # a stranger: the app doesn't exist for them
    if role == "admin":
        return False
    text = reason.strip()
    if text == "" or len(text) > 500 or any(ord(c) < 32 or ord(c) == 127 for c in text):
        return False
    held = naive_permissions(team=TEAM, owner=None, locked=locked, locked_at=locked_at,
                             email=JOE, role=role, member_since=since if role else None,
                             grant=live)
    if all(p in held for p in asked):
        return False
    return pending is None


def _standing(email, role, grant, end, since=BEFORE_LOCK) -> Standing:
    return Standing(email, role, since if role else None,
                    frozenset(grant) if grant is not None else None,
                    "granted" if grant is not None else None,
                    end if grant is not None else None, NOW)


def test_requesting_agrees_with_the_naive_reading():
    checked = 0
    for role, grant, end, (locked, locked_at), since, asked, reason, pending in itertools.product(
            ROLES, GRANTS, ENDS, APPS.values(), SINCES, ASKED, REASONS, [None, 4]):
        app = AppFacts(APP, TEAM, locked=locked, locked_at=locked_at)
        d = decide_request(app, _standing(JOE, role, grant, end, since), frozenset(asked), reason,
                           pending_id=pending)
        expected = naive_request(role, grant, end, locked, locked_at, since, asked, reason, pending)
        assert d.allowed is expected, (role, grant, end, locked, since, asked, reason, pending, d)
        checked += 1
    assert checked == 4 * 4 * 4 * 2 * 2 * 3 * 4 * 2


def naive_decide(decider_email, role, grant, end, status, age) -> bool:
    """SPEC: approve/deny "are for whoever may grant on that app (team admins, manage holders),
    never the requester"; "A request is decided once; one that waits 7 days lapses"."""
    if decider_email == JOE:
        return False
    live = naive_live(grant, end)
    may_grant = role == "admin" or (live is not None and "manage" in live)
    if not may_grant:
        return False
    return status == "pending" and age < timedelta(days=7)


def test_deciding_agrees_with_the_naive_reading():
    ages = [timedelta(0), timedelta(days=7) - timedelta(seconds=1), timedelta(days=7),
            timedelta(days=8)]
    checked = 0
    for decision, email, role, grant, end, status, age, (locked, locked_at) in itertools.product(
            list(RequestDecision), [ADA, JOE], ROLES, GRANTS, ENDS,
            ["pending", "approved", "denied", "lapsed"], ages, APPS.values()):
        app = AppFacts(APP, TEAM, locked=locked, locked_at=locked_at)
        d = decide_request_decision(decision, 5, app, _standing(email, role, grant, end),
                                    requester=JOE, status=status, created_at=NOW - age, now=NOW)
        assert d.allowed is naive_decide(email, role, grant, end, status, age), (
            decision, email, role, grant, end, status, age, d)
        checked += 1
    assert checked == 2 * 2 * 4 * 4 * 4 * 4 * 4 * 2


# -- withdrawing one's own request ----------------------------------------------------------------

WITHDRAW_ROWS = [
    # (id, actor, may decide it, status, age, rule)
    ("the requester, while pending", "joe@acme.com", True, "pending", timedelta(days=6), "request_withdraw"),
    ("a decider may only deny", "ada@acme.com", True, "pending", timedelta(0), "request_withdraw:not_yours"),
    ("a stranger is told it doesn't exist", "eve@evil.example", False, "pending", timedelta(0),
     "request_withdraw:unknown"),
    ("lapsed: nothing to withdraw", "joe@acme.com", True, "pending", timedelta(days=7), "request_withdraw:lapsed"),
    ("approved: decided once", "joe@acme.com", True, "approved", timedelta(0), "request_withdraw:decided"),
    ("denied: decided once", "joe@acme.com", True, "denied", timedelta(0), "request_withdraw:decided"),
    ("withdrawn already", "joe@acme.com", True, "withdrawn", timedelta(0), "request_withdraw:decided"),
]


@pytest.mark.parametrize(("actor", "may_decide", "status", "age", "rule"),
                         [pytest.param(*row[1:], id=row[0]) for row in WITHDRAW_ROWS])
def test_who_may_withdraw(actor, may_decide, status, age, rule):
    d = decide_withdraw(4, actor, "joe@acme.com", may_decide=may_decide, status=status, created_at=NOW - age,
                        now=NOW, decided_by="ada@acme.com")
    assert d.rule == rule and d.allowed is (rule == "request_withdraw")
    if rule == "request_withdraw:unknown":
        assert d.reason.startswith("No request 4 among the requests you can see")
    if status == "approved":
        assert d.reason == "Request 4 was already approved by ada@acme.com: there is nothing to withdraw."
