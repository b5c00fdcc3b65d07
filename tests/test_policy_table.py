"""SPEC "Who may do what" and "Effective permissions", one test row per cell of each table.

The expected answers are written out literally, as grids that mirror the SPEC's tables, so a
reader can check each cell against the SPEC by eye; nothing here is computed from store.policy.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from teamaccess.store.policy import (
    ALL,
    AppAction,
    AppFacts,
    Relation,
    Source,
    Standing,
    TeamAction,
    creator_grant,
    decide_admins_remain,
    decide_app,
    decide_collaborator_target,
    decide_grant_target,
    decide_granted_end,
    decide_new_grant,
    decide_own_grant,
    decide_prune,
    decide_role_target,
    decide_team,
    effective_permissions,
    explain_missing,
    grant_in_force,
    users_visible_to,
)

TEAM = "acme-widgets"
APP = "myapp"
LOCKED_AT = datetime(2024, 6, 3, 14, 30, tzinfo=UTC)
BEFORE_LOCK = LOCKED_AT - timedelta(days=30)
AFTER_LOCK = LOCKED_AT + timedelta(days=30)
UNLOCKED_SINCE = datetime(2024, 1, 1, tzinfo=UTC)
#: "now" for the temporary-grant rows, and a grant's end around it
NOW = datetime(2024, 7, 1, 12, 0, tzinfo=UTC)
SECOND = timedelta(seconds=1)

# -- team-level table ------------------------------------------------------------------------

COLUMNS = (Relation.ADMIN, Relation.MEMBER, Relation.VIEWER, Relation.COLLABORATOR, Relation.OUTSIDER)

# The SPEC's team table, row by row: action, the SPEC's wording, and the five columns
# admin | member | viewer | collaborator | outsider. "own" = only for the actor's personal apps;
# "granted" = yes, limited to the apps granted to them.
TEAM_TABLE: tuple[tuple[TeamAction, str, str], ...] = (
    (TeamAction.LIST_MEMBERS, "list the team's users and their roles, MFA status", "yes yes yes no no"),
    (TeamAction.MANAGE_MEMBERS, "add a user / change a role / remove a user", "yes no no no no"),
    (TeamAction.ADD_COLLABORATOR, "add a collaborator from the team's Access page", "yes no no no no"),
    (TeamAction.LIST_APPS, "list all the team's apps", "yes yes yes granted no"),
    (TeamAction.VIEW_RESOURCES, "view resources", "yes yes yes no no"),
    (TeamAction.BILLING, "access billing", "yes no no no no"),
    (TeamAction.RENAME_TEAM, "rename the team", "yes no no no no"),
    (TeamAction.READ_AUDIT, "read the audit log", "yes no no no no"),
    (TeamAction.CREATE_APP, "create an app in the team", "yes yes no no no"),
    (TeamAction.TRANSFER_IN, "transfer an app into the team", "yes own no no no"),
    (TeamAction.TRANSFER_OUT, "transfer an app out of the team", "yes no no no no"),
)


def _team_cells():
    for action, words, row in TEAM_TABLE:
        cells = row.split()
        assert len(cells) == len(COLUMNS), words
        for rel, cell in zip(COLUMNS, cells, strict=True):
            for owns_app in (False, True):
                if cell == "own":
                    allowed = owns_app
                else:
                    allowed = cell in ("yes", "granted")
                whose = " (own personal app)" if owns_app else " (someone else's app)"
                # owns_app only matters for transfer-in; elsewhere one row per cell is enough.
                if action is not TeamAction.TRANSFER_IN and owns_app:
                    continue
                if action is not TeamAction.TRANSFER_IN:
                    whose = ""
                verdict = "may" if allowed else "may not"
                yield pytest.param(
                    action, rel, owns_app, allowed, cell,
                    id=f"{rel.value} {verdict} {words}{whose}",
                )


@pytest.mark.parametrize(("action", "rel", "owns_app", "allowed", "cell"), list(_team_cells()))
def test_team_table(action, rel, owns_app, allowed, cell):
    d = decide_team(action, TEAM, rel, owns_app=owns_app)
    assert d.allowed is allowed
    assert bool(d) is allowed
    assert d.reasons and all(r.strip() for r in d.reasons)
    # The rule names the SPEC row that decided.
    assert d.rule.startswith(f"team:{action.name.lower()}")
    if allowed:
        assert rel.value in d.reason
        if cell == "granted":
            assert d.rule == "team:list_apps:granted_only"
            assert "only the apps granted" in d.reason
    else:
        # A refusal says to whom it applies and names the team.
        assert TEAM in d.reason
        assert "\n" not in d.reason


def test_team_table_covers_every_action():
    assert {row[0] for row in TEAM_TABLE} == set(TeamAction)


# -- app-level table -------------------------------------------------------------------------

# Columns of the app-level grids: the lock state (U = unlocked; LB = locked, the membership
# began before the lock; LA = locked, membership began after the lock) times the actor's
# explicit grant (none / view-only / view+manage). For admin and for accounts with no role
# the membership time has no meaning, and LA repeats LB with the membership moved after the lock.
GRID_COLUMNS = (
    ("U", None), ("U", "view"), ("U", "manage"),
    ("LB", None), ("LB", "view"), ("LB", "manage"),
    ("LA", None), ("LA", "view"), ("LA", "manage"),
)
ROLES = ("admin", "member", "viewer", None)  # None: no membership (collaborator or outsider)

# One grid per row of the SPEC's app-level table; a row per role, a cell per column above.
#                            U: none view manage | LB: none view manage | LA: none view manage
APP_TABLE: dict[AppAction, dict[str | None, str]] = {
    # anyone with view on it (effective)
    AppAction.VIEW: {
        "admin":  "Y Y Y  Y Y Y  Y Y Y",
        "member": "Y Y Y  Y Y Y  N Y Y",
        "viewer": "Y Y Y  Y Y Y  N Y Y",
        None:     "N Y Y  N Y Y  N Y Y",
    },
    # team admins; accounts with manage; refused when already locked
    AppAction.LOCK: {
        "admin":  "Y Y Y  N N N  N N N",
        "member": "N N Y  N N N  N N N",
        "viewer": "N N Y  N N N  N N N",
        None:     "N N Y  N N N  N N N",
    },
    # team admins; accounts with manage; refused when not locked
    AppAction.UNLOCK: {
        "admin":  "N N N  Y Y Y  Y Y Y",
        "member": "N N N  N N Y  N N Y",
        "viewer": "N N N  N N Y  N N Y",
        None:     "N N N  N N Y  N N Y",
    },
    # grant, change or revoke permissions: team admins; accounts with manage
    AppAction.MANAGE_ACCESS: {
        "admin":  "Y Y Y  Y Y Y  Y Y Y",
        "member": "N N Y  N N Y  N N Y",
        "viewer": "N N Y  N N Y  N N Y",
        None:     "N N Y  N N Y  N N Y",
    },
    # member/viewer on an unlocked app; an admin is refused as redundant; a second grant is
    # refused (they already have access)
    AppAction.JOIN: {
        "admin":  "N N N  N N N  N N N",
        "member": "Y N N  N N N  N N N",
        "viewer": "Y N N  N N N  N N N",
        None:     "N N N  N N N  N N N",
    },
    # anyone holding a grant on it
    AppAction.LEAVE: {
        "admin":  "N Y Y  N Y Y  N Y Y",
        "member": "N Y Y  N Y Y  N Y Y",
        "viewer": "N Y Y  N Y Y  N Y Y",
        None:     "N Y Y  N Y Y  N Y Y",
    },
    # team admins; accounts with manage
    AppAction.DESTROY: {
        "admin":  "Y Y Y  Y Y Y  Y Y Y",
        "member": "N N Y  N N Y  N N Y",
        "viewer": "N N Y  N N Y  N N Y",
        None:     "N N Y  N N Y  N N Y",
    },
}

# The rule id a decision must carry, per action (a refinement may follow after a colon).
RULE_PREFIX = {
    AppAction.VIEW: "app:view",
    AppAction.LOCK: "app:lock",
    AppAction.UNLOCK: "app:unlock",
    AppAction.MANAGE_ACCESS: "app:manage_access",
    AppAction.JOIN: "app:join",
    AppAction.LEAVE: "app:leave",
    AppAction.DESTROY: "app:destroy",
}

_GRANTS = {None: None, "view": frozenset({"view"}), "manage": frozenset({"view", "manage"})}


def _facts(lock: str) -> AppFacts:
    if lock == "U":
        return AppFacts(APP, TEAM, locked=False, locked_at=None)
    return AppFacts(APP, TEAM, locked=True, locked_at=LOCKED_AT)


def _standing(role: str | None, lock: str, grant: str | None) -> Standing:
    since = None
    if role is not None:
        since = AFTER_LOCK if lock == "LA" else (BEFORE_LOCK if lock == "LB" else UNLOCKED_SINCE)
    return Standing("joe@acme.com", role, since, _GRANTS[grant], "granted" if grant else None)


def _who(role: str | None, grant: str | None) -> str:
    if role is not None:
        return role
    return "collaborator" if grant else "outsider"


def _app_cells():
    lock_words = {"U": "unlocked", "LB": "locked, joined before the lock",
                  "LA": "locked, joined after the lock"}
    grant_words = {None: "no grant", "view": "view-only grant", "manage": "grant with manage"}
    for action, grid in APP_TABLE.items():
        for role in ROLES:
            cells = grid[role].split()
            assert len(cells) == len(GRID_COLUMNS), (action, role)
            for (lock, grant), cell in zip(GRID_COLUMNS, cells, strict=True):
                if role in (None, "admin") and lock == "LA":
                    lock_label = "locked, role-less" if role is None else "locked, made admin after"
                else:
                    lock_label = lock_words[lock]
                verdict = "may" if cell == "Y" else "may not"
                yield pytest.param(
                    action, role, lock, grant, cell == "Y",
                    id=f"{_who(role, grant)} ({lock_label}, {grant_words[grant]}) {verdict} {action.value}",
                )


@pytest.mark.parametrize(("action", "role", "lock", "grant", "allowed"), list(_app_cells()))
def test_app_table(action, role, lock, grant, allowed):
    facts = _facts(lock)
    d = decide_app(action, facts, _standing(role, lock, grant))
    assert d.allowed is allowed
    assert d.reasons and all(r.strip() for r in d.reasons)
    assert d.rule.startswith(RULE_PREFIX[action]), d.rule
    assert "\n" not in d.reason
    if not allowed:
        # A refusal names the app or the account it is about.
        assert APP in d.reason or "joe@acme.com" in d.reason
    elif action in (AppAction.LOCK, AppAction.UNLOCK, AppAction.MANAGE_ACCESS, AppAction.DESTROY):
        # Allowed by exactly one of the SPEC's two sources, and the reason says which.
        assert ("admin" in d.reason) if role == "admin" else ("manage" in d.reason)


def test_app_table_covers_every_action():
    assert set(APP_TABLE) == set(AppAction)


@pytest.mark.parametrize(
    ("action", "lock", "message"),
    [
        pytest.param(AppAction.LOCK, "LB", "cannot lock myapp. This app is already locked.",
                     id="lock a locked app: the seed's message"),
        pytest.param(AppAction.UNLOCK, "U", "cannot unlock myapp. This app is not locked.",
                     id="unlock an unlocked app: the seed's message"),
    ],
)
def test_lock_state_messages(action, lock, message):
    d = decide_app(action, _facts(lock), _standing("admin", lock, None))
    assert not d.allowed
    assert d.reason == message


def test_join_by_admin_is_refused_as_redundant():
    d = decide_app(AppAction.JOIN, _facts("U"), _standing("admin", "U", None))
    assert d.rule == "app:join:redundant"
    assert "already has every permission as a team admin" in d.reason


# -- personal apps ---------------------------------------------------------------------------

OWNER = "ada@acme.com"
PERSONAL = AppFacts("ada-sandbox", None, owner=OWNER)

# action: (owner may, anyone else may); an account left holding a stray grant (none of the
# operations makes one, but an import could) may still drop it: leave is "anyone holding a grant".
PERSONAL_TABLE = {
    AppAction.VIEW: (True, False),
    AppAction.LOCK: (False, False),
    AppAction.UNLOCK: (False, False),
    AppAction.MANAGE_ACCESS: (False, False),
    AppAction.JOIN: (False, False),
    AppAction.LEAVE: (False, False),
    AppAction.DESTROY: (True, False),
}


def _personal_cells():
    for action, (owner_may, other_may) in PERSONAL_TABLE.items():
        yield pytest.param(action, Standing(OWNER), owner_may,
                           id=f"personal app owner {'may' if owner_may else 'may not'} {action.value}")
        yield pytest.param(action, Standing("joe@acme.com"), other_may,
                           id=f"personal app non-owner may not {action.value}")
        stray_may = action is AppAction.LEAVE
        yield pytest.param(action, Standing("joe@acme.com", grant=ALL, grant_origin="granted"),
                           stray_may,
                           id=f"personal app non-owner with a stray grant "
                              f"{'may' if stray_may else 'may not'} {action.value}")


@pytest.mark.parametrize(("action", "who", "allowed"), list(_personal_cells()))
def test_personal_app_table(action, who, allowed):
    d = decide_app(action, PERSONAL, who)
    assert d.allowed is allowed
    assert d.reasons and all(r.strip() for r in d.reasons)
    assert d.rule.startswith(RULE_PREFIX[action]), d.rule
    if not allowed:
        assert PERSONAL.name in d.reason or who.email in d.reason


# -- effective permissions with provenance ---------------------------------------------------

EFFECTIVE_ROWS = [
    pytest.param(
        _facts("U"), _standing("admin", "U", None),
        {"view", "deploy", "operate", "manage"}, {Source.ADMIN_ROLE: ALL},
        id="admin role gives all four on an unlocked app",
    ),
    pytest.param(
        _facts("LA"), _standing("admin", "LA", None),
        {"view", "deploy", "operate", "manage"}, {Source.ADMIN_ROLE: ALL},
        id="admin role gives all four on a locked app, even made admin after the lock",
    ),
    pytest.param(
        _facts("U"), Standing("sam@freelance.dev", None, None, frozenset({"view", "deploy"}), "collaborator"),
        {"view", "deploy"}, {Source.GRANT: {"view", "deploy"}},
        id="explicit grant gives its set to a collaborator",
    ),
    pytest.param(
        _facts("LA"), Standing("joe@acme.com", "member", AFTER_LOCK, ALL, "creator"),
        ALL, {Source.GRANT: ALL},
        id="creator grant gives all four on a locked app to a member who joined after",
    ),
    pytest.param(
        _facts("U"), _standing("member", "U", None),
        {"view"}, {Source.TEAM_VIEW: {"view"}},
        id="member role on an unlocked app gives team view",
    ),
    pytest.param(
        _facts("U"), _standing("viewer", "U", None),
        {"view"}, {Source.TEAM_VIEW: {"view"}},
        id="viewer role on an unlocked app gives team view",
    ),
    pytest.param(
        _facts("LB"), _standing("member", "LB", None),
        {"view"}, {Source.TEAM_VIEW_KEPT: {"view"}},
        id="member who joined before the lock keeps view",
    ),
    pytest.param(
        _facts("LB"), _standing("viewer", "LB", None),
        {"view"}, {Source.TEAM_VIEW_KEPT: {"view"}},
        id="viewer who joined before the lock keeps view",
    ),
    pytest.param(
        _facts("LA"), _standing("member", "LA", None),
        set(), {},
        id="member who joined after the lock gets nothing",
    ),
    pytest.param(
        _facts("LA"), _standing("viewer", "LA", None),
        set(), {},
        id="viewer who joined after the lock gets nothing",
    ),
    pytest.param(
        _facts("LA"), Standing("joe@acme.com", "member", LOCKED_AT, None),
        set(), {},
        id="member who joined at the very moment of the lock gets nothing (before means before)",
    ),
    pytest.param(
        _facts("LA"), _standing("member", "LA", "view"),
        {"view"}, {Source.GRANT: {"view"}},
        id="member who joined after the lock sees it through a grant only",
    ),
    pytest.param(
        _facts("U"), Standing("joe@acme.com", "member", UNLOCKED_SINCE, frozenset({"view", "deploy"}), "granted"),
        {"view", "deploy"}, {Source.GRANT: {"view", "deploy"}, Source.TEAM_VIEW: {"view"}},
        id="member with a grant on an unlocked app: view from both, deploy from the grant",
    ),
    pytest.param(
        _facts("LB"), Standing("ada@acme.com", "admin", BEFORE_LOCK, frozenset({"view"}), "granted"),
        ALL, {Source.ADMIN_ROLE: ALL, Source.GRANT: {"view"}},
        id="admin holding an old grant: both sources shown",
    ),
    pytest.param(
        _facts("U"), Standing("eve@evil.example"),
        set(), {},
        id="outsider gets nothing (deny by default)",
    ),
    pytest.param(
        _facts("LB"), Standing("eve@evil.example"),
        set(), {},
        id="outsider gets nothing on a locked app",
    ),
    pytest.param(
        PERSONAL, Standing(OWNER),
        ALL, {Source.OWNER: ALL},
        id="personal app owner has all four",
    ),
    pytest.param(
        PERSONAL, Standing("joe@acme.com"),
        set(), {},
        id="personal app: anyone else has nothing",
    ),
    pytest.param(
        PERSONAL, Standing("joe@acme.com", grant=ALL, grant_origin="granted"),
        set(), {},
        id="personal app: a stray grant gives nothing (share it by moving it into a team)",
    ),
    pytest.param(
        PERSONAL, Standing("joe@acme.com", role="admin"),
        set(), {},
        id="personal app: a role in some team gives nothing",
    ),
]



def _temporary(role: str | None, ends: datetime | None, now: datetime | None = NOW,
               grant: frozenset[str] = frozenset({"view", "deploy"})) -> Standing:
    """joe on the unlocked app (a collaborator when ``role`` is None) with a grant ending at
    ``ends``, as of ``now``."""
    return Standing("joe@acme.com", role, UNLOCKED_SINCE if role else None, grant, "granted", ends, now)


# SPEC "Temporary access": "From that moment the grant gives nothing".
EFFECTIVE_ROWS += [
    pytest.param(
        _facts("U"), _temporary(None, NOW + SECOND),
        {"view", "deploy"}, {Source.GRANT: {"view", "deploy"}},
        id="temporary grant one second before its end gives its set",
    ),
    pytest.param(
        _facts("U"), _temporary(None, NOW),
        set(), {},
        id="temporary grant at the moment of its end gives nothing, not even view",
    ),
    pytest.param(
        _facts("U"), _temporary(None, NOW - SECOND),
        set(), {},
        id="temporary grant after its end gives nothing",
    ),
    pytest.param(
        _facts("U"), _temporary("member", NOW),
        {"view"}, {Source.TEAM_VIEW: {"view"}},
        id="member whose grant ended keeps only what the role gives",
    ),
    pytest.param(
        _facts("LA"), Standing("joe@acme.com", "member", AFTER_LOCK, ALL, "granted", NOW - SECOND, NOW),
        set(), {},
        id="member who joined after the lock, grant ended: nothing",
    ),
    pytest.param(
        _facts("U"), _temporary("admin", NOW - SECOND),
        ALL, {Source.ADMIN_ROLE: ALL},
        id="admin whose old grant ended: the role still gives all four",
    ),
    pytest.param(
        _facts("U"), _temporary(None, None),
        {"view", "deploy"}, {Source.GRANT: {"view", "deploy"}},
        id="grant with no end gives its set whatever the time",
    ),
    pytest.param(
        _facts("U"), _temporary(None, NOW + timedelta(days=90), now=None),
        set(), {},
        id="temporary grant with no clock to compare: nothing (deny by default)",
    ),
]


@pytest.mark.parametrize(("ends", "now", "in_force"), [
    pytest.param(None, NOW, True, id="no end: in force"),
    pytest.param(None, None, True, id="no end, no clock: in force"),
    pytest.param(NOW + SECOND, NOW, True, id="one second before the end: in force"),
    pytest.param(NOW, NOW, False, id="at the end: ended"),
    pytest.param(NOW - SECOND, NOW, False, id="one second after the end: ended"),
    pytest.param(NOW + SECOND, None, False, id="an end but no clock: not in force"),
])
def test_grant_in_force(ends, now, in_force):
    assert grant_in_force(ends, now) is in_force


def test_a_temporary_grant_says_when_it_ends():
    eff = effective_permissions(_facts("U"), _temporary(None, NOW + timedelta(hours=8)))
    (grant,) = eff.sources
    assert grant.detail == "explicit grant, until 2024-07-01 20:00:00 UTC"


# App decisions that read "holds a grant": an ended grant is held no more.
TEMPORARY_APP_ROWS = [
    pytest.param(AppAction.VIEW, _temporary(None, NOW + SECOND), True,
                 id="collaborator views while the grant lasts"),
    pytest.param(AppAction.VIEW, _temporary(None, NOW), False,
                 id="collaborator can't view once the grant ended"),
    pytest.param(AppAction.MANAGE_ACCESS, _temporary(None, NOW + SECOND, grant=ALL), True,
                 id="temporary manage lets one manage access while it lasts"),
    pytest.param(AppAction.MANAGE_ACCESS, _temporary(None, NOW, grant=ALL), False,
                 id="ended manage grant manages nothing"),
    pytest.param(AppAction.LOCK, _temporary(None, NOW - SECOND, grant=ALL), False,
                 id="ended manage grant can't lock"),
    pytest.param(AppAction.JOIN, _temporary("member", NOW), True,
                 id="member whose grant ended may join again"),
    pytest.param(AppAction.JOIN, _temporary("member", NOW + SECOND), False,
                 id="member whose grant lasts can't join: already has access"),
    pytest.param(AppAction.LEAVE, _temporary("member", NOW), False,
                 id="an ended grant can't be left: nothing held"),
    pytest.param(AppAction.LEAVE, _temporary("member", NOW + SECOND), True,
                 id="a lasting temporary grant can be left"),
]


@pytest.mark.parametrize(("action", "who", "allowed"), TEMPORARY_APP_ROWS)
def test_temporary_grants_in_app_decisions(action, who, allowed):
    d = decide_app(action, _facts("U"), who)
    assert d.allowed is allowed, d
    assert d.rule.startswith(RULE_PREFIX[action]), d.rule
    assert d.reasons and all(r.strip() for r in d.reasons)


@pytest.mark.parametrize(("admin", "manage", "allowed"), [
    pytest.param(True, False, True, id="a team admin may prune"),
    pytest.param(False, True, True, id="a manage holder may prune"),
    pytest.param(False, False, False, id="anyone else is refused: nothing of theirs to prune"),
])
def test_prune_rule(admin, manage, allowed):
    d = decide_prune(admin, manage)
    assert d.allowed is allowed and d.rule == "access:prune"
    if not allowed:
        assert "nothing was changed" in d.reason


@pytest.mark.parametrize(("app", "who", "expected", "sources"), EFFECTIVE_ROWS)
def test_effective_permissions(app, who, expected, sources):
    eff = effective_permissions(app, who)
    assert eff.permissions == frozenset(expected)
    got = {p.source: set(p.permissions) for p in eff.sources}
    assert got == {k: set(v) for k, v in sources.items()}
    for p in eff.sources:
        assert p.detail.strip()
    # why() answers from the same sources: each held permission has a source, others none.
    for perm in ("view", "deploy", "operate", "manage"):
        assert bool(eff.why(perm)) is (perm in expected)


def test_effective_permissions_say_where_a_creator_grant_comes_from():
    eff = effective_permissions(_facts("U"), Standing("joe@acme.com", "member", UNLOCKED_SINCE, ALL, "creator"))
    (grant,) = [p for p in eff.sources if p.source is Source.GRANT]
    assert "created" in grant.detail


# -- why not: the rule that leaves a permission out ------------------------------------------

MISSING_ROWS = [
    pytest.param(PERSONAL, Standing("joe@acme.com"), "view", "personal app",
                 id="personal app: only its owner"),
    pytest.param(_facts("U"), Standing("eve@evil.example"), "view", "not a user of acme-widgets",
                 id="outsider: not a user and no grant"),
    pytest.param(_facts("LA"), _standing("member", "LA", None), "view", "began after the lock",
                 id="member who joined after the lock lacks view: the lock"),
    pytest.param(_facts("LA"), _standing("member", "LA", None), "deploy", "began after the lock",
                 id="member who joined after the lock lacks deploy: the lock, not the role"),
    pytest.param(_facts("LB"), _standing("viewer", "LB", None), "deploy", "viewer role gives only view",
                 id="viewer kept at lock lacks deploy: the role gives only view"),
    pytest.param(_facts("U"), _standing("member", "U", None), "manage", "member role gives only view",
                 id="member on an unlocked app lacks manage: the role gives only view"),
    pytest.param(_facts("LA"), _standing(None, "LA", "view"), "deploy",
                 "grant does not include deploy",
                 id="collaborator with a view grant lacks deploy: the grant"),
]


MISSING_ROWS += [
    pytest.param(_facts("U"), _temporary(None, NOW), "view",
                 "grant expired at 2024-07-01 12:00:00 UTC; not a user of acme-widgets",
                 id="collaborator whose grant ended lacks view: expired at its end"),
    pytest.param(_facts("U"), _temporary("member", NOW - SECOND), "deploy",
                 "grant expired at 2024-07-01 11:59:59 UTC; the member role gives only view",
                 id="member whose grant ended lacks deploy: expired, and the role gives only view"),
    pytest.param(_facts("LA"), Standing("joe@acme.com", "member", AFTER_LOCK, ALL, "granted",
                                        NOW - SECOND, NOW), "view",
                 "grant expired at 2024-07-01 11:59:59 UTC; myapp is locked",
                 id="member after the lock whose grant ended: expired, then the lock"),
]


@pytest.mark.parametrize(("app", "who", "permission", "because"), MISSING_ROWS)
def test_explain_missing_names_the_rule(app, who, permission, because):
    assert permission not in effective_permissions(app, who).permissions
    assert because in explain_missing(app, who, permission)


# -- SPEC "Rules that always hold" 1, 4 and 5: the rules on team users and grants ------------

# Rule 1: (admins before, admins after, allowed). Every change that would leave no admin is
# refused, however it came about (a demotion, a removal, an import's rows).
ADMINS_REMAIN_ROWS = [
    pytest.param(1, 0, False, id="the only admin demoted or removed: refused"),
    pytest.param(2, 1, True, id="one of two admins demoted or removed: allowed"),
    pytest.param(3, 2, True, id="one of three admins leaves: allowed"),
    pytest.param(2, 0, False, id="an import that drops both admins: refused"),
    pytest.param(1, 1, True, id="a change that keeps the one admin: allowed"),
    pytest.param(0, 1, True, id="a team gaining its first admin: allowed"),
]


@pytest.mark.parametrize(("before", "after", "allowed"), ADMINS_REMAIN_ROWS)
def test_every_team_keeps_an_admin(before, after, allowed):
    d = decide_admins_remain(TEAM, before, after, change="remove joe@acme.com")
    assert d.allowed is allowed
    assert d.rule == "at-least-one-admin"
    if not allowed:
        assert d.reason.startswith("Can't remove joe@acme.com: ")
        assert TEAM in d.reason and "add another admin first" in d.reason
        if before == 1:
            assert "only admin" in d.reason


# Rule 5: granting to a team admin is redundant; to anyone else it is up to the other rules.
GRANT_TARGET_ROWS = [
    pytest.param(TEAM, "admin", False, id="a team admin: refused, nothing to grant"),
    pytest.param(TEAM, "member", True, id="a member: allowed"),
    pytest.param(TEAM, "viewer", True, id="a viewer: allowed"),
    pytest.param(TEAM, None, True, id="no role (collaborator or newcomer): allowed"),
    pytest.param(None, None, True, id="on a personal app nobody is a team admin: allowed"),
]


@pytest.mark.parametrize(("team", "role", "allowed"), GRANT_TARGET_ROWS)
def test_nothing_to_grant_an_admin(team, role, allowed):
    d = decide_grant_target(team, "joe@acme.com", role)
    assert d.allowed is allowed
    if not allowed:
        assert d.reason == (f"joe@acme.com already has every permission as a team admin of {TEAM}: "
                            "there is nothing to grant.")


def test_join_by_admin_and_grant_to_admin_give_the_same_reason():
    admin = _standing("admin", "U", None)
    join = decide_app(AppAction.JOIN, _facts("U"), admin)
    assert join.reason == decide_grant_target(TEAM, admin.email, "admin").reason


# members:add / members:set: whose role may become what. Columns: the target's relation and
# current role, the new role, create (add) or not (set), and the rule that answers.
ROLE_TARGET_ROWS = [
    (Relation.OUTSIDER, None, "member", True, "team:manage_members:target"),
    (Relation.COLLABORATOR, None, "viewer", True, "team:manage_members:target"),
    (Relation.OUTSIDER, None, "member", False, "team:manage_members:not_a_user"),
    (Relation.COLLABORATOR, None, "admin", False, "team:manage_members:not_a_user"),
    (Relation.MEMBER, "member", "admin", False, "team:manage_members:target"),
    (Relation.ADMIN, "admin", "member", True, "team:manage_members:target"),
    (Relation.MEMBER, "member", "member", False, "team:manage_members:same_role"),
    (Relation.ADMIN, "admin", "admin", True, "team:manage_members:same_role"),
]


@pytest.mark.parametrize(("target", "current", "new", "create", "rule"), ROLE_TARGET_ROWS)
def test_whose_role_may_become_what(target, current, new, create, rule):
    d = decide_role_target(TEAM, "joe@acme.com", target, current, new, create=create)
    assert d.rule == rule
    assert d.allowed is rule.endswith(":target")
    if rule.endswith("not_a_user"):
        kind = "only a collaborator" if target is Relation.COLLABORATOR else "not a user"
        assert d.reason == (f"joe@acme.com is {kind} of {TEAM}: add them first with "
                            f"'teamaccess members:add joe@acme.com --team {TEAM} --role {new}'.")
    if rule.endswith("same_role"):
        assert d.reason == f"joe@acme.com is already {'an' if new == 'admin' else 'a'} {new} of {TEAM}."


@pytest.mark.parametrize(("has_grant", "allowed"), [(False, True), (True, False)])
def test_one_grant_per_account_and_app(has_grant, allowed):
    d = decide_new_grant("joe@acme.com", APP, has_grant)
    assert d.allowed is allowed
    if not allowed:
        assert d.reason == f"joe@acme.com already has access to {APP}: use access:update."


@pytest.mark.parametrize(("actor", "target", "allowed"), [
    ("sam@free.dev", "sam@free.dev", False),  # not even with manage: no self-service extensions
    ("ada@acme.com", "sam@free.dev", True),
])
def test_nobody_grants_or_changes_their_own_access(actor, target, allowed):
    d = decide_own_grant(actor, target, APP)
    assert (d.allowed, d.rule) == (allowed, "grant:other" if allowed else "grant:own")
    if not allowed:
        assert d.reason == (f"You can't grant or change your own access to {APP}: ask another team "
                            f"admin or manage holder, or ask for it with 'teamaccess access:request "
                            f"--app {APP}'.")


# Add a collaborator: only for people outside the team (role None); an admin's refusal is rule 5's.
COLLABORATOR_TARGET_ROWS = [
    (None, True, "collaborator:target"),
    ("viewer", False, "collaborator:team_user"),
    ("member", False, "collaborator:team_user"),
    ("admin", False, "grant:redundant_for_admin"),
]


@pytest.mark.parametrize(("role", "allowed", "rule"), COLLABORATOR_TARGET_ROWS)
def test_a_collaborator_is_someone_outside_the_team(role, allowed, rule):
    d = decide_collaborator_target(TEAM, "joe@acme.com", role, APP)
    assert (d.allowed, d.rule) == (allowed, rule)
    if rule == "collaborator:team_user":
        assert d.reason == f"joe@acme.com is a user of {TEAM}: grant them permissions from {APP}'s access pane."


# apps:create: the creator's grant. Columns: team app or personal, the creator's role, the grant.
CREATOR_GRANT_ROWS = [
    (TEAM, "member", {"view", "deploy", "operate", "manage"}),
    (TEAM, "viewer", {"view", "deploy", "operate", "manage"}),
    (TEAM, "admin", set()),  # everything by role already (rule 5)
    (None, None, set()),  # a personal app's owner holds everything as owner
]


@pytest.mark.parametrize(("team", "role", "grant"), CREATOR_GRANT_ROWS)
def test_what_an_apps_creator_is_granted(team, role, grant):
    assert creator_grant(team, role) == grant


# Rule 4: which of a team's users an actor sees on an app's access pane (and may ask about).
# Columns: the user's role admin | member | viewer | none, without then with a grant on the app.
VISIBLE_TABLE = {
    # actor's role: "admin member viewer none" without a grant / with a grant
    "admin": ("yes yes yes yes", "yes yes yes yes"),
    "member": ("yes yes yes yes", "yes yes yes yes"),
    "viewer": ("yes yes yes yes", "yes yes yes yes"),
    None: ("yes no no no", "yes yes yes yes"),  # a collaborator: admins and grant holders only
}


def _visible_cells():
    for actor_role, (without, with_grant) in VISIBLE_TABLE.items():
        for holds_grant, row in ((False, without), (True, with_grant)):
            for user_role, cell in zip(("admin", "member", "viewer", None), row.split(), strict=True):
                yield pytest.param(
                    actor_role, user_role, holds_grant, cell == "yes",
                    id=f"{actor_role or 'collaborator'} {'sees' if cell == 'yes' else 'never sees'} "
                       f"{user_role or 'a no-role account'}{' holding a grant' if holds_grant else ''}",
                )


@pytest.mark.parametrize(("actor_role", "user_role", "holds_grant", "shown"), list(_visible_cells()))
def test_what_a_collaborator_may_see(actor_role, user_role, holds_grant, shown):
    assert users_visible_to(actor_role).shows(user_role, holds_grant) is shown


# What a temporary manager gives ends no later than their manage. Columns: the granter's role,
# their grant's end (None: for good), the end the change leaves, whether it widens anything.
_NOW = datetime(2030, 1, 1, tzinfo=UTC)
GRANTED_END_ROWS = [
    ("admin", None, None, True, True),
    (None, None, None, True, True),  # manage for good
    (None, _NOW + timedelta(hours=1), None, True, False),  # for good, from an hour's manage
    (None, _NOW + timedelta(hours=1), _NOW + timedelta(hours=2), True, False),
    (None, _NOW + timedelta(hours=1), _NOW + timedelta(hours=1), True, True),
    (None, _NOW + timedelta(hours=1), _NOW + timedelta(minutes=5), True, True),
    (None, _NOW + timedelta(hours=1), None, False, True),  # narrowing is always allowed
]


@pytest.mark.parametrize(("role", "manager_end", "ends_at", "widens", "allowed"), GRANTED_END_ROWS)
def test_nothing_a_temporary_manager_gives_outlasts_their_manage(role, manager_end, ends_at, widens, allowed):
    granter = Standing("mo@acme.com", role, BEFORE_LOCK, None if role else frozenset({"view", "manage"}),
                       None, manager_end, _NOW)
    d = decide_granted_end(_facts("U"), granter, ends_at, widens=widens)
    assert d.allowed is allowed
    assert d.rule == ("grant:end_within_manager" if allowed else "grant:outlasts_manager")
