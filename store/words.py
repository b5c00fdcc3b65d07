"""The store's vocabulary, defined once: team roles, app permissions and where a permission comes from.

Every other list of these names (validation, the grant table's columns, the faces' choices and
column headers) is derived from the enums below. They are ``StrEnum``s, so each member is also
the plain string stored in the database and shown to people (``Role.ADMIN == "admin"``).
"""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    """A team user's role in one team (SPEC "Words": team user)."""

    ADMIN = "admin"
    MEMBER = "member"
    VIEWER = "viewer"


#: Every team role, in the order the faces list them.
ROLES: tuple[Role, ...] = tuple(Role)
#: What ``members:set`` may assign: the seed documents only these two.
SETTABLE_ROLES: tuple[Role, ...] = (Role.ADMIN, Role.MEMBER)
#: How the faces name an account that holds a grant in a team but no role in it.
COLLABORATOR = "collaborator"


class Permission(StrEnum):
    """An app permission (SPEC "Words": grant), in the order they are always listed."""

    VIEW = "view"
    DEPLOY = "deploy"
    OPERATE = "operate"
    MANAGE = "manage"

    @property
    def column(self) -> str:
        """The ``Grant`` table's boolean column that holds this permission (``can_view``, ...)."""
        return f"can_{self.value}"

    @property
    def letter(self) -> str:
        """The one-letter column header the access pane uses (V, D, O, M)."""
        return self.value[0].upper()


#: Every permission, in canonical order.
PERMISSIONS: tuple[Permission, ...] = tuple(Permission)
#: All four: what an admin, a personal app's owner and an app's creator get.
ALL: frozenset[Permission] = frozenset(PERMISSIONS)
#: The permissions a grant may add to the ``view`` every grant holds.
OPTIONAL_PERMISSIONS: tuple[Permission, ...] = tuple(p for p in PERMISSIONS if p is not Permission.VIEW)


def sort_permissions(perms: object) -> list[Permission]:
    """``perms`` (any iterable of names) in the canonical order view, deploy, operate, manage."""
    have = set(perms)  # type: ignore[call-overload]
    return [p for p in PERMISSIONS if p in have]


class Source(StrEnum):
    """Where a permission on an app comes from (SPEC "Effective permissions", with provenance)."""

    ADMIN_ROLE = "admin role"
    GRANT = "explicit grant"
    TEAM_VIEW = "team view"  # member/viewer on an unlocked app
    TEAM_VIEW_KEPT = "team view kept at lock"  # member/viewer who joined before the lock
    OWNER = "personal owner"


class RequestStatus(StrEnum):
    """Where an access request stands (SPEC "Temporary access and access requests")."""

    PENDING = "pending"
    APPROVED = "approved"
    DENIED = "denied"
    LAPSED = "lapsed"  # waited 7 days undecided
    WITHDRAWN = "withdrawn"  # the requester took it back before anyone decided


#: Every request status, in the order the faces list them.
REQUEST_STATUSES: tuple[RequestStatus, ...] = tuple(RequestStatus)
