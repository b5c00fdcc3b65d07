"""Pure decisions: who may do what, and which permissions an account has on an app and why.

No I/O and no session: the callers gather the facts, these functions decide. Deny is the
default: an action is allowed only by a named source (a role, a grant, ownership), and every
decision carries the reasons that decided it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

PERMISSIONS: tuple[str, ...] = ("view", "deploy", "operate", "manage")
ALL = frozenset(PERMISSIONS)


class Source(StrEnum):
    """Where a permission on an app comes from."""

    ADMIN_ROLE = "admin role"
    GRANT = "explicit grant"
    TEAM_VIEW = "team view"  # member/viewer on an unlocked app
    TEAM_VIEW_KEPT = "team view kept at lock"  # member/viewer who joined before the lock
    OWNER = "personal owner"


class Relation(StrEnum):
    """An actor's relation to a team, the columns of the SPEC's team table."""

    ADMIN = "admin"
    MEMBER = "member"
    VIEWER = "viewer"
    COLLABORATOR = "collaborator"
    OUTSIDER = "outsider"


class TeamAction(StrEnum):
    """The rows of the SPEC's team-level table."""

    LIST_MEMBERS = "list the team's users"
    MANAGE_MEMBERS = "add, change or remove team users"
    ADD_COLLABORATOR = "add a collaborator from the team page"
    LIST_APPS = "list the team's apps"
    VIEW_RESOURCES = "view resources"
    BILLING = "access billing"
    RENAME_TEAM = "rename the team"
    READ_AUDIT = "read the audit log"
    CREATE_APP = "create an app in the team"
    TRANSFER_IN = "transfer an app into the team"
    TRANSFER_OUT = "transfer an app out of the team"


class AppAction(StrEnum):
    """The rows of the SPEC's app-level table."""

    VIEW = "see the app and who has what on it"
    LOCK = "lock the app"
    UNLOCK = "unlock the app"
    MANAGE_ACCESS = "grant, change or revoke permissions"
    JOIN = "join the app"
    LEAVE = "leave the app"
    DESTROY = "destroy the app"


@dataclass(frozen=True)
class Decision:
    """The answer to "may this actor do this?", with the reasons and the rule that decided."""

    allowed: bool
    reasons: tuple[str, ...]
    rule: str

    def __bool__(self) -> bool:  # so `if decide(...)` reads naturally
        return self.allowed

    @property
    def reason(self) -> str:
        """The reasons as one line."""
        return "; ".join(self.reasons)


def _allow(rule: str, *reasons: str) -> Decision:
    return Decision(True, reasons, rule)


def _deny(rule: str, *reasons: str) -> Decision:
    return Decision(False, reasons, rule)


@dataclass(frozen=True)
class AppFacts:
    """What the policy needs to know of an app."""

    name: str
    team: str | None  # owning team, or None for a personal app
    owner: str | None = None  # owner's email for a personal app
    locked: bool = False
    locked_at: datetime | None = None


@dataclass(frozen=True)
class Standing:
    """What the policy needs to know of one account's relation to one app."""

    email: str
    role: str | None = None  # role in the app's team, if any
    member_since: datetime | None = None
    grant: frozenset[str] | None = None  # explicit grant, if any
    grant_origin: str | None = None  # creator, transfer, join, granted, collaborator, import


@dataclass(frozen=True)
class Provenance:
    """One source of permissions and what it gives."""

    source: Source
    permissions: frozenset[str]
    detail: str


@dataclass(frozen=True)
class Effective:
    """An account's effective permissions on an app, with every source that contributes."""

    permissions: frozenset[str]
    sources: tuple[Provenance, ...] = field(default=())

    def why(self, permission: str) -> tuple[Provenance, ...]:
        """The sources that give ``permission`` (empty: the account lacks it)."""
        return tuple(p for p in self.sources if permission in p.permissions)


def relation(role: str | None, has_grant_in_team: bool) -> Relation:
    """The actor's column in the team table: their role, else collaborator, else outsider."""
    if role is not None:
        return Relation(role)
    return Relation.COLLABORATOR if has_grant_in_team else Relation.OUTSIDER


def effective_permissions(app: AppFacts, who: Standing) -> Effective:
    """The union of what each source gives ``who`` on ``app`` (SPEC "Effective permissions")."""
    sources: list[Provenance] = []
    if app.team is None:
        if app.owner is not None and app.owner == who.email:
            sources.append(Provenance(Source.OWNER, ALL, f"owns the personal app {app.name}"))
        return _union(sources)
    if who.role == "admin":
        sources.append(Provenance(Source.ADMIN_ROLE, ALL, f"admin of {app.team}"))
    if who.grant:
        origin = who.grant_origin or "granted"
        detail = {
            "creator": "explicit grant (created the app)",
            "transfer": "explicit grant (transferred the app in)",
            "join": "explicit grant (joined the app)",
        }.get(origin, "explicit grant")
        sources.append(Provenance(Source.GRANT, frozenset(who.grant) | {"view"}, detail))
    if who.role in ("member", "viewer"):
        if not app.locked:
            sources.append(
                Provenance(Source.TEAM_VIEW, frozenset({"view"}), f"{who.role} of {app.team}, app unlocked")
            )
        elif (
            who.member_since is not None
            and app.locked_at is not None
            and who.member_since < app.locked_at
        ):
            sources.append(
                Provenance(
                    Source.TEAM_VIEW_KEPT,
                    frozenset({"view"}),
                    f"{who.role} of {app.team} since before the lock",
                )
            )
    return _union(sources)


def _union(sources: list[Provenance]) -> Effective:
    perms: frozenset[str] = frozenset().union(*(p.permissions for p in sources))
    return Effective(perms, tuple(sources))


def explain_missing(app: AppFacts, who: Standing, permission: str) -> str:
    """Why ``who`` lacks ``permission`` on ``app``: the rule that leaves it out."""
    if app.team is None:
        return f"{app.name} is a personal app: only its owner has access"
    if who.role is None and not who.grant:
        return f"not a user of {app.team} and no grant on {app.name}"
    if who.grant:
        return f"the explicit grant does not include {permission}"
    kept = who.member_since is not None and app.locked_at is not None and (
        who.member_since < app.locked_at
    )
    if app.locked and not kept:
        # Without this, a member who joined after the lock would read "the role gives view"
        # while the role in fact gives nothing on this app.
        return (
            f"{app.name} is locked and the membership began after the lock; "
            f"{permission} needs a grant"
        )
    return f"the {who.role} role gives only view; {permission} needs an explicit grant"


def is_stranger(facts: AppFacts, who: Standing) -> bool:
    """True when ``who`` has nothing to do with the app: for them it does not exist.

    Like Heroku's API (404 for an app you can't reach), a stranger is told "Couldn't find that
    app" rather than which team owns it.
    """
    if facts.team is None:
        return facts.owner != who.email
    return who.role is None and who.grant is None


# -- team-level ------------------------------------------------------------------------------

_TEAM_TABLE: dict[TeamAction, frozenset[Relation]] = {
    TeamAction.LIST_MEMBERS: frozenset({Relation.ADMIN, Relation.MEMBER, Relation.VIEWER}),
    TeamAction.MANAGE_MEMBERS: frozenset({Relation.ADMIN}),
    TeamAction.ADD_COLLABORATOR: frozenset({Relation.ADMIN}),
    TeamAction.LIST_APPS: frozenset(
        {Relation.ADMIN, Relation.MEMBER, Relation.VIEWER, Relation.COLLABORATOR}
    ),
    TeamAction.VIEW_RESOURCES: frozenset({Relation.ADMIN, Relation.MEMBER, Relation.VIEWER}),
    TeamAction.BILLING: frozenset({Relation.ADMIN}),
    TeamAction.RENAME_TEAM: frozenset({Relation.ADMIN}),
    TeamAction.READ_AUDIT: frozenset({Relation.ADMIN}),
    TeamAction.CREATE_APP: frozenset({Relation.ADMIN, Relation.MEMBER}),
    TeamAction.TRANSFER_IN: frozenset({Relation.ADMIN, Relation.MEMBER}),
    TeamAction.TRANSFER_OUT: frozenset({Relation.ADMIN}),
}


def decide_team(
    action: TeamAction, team: str, rel: Relation, *, owns_app: bool = False
) -> Decision:
    """May an actor with relation ``rel`` to ``team`` do ``action``?

    ``owns_app`` matters only for TRANSFER_IN: a member may transfer in only their own personal
    apps.
    """
    allowed = _TEAM_TABLE[action]
    if rel not in allowed:
        who = {
            Relation.COLLABORATOR: f"a collaborator on {team}",
            Relation.OUTSIDER: f"not a user of {team}",
        }.get(rel, f"a {rel.value} of {team}")
        needs = " or ".join(r.value for r in sorted(allowed, key=list(Relation).index))
        return _deny(
            f"team:{action.name.lower()}",
            f"You are {who}; to {action.value} you must be a team {needs}; "
            + ("ask a team admin to add you" if rel in (Relation.COLLABORATOR, Relation.OUTSIDER)
               else "ask a team admin"),
        )
    if action is TeamAction.TRANSFER_IN and rel is Relation.MEMBER and not owns_app:
        return _deny(
            "team:transfer_in:own_apps_only",
            f"A member of {team} may transfer in only their own personal apps; ask an admin",
        )
    if action is TeamAction.LIST_APPS and rel is Relation.COLLABORATOR:
        return _allow("team:list_apps:granted_only", f"collaborator on {team}: only the apps granted to you")
    return _allow(f"team:{action.name.lower()}", f"{rel.value} of {team}")


# -- app-level -------------------------------------------------------------------------------


def decide_app(action: AppAction, app: AppFacts, who: Standing) -> Decision:
    """May ``who`` do ``action`` on ``app``? Includes the state rules (lock twice, join twice)."""
    eff = effective_permissions(app, who)
    personal = app.team is None
    is_admin = not personal and who.role == "admin"
    has_manage = "manage" in eff.permissions
    manage_reason = (
        f"admin of {app.team}" if is_admin else "has manage on " + app.name
    )

    if action is AppAction.VIEW:
        if "view" in eff.permissions:
            return _allow("app:view", *(p.detail for p in eff.why("view")))
        return _deny("app:view", f"You have no access to {app.name}: {explain_missing(app, who, 'view')}")

    if action in (AppAction.LOCK, AppAction.UNLOCK):
        verb = "lock" if action is AppAction.LOCK else "unlock"
        if personal:
            return _deny(f"app:{verb}:team_only", f"cannot {verb} {app.name}. Only team apps can be locked.")
        if not has_manage:
            return _deny(
                f"app:{verb}",
                f"cannot {verb} {app.name}. Only team admins and accounts with manage on the app "
                f"may {verb} it: ask one of them.",
            )
        if action is AppAction.LOCK and app.locked:
            return _deny("app:lock:already", f"cannot lock {app.name}. This app is already locked.")
        if action is AppAction.UNLOCK and not app.locked:
            return _deny("app:unlock:not_locked", f"cannot unlock {app.name}. This app is not locked.")
        return _allow(f"app:{verb}", manage_reason)

    if action is AppAction.MANAGE_ACCESS:
        if personal:
            return _deny(
                "app:manage_access:personal",
                f"{app.name} is a personal app: move it into a team to share it",
            )
        if has_manage:
            return _allow("app:manage_access", manage_reason)
        return _deny(
            "app:manage_access",
            f"Only team admins and accounts with manage on {app.name} may change who has access: "
            "ask one of them",
        )

    if action is AppAction.JOIN:
        if personal:
            return _deny("app:join:personal", f"{app.name} is a personal app: it can't be joined")
        if who.role == "admin":
            return _deny(
                "app:join:redundant",
                f"{who.email} already has every permission as a team admin",
            )
        if who.role not in ("member", "viewer"):
            return _deny(
                "app:join:not_member",
                f"{who.email} can't join {app.name}: only users of {app.team} may join its apps; "
                "ask a team admin or someone with manage on it for a grant",
            )
        if app.locked:
            return _deny(
                "app:join:locked",
                f"{app.name} is locked: ask a team admin or someone with manage for a grant",
            )
        if who.grant is not None:
            return _deny(
                "app:join:has_grant",
                f"{who.email} already has access to {app.name}: nothing to join",
            )
        return _allow("app:join", f"{who.role} of {app.team}, app unlocked")

    if action is AppAction.LEAVE:
        if who.grant is None:
            return _deny("app:leave:no_grant", f"{who.email} holds no grant on {app.name} to leave")
        return _allow("app:leave", "holds an explicit grant")

    if action is AppAction.DESTROY:
        if personal:
            if app.owner == who.email:
                return _allow("app:destroy:owner", f"owns the personal app {app.name}")
            return _deny("app:destroy", f"Only the owner may destroy the personal app {app.name}")
        if has_manage:
            return _allow("app:destroy", manage_reason)
        return _deny(
            "app:destroy",
            f"Only team admins and accounts with manage on {app.name} may destroy it: ask one of them",
        )

    raise AssertionError(f"unknown action {action!r}")  # pragma: no cover


# -- binding a login (or a key) to an account ---------------------------------------------------


class BindOutcome(StrEnum):
    """What ``accounts:bind`` (or adding a key to an account) does."""

    BIND = "bind"  # the login (key) acts as the account from now on
    OFFER = "offer"  # recorded: the login may act as the account once its holder confirms
    REFUSE = "refuse"


@dataclass(frozen=True)
class BindFacts:
    """What :func:`decide_bind` needs to know; the caller gathers it inside the transaction.

    ``login`` is None when what is handed the account is not an OS login but a credential the
    actor presents for it (an SSH key): nobody else has to confirm that.
    """

    email: str  # the account
    login: str | None  # the OS login to bind, or None for a key
    actor_email: str
    actor_login: str | None  # the login the actor proved (uid, or the server's role)
    actor_owns_database: bool  # the file's owner (or owner role): may rewrite it anyway
    actor_admin_of: frozenset[str]  # teams the actor administers
    #: teams the account is in, any role
    account_teams: frozenset[str]
    #: teams where the account holds power a binder must have authority over: an admin or
    #: member role, or a grant beyond view on one of the team's apps
    account_strong_teams: frozenset[str]
    bound_to: str | None = None  # the account the login is bound to now
    #: an unexpired offer "login may act as email" from someone who still has authority
    offered: bool = False


@dataclass(frozen=True)
class BindDecision:
    """The outcome, the one-line reason a person reads, and the rule that decided."""

    outcome: BindOutcome
    reason: str
    rule: str

    def __bool__(self) -> bool:
        return self.outcome is not BindOutcome.REFUSE


def has_authority(actor_admin_of: frozenset[str], account_teams: frozenset[str],
                  account_strong_teams: frozenset[str]) -> tuple[bool, list[str]]:
    """Whether an admin has authority over an account, and the teams they lack if not.

    Authority means administering at least one team the account is in and every team where the
    account holds a role above viewer or a grant beyond view. A viewer membership, a view-only
    grant or a personal app given to the account by someone else does not count: otherwise
    anyone could freeze an account's real admin out by adding it to a team of their own.
    """
    if not account_teams & actor_admin_of:
        return False, []
    missing = sorted(account_strong_teams - actor_admin_of)
    return not missing, missing


def decide_bind(facts: BindFacts) -> BindDecision:
    """May the actor tie ``facts.login`` (or a key, when login is None) to ``facts.email``?

    - The database's owner binds directly: they can rewrite the file at will anyway.
    - Otherwise binding a login takes both sides: authority over the person behind the account
      (:func:`has_authority`) and proof of the login, which only its holder has (teamaccess
      reads it from the uid). An admin with authority who runs it for someone else's login
      records an offer; the login's holder confirms by running the same command. Nobody can
      squat on a login (root's, or one not yet bound) by binding it to an account of theirs.
    - A key (login None) goes to one's own account, or to one the actor has authority over.
    """
    login, email = facts.login, facts.email
    if facts.login is not None and facts.bound_to == email:
        return BindDecision(BindOutcome.REFUSE, f"Login {login} is already bound to {email}.",
                            "bind:already")
    if facts.actor_owns_database:
        return BindDecision(BindOutcome.BIND, "the database's owner binds directly", "bind:owner")
    authority, missing = has_authority(facts.actor_admin_of, facts.account_teams,
                                       facts.account_strong_teams)
    if login is None:
        if facts.actor_email == email or authority:
            return BindDecision(BindOutcome.BIND, "own account, or an admin of its teams",
                                "bind:key")
        return BindDecision(BindOutcome.REFUSE, _no_authority(email, missing), "bind:authority")
    if facts.actor_login == login:
        if authority:
            return BindDecision(BindOutcome.BIND, "the login's holder, with authority",
                                "bind:self")
        if facts.offered:
            return BindDecision(BindOutcome.BIND, "the login's holder confirms an offer",
                                "bind:confirm")
        if missing:  # an admin of some of its teams, not of all that count
            return BindDecision(BindOutcome.REFUSE, _no_authority(email, missing),
                                "bind:authority")
        return BindDecision(
            BindOutcome.REFUSE,
            f"No admin has offered login {login} to act as {email}: ask an admin of "
            f"{email}'s team to run 'teamaccess accounts:bind {login} {email}', then run it "
            "yourself to confirm.",
            "bind:no_offer",
        )
    if not authority:
        return BindDecision(BindOutcome.REFUSE, _no_authority(email, missing), "bind:authority")
    return BindDecision(
        BindOutcome.OFFER,
        f"offered: {login} confirms by running 'teamaccess accounts:bind {login} {email}'",
        "bind:offer",
    )


def _no_authority(email: str, missing: list[str]) -> str:
    if not missing:
        return (f"Only an admin of {email}'s team may bind a login or key to it: "
                "ask one of that team's admins.")
    shown = ", ".join(missing[:3]) + (" and more" if len(missing) > 3 else "")
    return (f"Can't bind to {email}: that would also act in {shown}, which you don't "
            "administer; ask an admin of those teams (or the database's owner).")


# -- a team user's role, decided before asking (the dashboard greys keys and asks with it) ------


def decide_member_change(
    team: str, rel: Relation, target: str, target_role: str, new_role: str | None, admins: int
) -> Decision:
    """May an actor with relation ``rel`` give ``target`` (now ``target_role``) ``new_role``?

    ``new_role`` None means removing them from the team; ``admins`` is how many admins the team
    has now. The store decides again when it writes; this lets a face refuse before it asks
    ("confirm first, refuse after" asks for what will be refused).
    """
    allowed = decide_team(TeamAction.MANAGE_MEMBERS, team, rel)
    if not allowed:
        return allowed
    if target_role == Relation.COLLABORATOR.value:
        return _deny(
            "team:manage_members:collaborator",
            f"{target} is a collaborator of {team}, not a team user: give them a role by adding "
            "them as a user, or change their grants in each app's access pane",
        )
    if new_role == target_role:
        article = "an" if target_role == "admin" else "a"
        return _deny("team:manage_members:same_role", f"{target} is already {article} {target_role} of {team}")
    if target_role == "admin" and admins <= 1:
        what = "remove them" if new_role is None else "change their role"
        return _deny(
            "at-least-one-admin",
            f"{target} is the only admin of {team}: add another admin before you {what}",
        )
    return _allow("team:manage_members", f"admin of {team}")


def lost_by_role_change(team: str, before: Relation, after: Relation) -> tuple[TeamAction, ...]:
    """The team actions ``before`` allows and ``after`` does not (what a demotion takes away)."""
    return tuple(a for a in TeamAction if decide_team(a, team, before) and not decide_team(a, team, after))


# -- team state ------------------------------------------------------------------------------


def decide_admins_left(team: str, admins_left: int) -> Decision:
    """SPEC: a team always keeps at least one admin; may a change leave ``admins_left`` of them?"""
    if admins_left >= 1:
        return _allow("at-least-one-admin", f"{team} keeps {admins_left} admin(s)")
    return _deny("at-least-one-admin", f"{team} would be left without an admin")
