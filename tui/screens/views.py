"""The team's lists: roster, apps, audit log, resources and billing, with their actions."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from rich.text import Text
from teamaccess.store import ops, queries
from teamaccess.store.policy import (
    AppAction,
    AppFacts,
    Decision,
    Relation,
    Standing,
    TeamAction,
    decide_app,
    decide_member_change,
    decide_team,
    lost_by_role_change,
)
from teamaccess.store.words import PERMISSIONS, ROLES, SETTABLE_ROLES, Source
from teamaccess.tui.text import money
from teamaccess.tui.widgets.dialogs import (
    AddUserDialog,
    CollaboratorDialog,
    CreateAppDialog,
    DestroyDialog,
    HelpScreen,
    RoleDialog,
    TransferInDialog,
    TransferOutDialog,
)
from teamaccess.tui.widgets.safe import clean, text
from textual.binding import Binding
from textual.widgets import DataTable

from .base import TableView, cut
from .keys import add_key_for
from .requests import file_request

#: The roster's roles in the order the role sort shows them (collaborators last).
ROLE_ORDER = (*ROLES, queries.COLLABORATOR)

NO_MFA = "✗ no MFA"
MFA_ON = "✓ MFA"
LOCKED = "locked"
UNLOCKED = "open"


def mfa_badge(mfa: bool, no_color: bool = False) -> Text:
    """An MFA badge that reads without colour: a symbol and a word; the warning is reversed, so
    it is the most visible cell with or without colour. Under NO_COLOR Textual turns red into a
    grey next to the background's, so there the warning is black on white (the two ends of the
    grey scale) and the ok badge is dim."""
    if no_color:
        return Text(MFA_ON, style="dim") if mfa else Text(NO_MFA, style="bold #ffffff on #000000 reverse")
    return Text(MFA_ON, style="green") if mfa else Text(NO_MFA, style="bold reverse red")


def lock_badge(locked: bool) -> Text:
    """A lock indicator that reads without colour."""
    return Text(LOCKED, style="bold yellow") if locked else Text(UNLOCKED, style="dim")


def perms_text(perms: Sequence[str]) -> Text:
    """A set of permissions as words, or a dash for none."""
    return Text(" ".join(perms)) if perms else Text("none", style="dim")


class TeamView(TableView):
    """A list that belongs to the current team; its actions are offered by the actor's role."""

    def allowed(self, action: TeamAction, **kw: Any) -> bool:
        """Whether the policy lets the actor do a team action (only to offer keys)."""
        team, rel = self.dashboard.team, self.dashboard.relation
        if team is None or rel is None:
            return False
        return decide_team(action, team, rel, **kw).allowed

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "unfilter":
            return self.has_filter()
        if action == "filter":
            return self.refusal is None
        return True


# -- roster ------------------------------------------------------------------------------------


class RosterView(TeamView):
    """Every team user with role and MFA badge; add, change, remove; add a collaborator."""

    noun = "users"
    COLUMNS = (("email", "Email"), ("name", "Name"), ("role", "Role"), ("mfa", "MFA"),
               ("since", "Since"), ("apps", "Apps (collaborators)"))
    SORTS = ("email", "name", "role", "mfa", "since")
    SQUEEZE = {"email": (32, 16), "name": (36, 8), "apps": (40, 10)}
    SQUEEZE_LAST = ("email",)

    BINDINGS = [
        Binding("a", "add_user", "Add", id="roster.add", tooltip="Add a team user with a role"),
        Binding("e", "change_role", "Role", id="roster.role", tooltip="Change the selected user's role"),
        Binding("d", "remove_user", "Remove", id="roster.remove", tooltip="Remove the selected user from the team"),
        Binding("c", "add_collaborator", "Collab", id="roster.collaborator",
                tooltip="Add a collaborator (view only) to one app"),
        # Off the footer (it is full at 80 columns); in help, the palette and the README.
        Binding("K", "add_key", "Key", id="roster.key", show=False,
                tooltip="Add an SSH key for the selected user"),
        Binding("m", "toggle_mfa", "No-MFA:off", id="roster.mfa",
                tooltip="Show only users without MFA (or everyone again)"),
        Binding("s", "sort", "Sort", id="roster.sort", tooltip="Sort by the next column"),
        Binding("S", "reverse", "Reverse", id="roster.reverse", show=False,
                tooltip="Reverse the sort order"),
        Binding("enter", "open", "Access", id="roster.open",
                tooltip="Which apps the selected user can reach, and why"),
    ]

    def __init__(self, *, id: str) -> None:
        super().__init__(id=id)
        self.no_mfa_only = False
        self.sort_by = "email"
        self.sort_reversed = False
        self.without_mfa = 0

    def fetch(self) -> Any:
        return queries.roster(self.dashboard.db, self.dashboard.actor.email, self.dashboard.require_team())

    def fetch_first(self) -> Any | None:
        # Only the email order is the store's: another sort needs every row to start with.
        if self.sort_by != "email" or self.sort_reversed:
            return None
        return queries.roster(self.dashboard.db, self.dashboard.actor.email, self.dashboard.require_team(),
                              limit=self.window)

    def accept(self, items: Any) -> None:
        self.items = list(items)
        self.without_mfa = sum(1 for m in self.items if not m.mfa)

    def key(self, item: queries.MemberRow) -> str:
        return item.email

    def cells(self, item: queries.MemberRow) -> Sequence[Text]:
        role = Text(item.role, style="italic" if item.role == queries.COLLABORATOR else "")
        return (cut(item.email, self.room("email")), cut(item.name or "", self.room("name")), role,
                mfa_badge(item.mfa, self.app.no_color), Text(item.since.strftime("%Y-%m-%d")),
                cut(", ".join(item.apps), self.room("apps")))

    def squeeze_text(self, item: queries.MemberRow) -> dict[str, str]:
        return {"email": item.email, "name": item.name or "", "apps": ", ".join(item.apps)}

    def after_load(self) -> None:
        if self.refusal is None:
            self.dashboard.note_roster_shown(self.table.row_count)
        if not self.partial:
            self.dashboard.roster_loaded()

    def haystack(self, item: queries.MemberRow) -> str:
        return f"{item.email} {item.name or ''} {item.role} {' '.join(item.apps)}".lower()  # never shown

    def narrow(self, items: list[Any]) -> list[Any]:
        return [m for m in items if not m.mfa] if self.no_mfa_only else items

    def order(self, items: list[Any]) -> list[Any]:
        keys = {
            "email": lambda m: m.email,
            "name": lambda m: ((m.name or "").lower(), m.email),
            "role": lambda m: (ROLE_ORDER.index(m.role) if m.role in ROLE_ORDER else len(ROLE_ORDER),
                               m.email),
            "mfa": lambda m: (m.mfa, m.email),
            "since": lambda m: (m.since, m.email),
        }
        if self.sort_by == "email":
            # the store sorts by email already
            return items[::-1] if self.sort_reversed else items
        return sorted(items, key=keys[self.sort_by], reverse=self.sort_reversed)

    def status_extra(self, line: Text) -> None:
        line.append(" · ")
        if self.without_mfa:
            line.append(f"{NO_MFA}: {self.without_mfa}", style="bold red")
        else:
            line.append("everyone has MFA", style="green")
        if self.no_mfa_only:
            line.append(" · showing only users without MFA", style="bold")
        line.append(f" · sorted by {self.sort_by}" + (" (reversed)" if self.sort_reversed else ""))

    def after_refilter(self) -> None:
        for key, label in self.COLUMNS:
            mark = (" ▼" if self.sort_reversed else " ▲") if key == self.sort_by else ""
            self.table.columns[key].label = (  # type: ignore[index]
                self.label(key, label + mark) if key in self.SQUEEZE else Text(label + mark))
        self.table.refresh()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "unfilter":
            return self.has_filter()
        if action in ("add_user", "change_role", "remove_user"):
            if not self.allowed(TeamAction.MANAGE_MEMBERS):
                return False
            if action != "add_user" and self.selected() is None:
                return None
        if action == "add_collaborator" and not self.allowed(TeamAction.ADD_COLLABORATOR):
            return False
        if action == "add_key":
            # Offered to the team's admins (as members:add is); whether this admin may add a
            # key for this user is the store's act-for rule, asked when the key is pressed.
            if not self.allowed(TeamAction.MANAGE_MEMBERS):
                return False
            if self.selected() is None:
                return None
        if action in ("toggle_mfa", "sort", "reverse", "filter", "open") and self.refusal is not None:
            return False
        return True


    def empty_hint(self) -> str:
        return "nobody yet — press a to add a user" if self.allowed(
            TeamAction.MANAGE_MEMBERS) else "nobody yet"

    def why_not(self, action: str) -> str | None:
        rel, team = self.dashboard.relation, self.dashboard.team
        if rel is None or team is None or self.refusal is not None:
            return None
        if action in ("add_user", "change_role", "remove_user"):
            decision = decide_team(TeamAction.MANAGE_MEMBERS, team, rel)
            if not decision:
                return decision.reason + "."
            verb = "remove" if action == "remove_user" else "change"
            return f"The list is empty: nobody to {verb} (a adds a user)."
        if action == "add_collaborator":
            return decide_team(TeamAction.ADD_COLLABORATOR, team, rel).reason + "."
        return None

    # -- actions -----------------------------------------------------------------------------

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        """Enter shows what the user can reach."""
        event.stop()
        self.action_open()

    def action_open(self) -> None:
        """Show every app of the team the selected user can reach, with each source."""
        member = self.selected()
        if member is None:
            return
        dashboard, team = self.dashboard, self.dashboard.require_team()

        def reach() -> list[tuple[str, str]]:
            found = queries.member_access(dashboard.db, dashboard.actor.email, team, member.email)
            return [(row.name, f"{' '.join(row.permissions)}  ({'; '.join(d for _s, _p, d in src)})")
                    for row, src in found]

        def show(lines: list[tuple[str, str]]) -> None:
            holds = "holds grants on" if member.role == queries.COLLABORATOR else "reaches"
            count = f"{len(lines)} app{'' if len(lines) == 1 else 's'}"
            title = f"{member.email} ({member.role}) {holds} {count} of {team}"
            about = [("name", member.name or ""), ("role", member.role),
                     ("MFA", "enabled" if member.mfa else "NOT enabled"),
                     ("since", member.since.strftime("%Y-%m-%d")), ("", "")]
            dashboard.push_screen(HelpScreen(title, about + (lines or [("", "no access to any app")])))

        dashboard.fetch_then(reach, show)

    def action_toggle_mfa(self) -> None:
        """Show only users without MFA, or everyone again; the footer says which."""
        self.no_mfa_only = not self.no_mfa_only
        label = f"No-MFA:{'on' if self.no_mfa_only else 'off'}"
        for key, bindings in self._bindings.key_to_bindings.items():
            self._bindings.key_to_bindings[key] = [
                replace(b, description=label) if b.action == "toggle_mfa" else b for b in bindings
            ]
        self.refilter()
        self.screen.refresh_bindings()

    def action_sort(self) -> None:
        """Sort by the next column (ascending)."""
        self.sort_by = self.SORTS[(self.SORTS.index(self.sort_by) + 1) % len(self.SORTS)]
        self.sort_reversed = False
        self.refilter()

    def action_reverse(self) -> None:
        """Reverse the order of the sorted column."""
        self.sort_reversed = not self.sort_reversed
        self.refilter()

    def on_data_table_header_selected(self, event: DataTable.HeaderSelected) -> None:
        """A click on a column's header sorts by it; a second click reverses it."""
        event.stop()
        key = event.column_key.value
        if key not in self.SORTS:
            return
        if key == self.sort_by:
            self.sort_reversed = not self.sort_reversed
        else:
            self.sort_by, self.sort_reversed = key, False
        self.refilter()

    def action_add_user(self) -> None:
        """Ask for an email and a role, then add the user."""
        dashboard, team = self.dashboard, self.dashboard.require_team()

        def add(values: dict[str, Any]) -> ops.MemberChange:
            return ops.add_member(dashboard.db, dashboard.actor, team, values["email"], values["role"])

        def done(change: ops.MemberChange | None) -> None:
            if change is not None:
                verb = "Added" if change.previous_role is None else "Set"
                dashboard.report(f"{verb} {change.email} to {change.team} as {change.role}.")
                dashboard.data_changed(focus=change.email)

        dashboard.push_screen(AddUserDialog(team, add), done)

    def admins(self) -> int:
        """How many admins the loaded roster shows (the store counts again when it writes)."""
        return sum(1 for m in self.items if m.role == Relation.ADMIN.value)

    def member_decision(self, member: queries.MemberRow, new_role: str | None) -> Decision:
        """The policy's answer for giving ``member`` ``new_role`` (None: removing them)."""
        rel = self.dashboard.relation or Relation.OUTSIDER
        return decide_member_change(self.dashboard.require_team(), rel, member.email, member.role,
                                    new_role, self.admins())

    def _chosen_member(self, new_role: str | None) -> queries.MemberRow | None:
        """The selected user, if the policy lets any such change go ahead; else say why not."""
        member = self.selected()
        if member is None:
            self.dashboard.report("No user is selected: move to one with j/k or the arrows.", error=True)
            return None
        decision = self.member_decision(member, new_role)
        if not decision:
            self.dashboard.report(decision.reason + ".", error=True)
            return None
        return member

    def _is_me(self, member: queries.MemberRow) -> bool:
        return member.email == self.dashboard.actor.email

    def _you_lose(self, before: str, after: Relation, team: str) -> Text:
        """What changing your own role (or leaving) takes away, in words."""
        lost = lost_by_role_change(team, Relation(before), after)
        body = Text()
        if lost:
            body.append("You can no longer: ")
            body.append("; ".join(a.value for a in lost), style="bold")
            body.append(".\n")
        if before == Relation.ADMIN.value:
            body.append("You lose every permission the admin role gives on the team's apps. ")
        body.append("Only an admin can give it back.")
        return body

    def action_change_role(self) -> None:
        """Change the role of the selected user (asking first when it is your own)."""
        member = self.selected()
        other = "member" if member is not None and member.role != "member" else "viewer"
        member = self._chosen_member(other)
        if member is None:
            return
        dashboard, team = self.dashboard, self.dashboard.require_team()

        def change_to(role: str) -> ops.MemberChange:
            if role not in SETTABLE_ROLES:  # members:set assigns admin or member; add sets any role
                return ops.add_member(dashboard.db, dashboard.actor, team, member.email, role)
            return ops.set_role(dashboard.db, dashboard.actor, team, member.email, role)

        def check(values: dict[str, Any]) -> str | None:
            decision = self.member_decision(member, values["role"])
            return None if decision else decision.reason + "."

        def done(change: ops.MemberChange | None) -> None:
            if change is not None:
                dashboard.report(f"{change.email} is now {change.role} of {change.team}.")
                dashboard.data_changed(focus=change.email)

        if not self._is_me(member):
            dashboard.push_screen(RoleDialog(member.email, member.role,
                                             lambda values: change_to(values["role"]), check=check), done)
            return

        def chosen(values: dict[str, Any] | None) -> None:
            if not values:
                return
            role = values["role"]
            body = self._you_lose(member.role, Relation(role), team)
            dashboard.confirm_op(Text(f"Make yourself {'an' if role == 'admin' else 'a'} {role} of {clean(team)}?"),
                                 body, "Change my role", lambda: change_to(role),
                                 lambda c: f"You are now {c.role} of {c.team}.")

        dashboard.push_screen(RoleDialog(member.email, member.role, None, check=check, yourself=True), chosen)

    def action_remove_user(self) -> None:
        """Confirm (naming the user and the apps where their grants remain), then remove."""
        member = self._chosen_member(None)
        if member is None:
            return
        dashboard, team = self.dashboard, self.dashboard.require_team()
        me = self._is_me(member)

        def grants() -> list[str]:
            return [
                row.name
                for row, sources in queries.member_access(dashboard.db, dashboard.actor.email, team, member.email)
                if any(source == Source.GRANT for source, _p, _d in sources)
            ]

        def ask(kept: list[str]) -> None:
            if me:
                body = self._you_lose(member.role, Relation.OUTSIDER, team)
                body.append("\n")
            else:
                body = Text()
                body.append(clean(member.email), style="bold")
                body.append(f" loses the {member.role} role in {clean(team)} at once.\n")
            whose = "Your" if me else "Their"
            if kept:
                body.append(f"{whose} explicit grants stay on: ")
                body.append(", ".join(clean(k) for k in kept), style="bold")
                body.append("\n(a collaborator there; revoke them with d in each app's "
                            "access pane if they should go too).")
            else:
                body.append(f"{'You hold' if me else 'They hold'} no explicit grants on the team's apps.")
            title = Text(f"Remove yourself from {clean(team)}?" if me
                         else f"Remove {clean(member.email)} from {clean(team)}?")
            dashboard.confirm_op(title, body, "Remove me" if me else "Remove",
                                 lambda: ops.remove_member(dashboard.db, dashboard.actor, team, member.email), _removed)

        dashboard.fetch_then(grants, ask)

    def action_add_collaborator(self) -> None:
        """Add a collaborator with view on one of the team's apps."""
        dashboard, team = self.dashboard, self.dashboard.require_team()

        def names() -> list[str]:
            return [a.name for a in queries.apps(dashboard.db, dashboard.actor.email, team)]

        def add(values: dict[str, Any]) -> ops.GrantChange:
            return ops.add_collaborator(dashboard.db, dashboard.actor, team, values["email"], values["app"])

        def done(change: ops.GrantChange | None) -> None:
            if change is not None:
                dashboard.report(f"Added {change.email} as a collaborator on {change.app} (view).")
                dashboard.data_changed(focus=change.email)

        dashboard.fetch_then(names, lambda apps: dashboard.push_screen(CollaboratorDialog(team, apps, add), done))


    def action_add_key(self) -> None:
        """Add an SSH key for the selected user, if the act-for rule lets you (else say why)."""
        member = self.selected()
        if member is None:
            self.dashboard.report("Choose a user first (j/k or arrows).", error=True)
            return
        dashboard = self.dashboard

        def decided(decision: Any) -> None:
            if not decision.allowed:
                dashboard.report(decision.reason, error=True)
                return
            add_key_for(dashboard, None if member.email == dashboard.actor.email else member.email)

        dashboard.fetch_then(lambda: queries.key_rule(dashboard.db, dashboard.actor.email, member.email), decided)


def _removed(removal: ops.Removal) -> str:
    line = f"Removed {removal.email} from {removal.team}."
    if removal.kept_grants:
        line += f" Their grants remain on: {', '.join(removal.kept_grants)}."
    return line


# -- apps --------------------------------------------------------------------------------------


class AppsView(TeamView):
    """Every app the actor may list, with lock, owner and the actor's own permissions."""

    noun = "apps"
    COLUMNS = (("name", "App"), ("lock", "Lock"), ("owner", "Owner"), ("perms", "Your permissions"),
               ("requests", "Req"))

    BINDINGS = [
        Binding("enter", "open", "Access", id="apps.open", tooltip="Open the app's access pane"),
        Binding("n", "create", "New", id="apps.create", tooltip="Create an app in the team"),
        Binding("l", "lock", "Lock", id="apps.lock", tooltip="Lock the selected app"),
        Binding("u", "unlock", "Unlock", id="apps.unlock", tooltip="Unlock the selected app"),
        Binding("plus", "join", "Join", id="apps.join", tooltip="Join the selected app (view)"),
        Binding("minus", "leave", "Leave", id="apps.leave", tooltip="Leave the selected app (drop your grant)"),
        Binding("i", "transfer_in", "In", id="apps.transfer_in",
                tooltip="Move one of your apps into the team"),
        Binding("o", "transfer_out", "Out", id="apps.transfer_out",
                tooltip="Move the selected app out of the team to an account"),
        Binding("d", "destroy", "Destroy", id="apps.destroy", tooltip="Destroy the selected app"),
        # On the footer where it can act (an admin's footer leaves it out: they hold everything).
        Binding("R", "request", "Request", id="apps.request",
                tooltip="Request access to the selected app (permissions, how long, why)"),
    ]

    def __init__(self, *, id: str) -> None:
        super().__init__(id=id)
        self.my_grants: dict[str, tuple[frozenset[str], str]] = {}

    def fetch(self) -> Any:
        dashboard, team = self.dashboard, self.dashboard.require_team()
        rows = queries.apps(dashboard.db, dashboard.actor.email, team)
        grants: dict[str, tuple[frozenset[str], str]] = {}
        for row, sources in queries.member_access(dashboard.db, dashboard.actor.email, team, dashboard.actor.email):
            for source, perms, detail in sources:
                if source == Source.GRANT:
                    grants[row.name] = (frozenset(perms), detail)
        return rows, grants

    def listed(self, items: Any) -> list[Any]:
        return list(items[0])

    def accept(self, items: Any) -> None:
        rows, self.my_grants = items
        self.items = list(rows)

    def key(self, item: queries.AppRow) -> str:
        return item.name

    def cells(self, item: queries.AppRow) -> Sequence[Text]:
        owner = item.team if item.team is not None else item.owner
        perms = perms_text(item.permissions)
        if not item.permissions and item.locked:
            perms = Text("none (locked)", style="dim")
        elif item.name in self.my_grants:
            # joining adds a grant, not a permission a member lacked: show that it is there
            perms.append(" (grant)", style="italic")
        # Pending access requests: counted only for those who may decide them (0 for the rest).
        waiting = (Text(str(item.pending_requests), style="bold yellow", justify="right")
                   if item.pending_requests else Text(""))
        return (text(item.name), lock_badge(item.locked), text(owner or ""), perms, waiting)

    def haystack(self, item: queries.AppRow) -> str:
        lock = "locked" if item.locked else "open"
        return f"{item.name} {item.team or item.owner or ''} {lock} {' '.join(item.permissions)}".lower()

    def status_extra(self, line: Text) -> None:
        locked = sum(1 for a in self.items if a.locked)
        line.append(f" · {locked} locked")
        waiting = sum(a.pending_requests for a in self.items)
        if waiting:
            line.append(f" · {waiting} access request{'s' if waiting > 1 else ''} waiting for you: "
                        "r lists them", style="bold")

    def facts(self, item: queries.AppRow) -> tuple[AppFacts, Standing]:
        """What the policy needs to grey out the app actions for the selected app."""
        rel = self.dashboard.relation
        role = rel.value if rel in (Relation.ADMIN, Relation.MEMBER, Relation.VIEWER) else None
        grant = self.my_grants.get(item.name)
        return (
            AppFacts(item.name, item.team, item.owner, item.locked, item.locked_at),
            Standing(self.dashboard.actor.email, role, None, grant[0] if grant else None,
                     None),
        )

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "unfilter":
            return self.has_filter()
        if self.dashboard.relation is None:
            return action == "filter"
        if action == "create":
            return self.allowed(TeamAction.CREATE_APP)
        if action == "transfer_in":
            return self.allowed(TeamAction.TRANSFER_IN, owns_app=True)
        item = self.selected()
        app_actions = {"lock": AppAction.LOCK, "unlock": AppAction.UNLOCK, "join": AppAction.JOIN,
                       "leave": AppAction.LEAVE, "destroy": AppAction.DESTROY}
        if action == "transfer_out":
            if not self.allowed(TeamAction.TRANSFER_OUT):
                return False
            return None if item is None else True
        if action == "open":
            return None if item is None else True
        if action == "request":
            # Offered where the actor lacks a permission; whether they may ask is the store's
            # rule, asked when the form is sent.
            if item is None:
                return None
            return len(item.permissions) < len(PERMISSIONS)
        if action in app_actions:
            if item is None:
                return False
            facts, standing = self.facts(item)
            return decide_app(app_actions[action], facts, standing).allowed
        return True


    def empty_hint(self) -> str:
        if self.allowed(TeamAction.CREATE_APP):
            return "no apps yet — press n to create one, or i to move one of yours in"
        return "no apps you may see yet — ask a team admin or member for one"

    def why_not(self, action: str) -> str | None:
        rel, team = self.dashboard.relation, self.dashboard.team
        if rel is None or team is None or self.refusal is not None:
            return None
        team_actions = {"create": TeamAction.CREATE_APP, "transfer_in": TeamAction.TRANSFER_IN,
                        "transfer_out": TeamAction.TRANSFER_OUT}
        if action in team_actions:
            decision = decide_team(team_actions[action], team, rel, owns_app=True)
            if not decision:
                return decision.reason + "."
        item = self.selected()
        if item is None:
            create = " (n creates one)" if self.allowed(TeamAction.CREATE_APP) else ""
            return f"No app is selected: the list is empty{create}."
        app_actions = {"lock": AppAction.LOCK, "unlock": AppAction.UNLOCK, "join": AppAction.JOIN,
                       "leave": AppAction.LEAVE, "destroy": AppAction.DESTROY}
        if action == "request":
            return f"You already hold every permission on {clean(item.name)}: nothing to request."
        if action == "lock" and item.locked:  # said first: whoever you are, nothing to do
            return f"{clean(item.name)} is already locked."
        if action in app_actions:
            facts, standing = self.facts(item)
            decision = decide_app(app_actions[action], facts, standing)
            if not decision:
                return decision.reason.rstrip(".") + "."
        return None

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        """Enter opens the access pane."""
        event.stop()
        self.action_open()

    # -- actions ---------------------------------------------------------------------------------

    def _need(self) -> queries.AppRow | None:
        item = self.selected()
        if item is None:
            self.dashboard.report("Choose an app first (j/k or arrows).", error=True)
        return item

    def action_open(self) -> None:
        """Open the selected app's access pane."""
        item = self._need()
        if item is not None:
            self.dashboard.open_access(item.name)

    def action_request(self) -> None:
        """Ask for access to the selected app (permissions, how long, a reason)."""
        item = self._need()
        if item is not None:
            file_request(self.dashboard, item.name)

    def action_create(self) -> None:
        """Create an app in the team."""
        dashboard, team = self.dashboard, self.dashboard.require_team()

        def create(values: dict[str, Any]) -> ops.AppChange:
            return ops.create_app(dashboard.db, dashboard.actor, values["name"], team, locked=values["locked"])

        def done(change: ops.AppChange | None) -> None:
            if change is not None:
                dashboard.report(f"Created {change.app} in {change.team}"
                                 + (" (locked)." if change.locked else "."))
                dashboard.data_changed(focus=change.app)

        dashboard.push_screen(CreateAppDialog(team, create), done)

    def action_lock(self) -> None:
        """Lock the selected app."""
        item = self._need()
        if item is not None:
            self.dashboard.run_op(lambda: ops.lock_app(self.dashboard.db, self.dashboard.actor, item.name),
                                  lambda c: f"Locked {c.app}.")

    def action_unlock(self) -> None:
        """Unlock the selected app."""
        item = self._need()
        if item is not None:
            self.dashboard.run_op(lambda: ops.unlock_app(self.dashboard.db, self.dashboard.actor, item.name),
                                  lambda c: f"Unlocked {c.app}.")

    def action_join(self) -> None:
        """Give yourself view on the selected app."""
        item = self._need()
        if item is not None:
            self.dashboard.run_op(lambda: ops.join_app(self.dashboard.db, self.dashboard.actor, item.name),
                                  lambda c: f"Joined {c.app}: you now hold a view grant on it, which "
                                  "stays if it is locked.")

    def action_leave(self) -> None:
        """Drop your own grant on the selected app (after confirmation)."""
        item = self._need()
        if item is None:
            return
        dashboard = self.dashboard

        if dashboard.relation is Relation.COLLABORATOR:  # no team role: the grant is all they have
            body = "You will lose access to it: your grant is all you hold there."
        else:
            body = "Your explicit grant on it will be dropped; what your team role gives stays."
        dashboard.confirm_op(Text(f"Leave {clean(item.name)}?"), Text(body), "Leave",
                             lambda: ops.leave_app(dashboard.db, dashboard.actor, item.name), lambda c: f"Left {c.app}.")

    def action_transfer_in(self) -> None:
        """Choose one of your apps outside the team, confirm, move it in."""
        dashboard, team = self.dashboard, self.dashboard.require_team()

        teams_of: dict[str, str | None] = {}

        def candidates() -> list[str]:
            found = [a for a in queries.apps(dashboard.db, dashboard.actor.email) if a.team != team]
            teams_of.update((a.name, a.team) for a in found)
            return [a.name for a in found]

        def chosen(values: dict[str, Any] | None) -> None:
            if not values:
                return
            app, locked = values["app"], values["locked"]
            old_team = teams_of.get(app)
            before = (f" Grants from {clean(old_team)} are removed;" if old_team
                      else " It is your personal app today;")
            body = Text(f"{clean(app)} will belong to {clean(team)}"
                        + (" and be locked" if locked else "") + "." + before
                        + " you get a full grant unless you are a team admin.")

            dashboard.confirm_op(Text(f"Transfer {clean(app)} into {clean(team)}?"), body, "Transfer",
                                 lambda: ops.transfer_app(dashboard.db, dashboard.actor, app, team, locked=locked),
                                 lambda c: f"Transferred {c.app} into {c.team}.")

        dashboard.fetch_then(candidates, lambda names: dashboard.push_screen(TransferInDialog(team, names), chosen))

    def action_transfer_out(self) -> None:
        """Name the new owner, confirm (listing the grants that go), move the app out."""
        item = self._need()
        if item is None:
            return
        dashboard = self.dashboard

        def chosen(values: dict[str, Any] | None) -> None:
            if not values:
                return
            recipient = values["recipient"].strip()

            def holders() -> list[str]:
                view = queries.app_access(dashboard.db, dashboard.actor.email, item.name)
                return [r.email for r in view.rows if r.grant is not None]

            def ask(emails: list[str]) -> None:
                body = Text(f"{clean(item.name)} will belong to {clean(recipient)}. ")
                if emails:
                    body.append(f"Every grant on it is removed ({len(emails)}): ")
                    body.append(", ".join(clean(e) for e in emails), style="bold")
                    body.append(".")
                else:
                    body.append("No grants are held on it.")

                dashboard.confirm_op(Text(f"Transfer {clean(item.name)} out of the team?"), body,
                                     "Transfer",
                                     lambda: ops.transfer_app(dashboard.db, dashboard.actor, item.name, recipient),
                                     lambda c: f"Transferred {c.app} to {c.owner}.")

            dashboard.fetch_then(holders, ask)

        dashboard.push_screen(TransferOutDialog(item.name), chosen)

    def action_destroy(self) -> None:
        """Confirm, then destroy the selected app."""
        item = self._need()
        if item is None:
            return
        dashboard = self.dashboard

        body = Text(f"{clean(item.name)} is removed with all its grants and resources. "
                    "This can't be undone.")

        def done(change: ops.AppChange | None) -> None:
            if change is not None:
                dashboard.report(f"Destroyed {change.app}.")
                dashboard.data_changed()

        dashboard.push_screen(DestroyDialog(item.name, body,
                                            lambda _values: ops.destroy_app(dashboard.db, dashboard.actor, item.name)),
                              done)


# -- audit, resources, billing ---------------------------------------------------------------


def _value(value: Any) -> str:
    if isinstance(value, list | tuple):
        return ",".join(str(v) for v in value) or "none"
    return str(value)


def _facts(data: dict | None) -> str:
    return " ".join(f"{k}={_value(v)}" for k, v in sorted((data or {}).items()))


def _detail(row: queries.AuditRow) -> str:
    if row.outcome != "ok" and row.reason:
        return row.reason
    return " → ".join(part for part in (_facts(row.before), _facts(row.after)) if part)


def _via(row: queries.AuditRow, short: bool = False) -> str:
    """How the actor came: over SSH, the key's fingerprint and the client; else the OS login."""
    if not row.actor_key:
        return row.actor_login or ""
    key, peer = row.actor_key, row.actor_peer
    if short:  # enough to tell keys and hosts apart; the event's detail has them whole
        key = "key " + key.removeprefix("SHA256:")[:8] + "…"
        peer = peer.rsplit(":", 1)[0] if peer else peer
    return f"{key} {peer}" if peer else key


class AuditView(TeamView):
    """The team's audit log, newest first (admins only); enter shows one event in full."""

    BINDINGS = [
        Binding("enter", "open", "Details", id="audit.open", tooltip="Show the selected event in full"),
    ]

    noun = "events"
    WINDOW = 200
    # The outcome first: a refusal must be seen at 80 columns, whatever the other cells hold.
    COLUMNS = (("outcome", "Outcome"), ("at", "When (UTC)"), ("actor", "Actor"), ("via", "Via"),
               ("action", "Action"), ("app", "App"), ("target", "Target"), ("detail", "Detail"))
    SQUEEZE = {"detail": (48, 6), "target": (28, 6), "actor": (28, 6), "via": (28, 4),
               "app": (24, 4), "action": (32, 6)}
    SQUEEZE_LAST = ("actor", "via", "target")

    def fetch(self) -> Any:
        return queries.audit(self.dashboard.db, self.dashboard.actor.email, self.dashboard.require_team(), limit=2000)

    def key(self, item: queries.AuditRow) -> str:
        return str(item.id)

    def cells(self, item: queries.AuditRow) -> Sequence[Text]:
        outcome = Text("✓ ok", style="green") if item.outcome == "ok" else Text(
            "✗ " + clean(item.outcome), style="bold reverse red")
        return (outcome, Text(item.at.strftime("%Y-%m-%d %H:%M")),
                cut(item.actor_email, self.room("actor")),
                cut(_via(item, short=True), self.room("via")), cut(item.action, self.room("action")),
                cut(item.app or "", self.room("app")), cut(item.target or "", self.room("target")),
                cut(_detail(item), self.room("detail")))

    def squeeze_text(self, item: queries.AuditRow) -> dict[str, str]:
        return {"actor": item.actor_email, "via": _via(item, short=True), "app": item.app or "",
                "target": item.target or "", "detail": _detail(item), "action": item.action}

    def haystack(self, item: queries.AuditRow) -> str:
        return " ".join((item.at.strftime("%Y-%m-%d %H:%M"), item.actor_email, _via(item),
                         item.action,
                         item.app or "", item.target or "", item.outcome, _detail(item))).lower()

    def status_extra(self, line: Text) -> None:
        denied = sum(1 for e in self.items if e.outcome != "ok")
        line.append(f" · {denied} denied · newest first")

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "unfilter":
            return self.has_filter()
        if action == "open":
            return self.refusal is None and (self.selected() is not None or None)
        return super().check_action(action, parameters)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        """Enter shows the event."""
        event.stop()
        self.action_open()

    def action_open(self) -> None:
        """Show every field of the selected event."""
        event = self.selected()
        if event is None:
            return
        fields = [
            ("when (UTC)", event.at.strftime("%Y-%m-%d %H:%M:%S")),
            ("actor", event.actor_email + (f" ({event.actor_login})" if event.actor_login else "")),
            ("ssh key", event.actor_key or ""),
            ("from", event.actor_peer or ""),
            ("action", event.action),
            ("outcome", event.outcome),
            ("team", event.team or ""),
            ("app", event.app or ""),
            ("target", event.target or ""),
            ("before", _facts(event.before)),
            ("after", _facts(event.after)),
            ("reason", event.reason or ""),
        ]
        self.dashboard.push_screen(HelpScreen(f"Audit event {event.id}",
                                              [(k, clean(v)) for k, v in fields if v]))


class ResourcesView(TeamView):
    """The dynos and add-ons of the team's apps."""

    noun = "resources"
    COLUMNS = (("app", "App"), ("kind", "Kind"), ("name", "Name"), ("plan", "Plan"),
               ("qty", "Qty"), ("monthly", "Monthly"))

    def fetch(self) -> Any:
        return queries.resources(self.dashboard.db, self.dashboard.actor.email, self.dashboard.require_team())

    def key(self, item: queries.ResourceRow) -> str:
        return f"{item.app}\x00{item.kind}\x00{item.name}"

    def cells(self, item: queries.ResourceRow) -> Sequence[Text]:
        return (text(item.app), text(item.kind), text(item.name), text(item.plan),
                Text(str(item.quantity), justify="right"),
                Text(money(item.monthly_cents * item.quantity), justify="right"))


class BillingView(TeamView):
    """Monthly cost per app and in total (admins only; others see why not)."""

    noun = "apps"
    COLUMNS = (("app", "App"), ("monthly", "Monthly"))

    def fetch(self) -> Any:
        return queries.billing(self.dashboard.db, self.dashboard.actor.email, self.dashboard.require_team())

    def key(self, item: queries.BillingRow) -> str:
        return item.app

    def cells(self, item: queries.BillingRow) -> Sequence[Text]:
        return (text(item.app), Text(money(item.monthly_cents), justify="right"))

    def status_extra(self, line: Text) -> None:
        line.append(" · total ")
        line.append(money(sum(b.monthly_cents for b in self.items)) + " a month", style="bold")
