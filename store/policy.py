"""Pure decisions: who may do what, and which permissions an account has on an app and why.

No I/O and no session: the callers gather the facts, these functions decide. Deny is the
default: an action is allowed only by a named source (a role, a grant, ownership), and every
decision carries the reasons that decided it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum

# The words are defined in .words; they are imported here too, so callers may take them
# from the policy with the decisions.
from .safetext import has_unsafe
from .words import ALL, PERMISSIONS, Permission, RequestStatus, Role, Source, sort_permissions  # noqa: F401


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
    grant: frozenset[str] | None = None  # explicit grant, if any (in force or not)
    grant_origin: str | None = None  # creator, transfer, join, granted, collaborator, import
    grant_expires_at: datetime | None = None  # when the grant stops giving anything (None: never)
    #: the moment the standing is decided at (the database's clock); a grant with an end
    #: counts only when this is known and before the end (deny is the default)
    as_of: datetime | None = None

    @property
    def has_live_grant(self) -> bool:
        """Whether the account holds a grant that gives something at ``as_of``."""
        return self.grant is not None and grant_in_force(self.grant_expires_at, self.as_of)

    @property
    def live_grant(self) -> frozenset[str] | None:
        """The grant's set while it is in force; None without a grant or once it has ended."""
        return self.grant if self.has_live_grant else None

    @property
    def grant_expired(self) -> bool:
        """Whether the account holds a grant that has ended (and is not yet removed)."""
        return self.grant is not None and not self.has_live_grant


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


_VIEW_ONLY: frozenset[Permission] = frozenset({Permission.VIEW})


def grant_in_force(expires_at: datetime | None, now: datetime | None) -> bool:
    """The one expiry rule (SPEC "Temporary access"): a grant gives what it holds while
    ``now`` is before its end; from ``expires_at`` on it gives nothing, not even view.

    No end: always in force. An end but no ``now`` to compare with: not in force, so a caller
    that forgets the clock fails closed rather than extending someone's access.
    """
    if expires_at is None:
        return True
    if now is None:
        return False
    return now < expires_at


def utc_text(moment: datetime) -> str:
    """A moment as people read it in reasons: ``2026-11-29 18:00:00 UTC``."""
    if moment.utcoffset() is None:  # the store keeps UTC; SQLite may hand it back naive
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


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
    if who.role == Role.ADMIN:
        sources.append(Provenance(Source.ADMIN_ROLE, ALL, f"admin of {app.team}"))
    live = who.live_grant
    if live:
        origin = who.grant_origin or "granted"
        detail = {
            "creator": "explicit grant (created the app)",
            "transfer": "explicit grant (transferred the app in)",
            "join": "explicit grant (joined the app)",
        }.get(origin, "explicit grant")
        if who.grant_expires_at is not None:
            detail += f", until {utc_text(who.grant_expires_at)}"
        sources.append(Provenance(Source.GRANT, frozenset(live) | {Permission.VIEW}, detail))
    if who.role in (Role.MEMBER, Role.VIEWER):
        if not app.locked:
            sources.append(
                Provenance(Source.TEAM_VIEW, _VIEW_ONLY, f"{who.role} of {app.team}, app unlocked")
            )
        elif (
            who.member_since is not None
            and app.locked_at is not None
            and who.member_since < app.locked_at
        ):
            sources.append(
                Provenance(
                    Source.TEAM_VIEW_KEPT,
                    _VIEW_ONLY,
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
    if who.grant_expired and who.grant_expires_at is not None:
        expired = f"grant expired at {utc_text(who.grant_expires_at)}"
        if who.role is None:
            return f"{expired}; not a user of {app.team}"
        return f"{expired}; {explain_missing(app, _without_grant(who), permission)}"
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


def _without_grant(who: Standing) -> Standing:
    return Standing(who.email, who.role, who.member_since, None, None, None, who.as_of)


def is_stranger(facts: AppFacts, who: Standing) -> bool:
    """True when ``who`` has nothing to do with the app: for them it does not exist.

    Like Heroku's API (404 for an app you can't reach), a stranger is told "Couldn't find that
    app" rather than which team owns it. A grant that has ended but is not removed yet still
    counts here: its holder knew the app, and is told that (and when) the grant expired.
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


# -- rules on teams' users and grants -------------------------------------------------------

LAST_ADMIN_RULE = "at-least-one-admin"


def decide_admins_remain(
    team: str, admins_before: int | None, admins_after: int, *, change: str,
    instead: str = "add another admin first",
) -> Decision:
    """SPEC rule 1: every team keeps at least one admin.

    ``admins_before`` (None: not counted) and ``admins_after`` count the team's admins around the
    change; ``change`` words it for the refusal ("remove joe@acme.com"). The callers count inside the write
    transaction that makes the change, so two admins demoting each other at once can't both pass.
    """
    if admins_after > 0:
        return _allow(LAST_ADMIN_RULE, f"{team} keeps {admins_after} admin(s)")
    if admins_before == 1:
        return _deny(LAST_ADMIN_RULE, f"Can't {change}: they are the only admin of {team}; {instead}.")
    return _deny(LAST_ADMIN_RULE, f"Can't {change}: that would leave {team} without an admin; {instead}.")


def decide_grant_target(team: str | None, email: str, role: str | None) -> Decision:
    """SPEC rule 5: granting to a team admin (access:add, access:update, join, add a
    collaborator) is refused as redundant: the admin role already gives every permission."""
    if team is not None and role == Role.ADMIN:
        return _deny(
            "grant:redundant_for_admin",
            f"{email} already has every permission as a team admin of {team}: "
            "there is nothing to grant.",
        )
    return _allow("grant:target", f"{email} is not an admin of {team}" if team else "personal app")


def decide_role_target(
    team: str, email: str, target: Relation, current_role: str | None, new_role: str, *, create: bool
) -> Decision:
    """``members:add`` (``create``) and ``members:set``: is ``email`` someone whose role can become
    ``new_role``? ``members:set`` changes only an existing team user's role (a collaborator or an
    outsider is added first), and a role is never "changed" to what it already is."""
    if current_role is None and not create:
        kind = "only a collaborator" if target is Relation.COLLABORATOR else "not a user"
        return _deny(
            "team:manage_members:not_a_user",
            f"{email} is {kind} of {team}: add them first with "
            f"'teamaccess members:add {email} --team {team} --role {new_role}'.",
        )
    if current_role == new_role:
        article = "an" if new_role == Role.ADMIN else "a"
        return _deny("team:manage_members:same_role", f"{email} is already {article} {new_role} of {team}.")
    return _allow("team:manage_members:target", f"{email}: {current_role or 'new'} -> {new_role}")


def decide_new_grant(email: str, app: str, has_grant: bool) -> Decision:
    """``access:add`` and "add a collaborator" make a grant; an account holds at most one per app,
    so a second is refused with the command that changes the first."""
    if has_grant:
        return _deny("grant:exists", f"{email} already has access to {app}: use access:update.")
    return _allow("grant:new", f"{email} has no grant on {app}")


def decide_own_grant(actor: str, target: str, app: str) -> Decision:
    """Nobody grants or changes their own access (``access:add``/``access:update`` on
    themselves), not even with ``manage``: otherwise a temporary manage grant could be made
    permanent, longer or wider by its holder, and access requests would be optional for them.
    Dropping one's own grant (``apps:leave``, ``access:remove``) stays allowed."""
    if actor == target:
        return _deny(
            "grant:own",
            f"You can't grant or change your own access to {app}: ask another team admin or "
            f"manage holder, or ask for it with 'teamaccess access:request --app {app}'.",
        )
    return _allow("grant:other", f"{target} is not the actor")


def decide_granted_end(app: AppFacts, granter: Standing, ends_at: datetime | None, *,
                       widens: bool) -> Decision:
    """Nothing a temporary manager gives outlasts their own manage: a grant they make, widen or
    approve ends no later than their grant does. Otherwise a temporary manage holder could hand
    a second account manage for good, and have it make their own grant permanent.

    ``granter`` is the actor's standing now; ``ends_at`` the end of the grant their change
    leaves (None: never); ``widens``: the change adds a permission or a later end (narrowing,
    and dropping a grant, are always allowed)."""
    if not widens or app.team is None or granter.role == Role.ADMIN:
        return _allow("grant:end_within_manager", "a team admin, or nothing given")
    manager_end = granter.grant_expires_at if granter.has_live_grant else None
    if manager_end is None or (ends_at is not None and ends_at <= manager_end):
        return _allow("grant:end_within_manager", "ends no later than the granter's manage")
    return _deny(
        "grant:outlasts_manager",
        f"Your manage on {app.name} ends at {utc_text(manager_end)}, and nothing you give may "
        "outlast it: give an end no later than that (--expires-in of at most what you have "
        "left), or ask a team admin.",
    )


def decide_collaborator_target(team: str, email: str, role: str | None, app: str) -> Decision:
    """The team page's "add a collaborator" is for people outside the team: a team user (any
    role) gets permissions from the app's access pane instead (an admin needs none: rule 5)."""
    redundant = decide_grant_target(team, email, role)
    if not redundant:
        return redundant
    if role is not None:
        return _deny(
            "collaborator:team_user",
            f"{email} is a user of {team}: grant them permissions from {app}'s access pane.",
        )
    return _allow("collaborator:target", f"{email} is not a user of {team}")


def creator_grant(team: str | None, creator_role: str | None) -> frozenset[Permission]:
    """SPEC rule 6: the creator of a team app, or whoever transfers an app into a team, gets an
    explicit all-four grant, unless they are a team admin (who holds everything by role: rule 5);
    a personal app's owner needs none."""
    if team is None or creator_role == Role.ADMIN:
        return frozenset()
    return ALL


@dataclass(frozen=True)
class UsersVisible:
    """Which of a team's users an actor may see on an app's access pane (SPEC rule 4).

    ``everyone``: all of them. Otherwise only those whose role is in ``roles`` or who hold a grant on
    the app (``grant_holders``). The reads turn this into SQL, and ask :meth:`shows` one account at
    a time, so both follow the one decision in :func:`users_visible_to`.
    """

    everyone: bool
    roles: frozenset[Role] = frozenset()
    grant_holders: bool = True

    def shows(self, role: str | None, holds_grant: bool) -> bool:
        """Whether an account with ``role`` (None: no role) and perhaps a grant is shown."""
        return self.everyone or role in self.roles or (self.grant_holders and holds_grant)


def users_visible_to(actor_role: str | None) -> UsersVisible:
    """SPEC rule 4: a collaborator (no role in the app's team) never sees the team's users.

    Like Heroku's ``access``, they still see who can act on the app: its team's admins and the
    holders of grants on it. Team users (any role) see everyone with access.
    """
    if actor_role is not None:
        return UsersVisible(everyone=True)
    return UsersVisible(everyone=False, roles=frozenset({Role.ADMIN}), grant_holders=True)


# -- app-level -------------------------------------------------------------------------------


def decide_app(action: AppAction, app: AppFacts, who: Standing) -> Decision:
    """May ``who`` do ``action`` on ``app``? Includes the state rules (lock twice, join twice)."""
    eff = effective_permissions(app, who)
    personal = app.team is None
    is_admin = not personal and who.role == Role.ADMIN
    has_manage = Permission.MANAGE in eff.permissions
    manage_reason = (
        f"admin of {app.team}" if is_admin else "has manage on " + app.name
    )

    if action is AppAction.VIEW:
        if Permission.VIEW in eff.permissions:
            return _allow("app:view", *(p.detail for p in eff.why(Permission.VIEW)))
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
        redundant = decide_grant_target(app.team, who.email, who.role)
        if not redundant:
            return _deny("app:join:redundant", *redundant.reasons)
        if who.role not in (Role.MEMBER, Role.VIEWER):
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
        if who.live_grant is not None:
            return _deny(
                "app:join:has_grant",
                f"{who.email} already has access to {app.name}: nothing to join",
            )
        return _allow("app:join", f"{who.role} of {app.team}, app unlocked")

    if action is AppAction.LEAVE:
        if who.live_grant is None:
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


# -- temporary access ------------------------------------------------------------------------


def decide_prune(admin_of_a_team: bool, manages_an_app: bool) -> Decision:
    """access:prune without ``--app``: whoever may manage access somewhere (a team admin, a
    ``manage`` holder) may prune, and "nothing to prune" is their answer; for anyone else
    it is refused with the rule, as the same command on one app would be."""
    if admin_of_a_team or manages_an_app:
        return _allow("access:prune", "admin of a team" if admin_of_a_team else "has manage on an app")
    return _deny(
        "access:prune",
        "Only team admins and accounts with manage on an app may prune its expired grants, "
        "and you manage none: nothing was changed.",
    )


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
    #: more of what the account reaches that a binder must administer: the teams of its grants
    account_strong_teams: frozenset[str]
    bound_to: str | None = None  # the account the login is bound to now
    #: an unexpired offer "login may act as email" from someone who still has authority
    offered: bool = False
    #: the login is bound to ``email`` already, but by someone who lost authority over it
    #: (decide_delegated_use): binding it again is how it is mended
    binding_lapsed: bool = False


@dataclass(frozen=True)
class BindDecision:
    """The outcome, the one-line reason a person reads, and the rule that decided."""

    outcome: BindOutcome
    reason: str
    rule: str

    def __bool__(self) -> bool:
        return self.outcome is not BindOutcome.REFUSE


def has_authority(actor_admin_of: frozenset[str], account_teams: frozenset[str],
                  account_strong_teams: frozenset[str] = frozenset()) -> tuple[bool, list[str]]:
    """Whether an admin has authority over an account, and the teams they lack if not.

    Authority means administering every team the account is in (any role, or any grant on one
    of its apps; ``account_strong_teams`` is included for callers that keep it apart) and at
    least one: whoever binds a login or adds a key acts as the account everywhere it reaches,
    so a viewer's reach counts as much as an admin's. Ignoring weaker memberships would let the
    admin of any team make someone a viewer there and then read every other team of theirs as
    them. The price: someone can add an account to a team of their own and so keep its real
    admin from binding it; the database's owner (the service account under ``serve``) always
    can, and a person with a key adds their own further keys.
    """
    teams = account_teams | account_strong_teams
    if not teams & actor_admin_of:
        return False, []
    missing = sorted(teams - actor_admin_of)
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
    if facts.login is not None and facts.bound_to == email and not facts.binding_lapsed:
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
        article = "an" if target_role == Role.ADMIN else "a"
        return _deny("team:manage_members:same_role", f"{target} is already {article} {target_role} of {team}")
    if target_role == Role.ADMIN and new_role != Role.ADMIN:
        change = f"remove {target}" if new_role is None else f"change the role of {target}"
        remain = decide_admins_remain(team, admins, admins - 1, change=change)
        if not remain:
            return remain
    return _allow("team:manage_members", f"admin of {team}")


def lost_by_role_change(team: str, before: Relation, after: Relation) -> tuple[TeamAction, ...]:
    """The team actions ``before`` allows and ``after`` does not (what a demotion takes away)."""
    return tuple(a for a in TeamAction if decide_team(a, team, before) and not decide_team(a, team, after))


# -- acting for another account (SSH keys) ---------------------------------------------------


def decide_act_for(
    actor: str,
    target: str,
    *,
    administers: frozenset[str],
    target_teams: frozenset[str],
    target_personal_apps: tuple[str, ...] = (),
    doing: str = "add a key to",
) -> Decision:
    """May ``actor`` give someone a way to act as ``target`` (add or remove ``target``'s key)?

    The ``accounts:bind`` rule: whoever holds the key acts as ``target`` everywhere, so only an
    admin of every team ``target`` is in (as a user or a collaborator) may, and only if
    ``target`` owns no personal apps. ``target`` must be in at least one of those teams: an
    account in no team would carry the key into whatever team adds it later. Anyone may manage
    their own keys.
    """
    if actor == target:
        return _allow("account:act_for:self", "your own account")
    if not administers:
        return _deny(
            "account:act_for:admin_only",
            f"Only a team admin may {doing} another account: ask an admin of {target}'s team",
        )
    if not target_teams:
        return _deny(
            "account:act_for:no_team",
            f"Can't {doing} {target}: they are in none of your teams; add them to a team first",
        )
    # The same authority accounts:bind asks for (one rule: has_authority).
    authority, missing = has_authority(
        administers, target_teams, frozenset(f"personal app {name}" for name in target_personal_apps))
    beyond = missing or sorted(target_teams - administers)
    if not authority:
        more = " and more" if len(beyond) > 3 else ""
        return _deny(
            "account:act_for:beyond_my_teams",
            f"Can't {doing} {target}: that would also act in {', '.join(beyond[:3])}{more}, "
            "which you don't administer; ask an admin there",
        )
    return _allow("account:act_for", f"admin of every team of {target}")
# -- team state ------------------------------------------------------------------------------


def decide_admins_left(team: str, admins_left: int) -> Decision:
    """SPEC rule 1 (:func:`decide_admins_remain`) for a change that knows only how many admins
    it leaves, such as an import of many rows at once."""
    return decide_admins_remain(team, None, admins_left, change=f"change the users of {team}")


# -- a key or binding made for someone else lapses with its authorizer's authority -----------


def decide_delegated_use(
    account: str,
    authorizer: str | None,
    *,
    authorizer_admin_of: frozenset[str],
    account_teams: frozenset[str],
    account_strong_teams: frozenset[str] = frozenset(),
    what: str = "key",
) -> Decision:
    """May a key (``what="key"``) or login binding (``what="binding"``) of ``account`` be used now?

    Authority over an account is checked when a key is added or a login bound, but the account
    can join more teams later (an attacker adds a new hire to a team of theirs, plants a key,
    and waits for a real admin to promote the hire). So whatever someone other than the account
    itself authorized works only while its authorizer still has authority
    (:func:`has_authority`) over the account; it works again if that authority returns.
    ``authorizer`` None means the database's owner, whose bindings never lapse.
    """
    if authorizer is None:
        return _allow(f"{what}:use:owner", "authorized by the database's owner")
    if authorizer == account:
        return _allow(f"{what}:use:self", "the account's own")
    authority, _missing = has_authority(authorizer_admin_of, account_teams, account_strong_teams)
    if authority:
        return _allow(f"{what}:use:authority", f"{authorizer} still administers all of {account}'s teams")
    if what == "binding":
        return _deny(
            "binding:use:lapsed",
            f"your login's binding to {account} was made by {authorizer}, who no longer "
            f"administers all of {account}'s teams: ask the database's owner or an admin of "
            f"every team of {account} to bind it again",
        )
    return _deny(
        "key:use:lapsed",
        f"suspended: added by {authorizer}, who no longer administers all of this account's teams",
    )


def decide_remove_key(
    act_for: Decision, *, actor_admin_of: frozenset[str], account_teams: frozenset[str],
    key_suspended: bool,
) -> Decision:
    """May the actor remove a key of an account? ``act_for`` is :func:`decide_act_for`'s answer.

    The account itself and whoever has authority over it may (``act_for``). A suspended key
    (its creator lost authority) may also be removed by an admin of any team of the account:
    the admins who can't yet act for the account are the ones the key was planted against.
    """
    if act_for:
        return act_for
    if key_suspended and actor_admin_of & account_teams:
        return _allow("key:remove:suspended", "an admin of the account's team removes a suspended key")
    return act_for


# -- access requests (SPEC "Temporary access and access requests") ---------------------------

#: How long a request waits for a decision before it lapses (decided at read time, with ``now``).
REQUEST_LAPSE = timedelta(days=7)
#: The longest reason a request (or a denial) may carry: a sentence or two, not a document.
MAX_REQUEST_REASON = 500


def request_status(status: str, created_at: datetime, now: datetime) -> RequestStatus:
    """A request's status as of ``now``: a pending one lapses ``REQUEST_LAPSE`` after it was filed."""
    if status == RequestStatus.PENDING and now >= created_at + REQUEST_LAPSE:
        return RequestStatus.LAPSED
    return RequestStatus(status)


def decide_reason(reason: str | None, *, required: bool, what: str = "reason") -> Decision:
    """A request's reason (required) or a denial's (optional): one line of safe text, bounded.

    The reason is shown to approvers in terminals, so a character that could repaint one or
    split the line is refused rather than quietly changed.
    """
    text = (reason or "").strip()
    if not text:
        if required:
            return _deny(f"{what}:missing",
                         f"A {what} is required: say why you need it with --reason TEXT.")
        return _allow(f"{what}:none", f"no {what} given")
    if has_unsafe(text) is not None:
        return _deny(f"{what}:unsafe",
                     f"The {what} holds a control or invisible character: write it as one "
                     "line of plain text.")
    if len(text) > MAX_REQUEST_REASON:
        return _deny(f"{what}:too_long",
                     f"The {what} is {len(text)} characters, over the limit of "
                     f"{MAX_REQUEST_REASON}: say it shorter.")
    return _allow(f"{what}:ok", f"{what} given")


def decide_request(
    app: AppFacts,
    who: Standing,
    asked: frozenset[str],
    reason: str | None,
    *,
    pending_id: int | None = None,
) -> Decision:
    """May ``who`` ask for ``asked`` on ``app``, with ``reason``?

    ``who`` is the requester's standing as of now (an expired grant counts as none);
    ``pending_id`` is their request on this app that is still pending, if any. A team user of
    the app's team may ask, and so may a collaborator of that app; a stranger gets the same
    "Couldn't find that app" as everywhere (rule ``request:stranger``), so the app's existence
    doesn't leak.
    """
    if app.team is not None and who.role is None and who.grant_expired and who.grant_expires_at:
        # No longer a collaborator, but they knew the app: say what ended, as the reads do.
        return _deny("request:grant_ended",
                     f"Your grant on {app.name} expired at {utc_text(who.grant_expires_at)}: only "
                     f"users of {app.team} and collaborators of {app.name} may ask; ask a team "
                     "admin for a new grant.")
    if is_stranger(app, who) or (app.team is not None and who.role is None and who.live_grant is None):
        return _deny("request:stranger",
                     f"Couldn't find that app: {app.name}. Run 'teamaccess apps' to list yours.")
    if app.team is None:
        return _deny("request:personal",
                     f"{app.name} is your personal app: you already have every permission on it.")
    if who.role == Role.ADMIN:
        return _deny("request:admin",
                     f"You already have every permission on {app.name} as a team admin of "
                     f"{app.team}: there is nothing to request.")
    given = decide_reason(reason, required=True)
    if not given:
        return _deny(f"request:{given.rule}", *given.reasons)
    held = effective_permissions(app, who).permissions
    if asked <= held:
        shown = ", ".join(sort_permissions(asked))
        return _deny("request:already_held",
                     f"You already have {shown} on {app.name}: there is nothing to request.")
    if pending_id is not None:
        return _deny("request:already_pending",
                     f"You already asked: request {pending_id} for {app.name} is pending; wait "
                     "for a decision (see 'teamaccess access:requests').")
    return _allow("request", f"{who.role} of {app.team}" if who.role else f"collaborator on {app.name}")


class RequestDecision(StrEnum):
    """What a decider does with a request."""

    APPROVE = "approve"
    DENY = "deny"


def decide_request_decision(
    decision: RequestDecision,
    request_id: int,
    app: AppFacts,
    decider: Standing,
    *,
    requester: str,
    status: str,
    created_at: datetime,
    now: datetime,
    decided_by: str | None = None,
) -> Decision:
    """May ``decider`` approve (or deny) request ``request_id`` on ``app`` now?

    Whoever may manage access on the app decides (team admins, ``manage`` holders), never the
    requester, and only while the request is pending: one decision per request, and one that
    waited ``REQUEST_LAPSE`` has lapsed. A decider who can't see the app is told the request
    doesn't exist (rule ``request_decision:unknown``), as a stranger is for an app.
    """
    verb = decision.value
    if decider.email != requester and is_stranger(app, decider):
        return _deny("request_decision:unknown", unknown_request(request_id))
    if decider.email == requester:
        return _deny("request_decision:own",
                     f"You can't {verb} your own request {request_id}: another team admin or "
                     f"manage holder of {app.name} must decide it.")
    if app.team is None:
        return _deny("request_decision:personal",
                     f"{app.name} is now a personal app: its requests can't be decided; they "
                     f"lapse after {REQUEST_LAPSE.days} days.")
    may_manage = decide_app(AppAction.MANAGE_ACCESS, app, decider)
    if not may_manage:
        return _deny("request_decision:manage",
                     f"Only team admins and accounts with manage on {app.name} may {verb} "
                     "requests for it: ask one of them.")
    now_status = request_status(status, created_at, now)
    if now_status is RequestStatus.LAPSED:
        return _deny("request_decision:lapsed",
                     f"Request {request_id} lapsed: it waited {REQUEST_LAPSE.days} days "
                     f"undecided; {requester} may ask again with access:request.")
    if now_status is not RequestStatus.PENDING:
        by = f" by {decided_by}" if decided_by else ""
        return _deny("request_decision:decided",
                     f"Request {request_id} was already {now_status.value}{by}: a request is "
                     "decided once.")
    return _allow(f"request_decision:{verb}", may_manage.reason)


def decide_withdraw(
    request_id: int, actor: str, requester: str, *, may_decide: bool, status: str,
    created_at: datetime, now: datetime, decided_by: str | None = None,
) -> Decision:
    """May ``actor`` withdraw request ``request_id``? Only its requester, only while it is
    pending: a request filed by mistake needn't wait 7 days, or block asking again, for a
    decider to deny it. Someone else who may not decide it is told the request doesn't exist,
    as access:requests doesn't list it for them."""
    if actor != requester:
        if not may_decide:
            return _deny("request_withdraw:unknown", unknown_request(request_id))
        return _deny("request_withdraw:not_yours",
                     f"Request {request_id} is {requester}'s: only they may withdraw it; a "
                     "decider denies it with access:deny.")
    now_status = request_status(status, created_at, now)
    if now_status is RequestStatus.LAPSED:
        return _deny("request_withdraw:lapsed",
                     f"Request {request_id} lapsed already: there is nothing to withdraw.")
    if now_status is not RequestStatus.PENDING:
        by = f" by {decided_by}" if decided_by and now_status is not RequestStatus.WITHDRAWN else ""
        return _deny("request_withdraw:decided",
                     f"Request {request_id} was already {now_status.value}{by}: there is nothing "
                     "to withdraw.")
    return _allow("request_withdraw", "the requester, while pending")


def unknown_request(request_id: object) -> str:
    """The one line for a request id that doesn't exist, or that the actor can't see."""
    return (f"No request {request_id} among the requests you can see: run "
            "'teamaccess access:requests' to list them.")


@dataclass(frozen=True)
class ApprovalPlan:
    """What approving a request does to the requester's grant: its set and its end."""

    permissions: frozenset[str]
    expires_at: datetime | None  # None: the grant never ends
    creates: bool  # True: a new grant; False: the existing one widens


def plan_approval(
    app: AppFacts, requester: Standing, asked: frozenset[str], *, ends_at: datetime | None,
) -> Decision | ApprovalPlan:
    """How an approval changes the requester's access, or the Decision refusing it.

    ``requester`` is their standing now (a grant that has ended counts as none; its end is
    ``grant_expires_at``), ``ends_at`` the end the approval gives (None: never). An approval
    never shortens anything, never makes temporary access permanent, and never makes anything
    last longer than someone chose: a temporary grant widens to the union by a temporary
    approval ending no sooner than the grant (else the approved part would outlast the approval:
    refused), as long as nothing the request didn't name is carried past the grant's own end
    (else refused); a permanent one is
    refused (it would make what they hold for now theirs for good); a permanent grant widens only by a
    permanent approval, since a temporary one would either cut the grant short or make the
    temporary extra permanent (refused: the decider widens it with access:update instead).
    """
    email = requester.email
    live = requester.live_grant
    if is_stranger(app, requester) or (requester.role is None and live is None):
        return _deny("approve:requester_gone",
                     f"{email} is no longer a user of {app.team} and holds no grant on "
                     f"{app.name}: deny the request, or add them first.")
    redundant = decide_grant_target(app.team, email, requester.role)
    if not redundant:
        return _deny("approve:requester_admin",
                     f"{email} is now a team admin of {app.team}: they have every permission "
                     "already; deny the request to close it.")
    held = effective_permissions(app, requester).permissions
    if asked <= held:
        return _deny("approve:already_held",
                     f"{email} already has {', '.join(sort_permissions(asked))} on {app.name}: "
                     "nothing to approve; deny the request to close it.")
    if live is None:
        return ApprovalPlan(frozenset(asked) | {Permission.VIEW}, ends_at, creates=True)
    grant_end = requester.grant_expires_at
    if grant_end is None and ends_at is not None:
        return _deny("approve:permanent_grant",
                     f"{email} has a permanent grant on {app.name}: widen it with access:update "
                     "(a temporary approval would end part of it, or make the extra permanent).")
    if grant_end is not None and ends_at is None:
        # One grant has one end: a permanent approval would make what they hold for now
        # (perhaps more than they asked for) theirs for good, which nobody decided.
        return _deny("approve:temporary_grant",
                     f"{email} has a temporary grant on {app.name} until {utc_text(grant_end)}: "
                     "approve with --expires-in, or change the grant with access:update.")
    if grant_end is not None and ends_at is not None and ends_at > grant_end:
        # The widened grant would end later, and with it everything it already holds: only what
        # the request names (and view) may be carried past the grant's own end.
        extended = sort_permissions(set(live) - set(asked) - {Permission.VIEW})
        if extended:
            return _deny("approve:extends_unasked",
                         f"{email} holds {', '.join(extended)} on {app.name} until "
                         f"{utc_text(grant_end)}; approving would extend that too: have them ask for "
                         "all of it, or change the grant with access:update.")
    if grant_end is not None and ends_at is not None and ends_at < grant_end:
        # One grant has one end: the approved permissions would last until the grant's, longer
        # than the decider chose.
        return _deny("approve:shorter_than_grant",
                     f"{email} holds {', '.join(sort_permissions(live))} on {app.name} until "
                     f"{utc_text(grant_end)}, and one grant has one end: this approval would last "
                     "until then too. Approve with --expires-in of at least what is left, or "
                     "change the grant with access:update.")
    later = None if grant_end is None or ends_at is None else max(grant_end, ends_at)
    return ApprovalPlan(frozenset(live) | asked | {Permission.VIEW}, later, creates=False)
