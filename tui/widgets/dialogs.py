"""Modal dialogs: y/n confirmations, small forms that run one store operation, the team switcher, help."""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from rich.text import Text
from teamaccess.store import validate
from teamaccess.store.errors import Invalid, StoreError
from teamaccess.store.words import OPTIONAL_PERMISSIONS, ROLES, Permission
from teamaccess.tui.errorlog import unexpected
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import (
    Button,
    Checkbox,
    Footer,
    Input,
    OptionList,
    RadioButton,
    RadioSet,
    Select,
    Static,
)
from textual.widgets.option_list import Option

from .safe import clean, text
from .words import in_dashboard_words


class _PlainMark:
    """A toggle's mark as a character (on or off) rather than a colour, for NO_COLOR and 16
    colours; mixed into Textual's Checkbox and RadioButton through their public hooks."""

    MARKS: tuple[str, str] = ("x", " ")  # (on, off)
    BUTTON_INNER: str
    value: bool

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._show_mark()  # a value given to the constructor doesn't call the watcher

    def _show_mark(self) -> None:
        on, off = self.MARKS
        self.BUTTON_INNER = on if self.value else off

    def watch_value(self) -> None:
        self._show_mark()
        super().watch_value()  # type: ignore[misc]


class Tick(_PlainMark, Checkbox):
    """A checkbox whose mark reads without colour (``x`` or blank)."""


class Choice(_PlainMark, RadioButton):
    """A radio button whose mark reads without colour (a dot or blank)."""

    MARKS = ("\u25cf", " ")


class TooSmall(Static):
    """The polite note shown instead of any screen when the terminal is below 80x24."""

    def __init__(self) -> None:
        super().__init__(
            "teamaccess needs a terminal of at least 80 columns by 24 rows.\n"
            "Please enlarge the window (or press ctrl+q to quit).",
            classes="too-small",
        )


def field(placeholder: str, *, id: str, value: str = "") -> Input:
    """A one-line text input with the cursor steady (blinking costs redraws over SSH)."""
    box = Input(value=value, placeholder=placeholder, id=id, compact=True)
    box.cursor_blink = False
    return box


class ConfirmDialog(ModalScreen[bool]):
    """Ask before anything destructive: ``y`` confirms, ``n`` or ``escape`` backs out."""

    BINDINGS = [
        Binding("y", "answer(True)", "Yes", id="confirm.yes"),
        Binding("n", "answer(False)", "No", id="confirm.no"),
        Binding("escape", "answer(False)", "Cancel", id="confirm.cancel"),
        Binding("q", "answer(False)", "Cancel", show=False),  # q backs out here, never quits
    ]

    def __init__(self, title: str | Text, body: str | Text, *, yes: str = "Yes") -> None:
        super().__init__(classes="dialog-screen")
        self._title = title if isinstance(title, Text) else text(title)
        self._body = body if isinstance(body, Text) else text(body)
        self._yes = yes

    def compose(self) -> ComposeResult:
        yield TooSmall()
        with Vertical(classes="dialog confirm"):
            yield Static(self._title, classes="dialog-title")
            yield Static(self._body, classes="dialog-body")
            with Horizontal(classes="dialog-buttons"):
                yield Button(Text(f"{self._yes} (y)"), variant="error", id="yes", compact=True)
                yield Button(Text("No (n)"), id="no", compact=True)
        yield Footer(compact=True)  # this dialog's keys, not the screen's underneath

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()  # enter on a fresh dialog must not destroy

    def action_answer(self, answer: bool) -> None:
        """Close with the answer."""
        self.dismiss(answer)

    @on(Button.Pressed, "#yes")
    def _yes_pressed(self) -> None:
        self.dismiss(True)

    @on(Button.Pressed, "#no")
    def _no_pressed(self) -> None:
        self.dismiss(False)


class FormDialog(ModalScreen[Any]):
    """A small form. With ``action`` it runs that store operation in a worker and closes with its
    result, or keeps the form open showing the store's one-line reason; without, it closes with
    the form's values. ``escape`` always closes with None and changes nothing.
    """

    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="form.cancel"),
        Binding("ctrl+s", "submit", "Save", id="form.submit"),
        Binding("q", "cancel", "Cancel", show=False),  # off a text box q backs out, never quits
    ]

    class Finished(Message):
        """The worker's outcome: a result, or the error to show."""

        def __init__(self, result: Any = None, error: str | None = None) -> None:
            super().__init__()
            self.result = result
            self.error = error

    title_text: str = ""
    ok_label: str = "Save"
    #: A form holding a Select: tall enough that the Select's list opens inside the dialog.
    holds_choices: bool = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        # The footer names ctrl+s as the button does ("Destroy (ctrl+s)", not "Save").
        if "ok_label" in cls.__dict__ and "BINDINGS" not in cls.__dict__:
            cls.BINDINGS = [Binding("ctrl+s", "submit", cls.ok_label, id="form.submit")]
        super().__init_subclass__(**kwargs)

    def __init__(self, action: Callable[[dict[str, Any]], Any] | None = None) -> None:
        super().__init__(classes="dialog-screen")
        self._action = action
        self._busy = False

    def compose(self) -> ComposeResult:
        yield TooSmall()
        with Vertical(classes="dialog form" + (" holds-choices" if self.holds_choices else "")):
            yield Static(text(self.title_text), classes="dialog-title")
            yield from self.fields()
            yield Static("", classes="dialog-error", id="error")
            with Horizontal(classes="dialog-buttons"):
                yield Button(Text(f"{self.ok_label} (ctrl+s)"), variant="primary", id="ok",
                             compact=True)
                yield Button(Text("Cancel (esc)"), id="cancel", compact=True)
        yield Footer(compact=True)

    def fields(self) -> Iterable[Any]:
        """The form's widgets."""
        return ()

    def values(self) -> dict[str, Any]:
        """The form's values."""
        return {}

    def check(self, values: dict[str, Any]) -> str | None:
        """A one-line problem with the values before asking the store, or None."""
        return None

    def show_error(self, message: str) -> None:
        """Show a one-line problem under the fields."""
        self.query_one("#error", Static).update(text(in_dashboard_words(message)))

    def action_cancel(self) -> None:
        """Close without changing anything."""
        self.dismiss(None)

    def action_submit(self) -> None:
        """Check the form, then run the operation (or hand back the values)."""
        if self._busy:
            return
        values = self.values()
        problem = self.check(values)
        if problem:
            self.show_error(problem)
            return
        if self._action is None:
            self.dismiss(values)
            return
        self._busy = True
        self.show_error("Working…")
        self._run(values)

    @work(thread=True, exclusive=True, group="form")
    def _run(self, values: dict[str, Any]) -> None:
        try:
            result = self._action(values)  # type: ignore[misc]
        except StoreError as err:
            self.post_message(self.Finished(error=str(err)))
        except Exception as err:  # never a traceback in the face of the user
            self.post_message(self.Finished(error=unexpected(err, "doing what the form asked")))
        else:
            self.post_message(self.Finished(result=result))

    def on_form_dialog_finished(self, message: Finished) -> None:
        """Close on success; on refusal keep the form and say why."""
        self._busy = False
        if message.error is not None:
            self.show_error(message.error)
        else:
            self.dismiss(message.result)

    @on(Input.Submitted)
    def _enter(self) -> None:
        self.action_submit()

    @on(Button.Pressed, "#ok")
    def _ok(self) -> None:
        self.action_submit()

    @on(Button.Pressed, "#cancel")
    def _cancel(self) -> None:
        self.dismiss(None)


def _roles(current: str | None, choices: Sequence[str]) -> RadioSet:
    return RadioSet(
        *(Choice(Text(role), value=(role == current), id=f"role-{role}", compact=True) for role in choices),
        id="role",
        compact=True,
    )


def _chosen_role(dialog: ModalScreen, choices: Sequence[str]) -> str | None:
    pressed = dialog.query_one("#role", RadioSet).pressed_index
    return choices[pressed] if 0 <= pressed < len(choices) else None


class AddUserDialog(FormDialog):
    """Add a team user by email with a role (members:add)."""

    ok_label = "Add"
    ROLES = ROLES

    def __init__(self, team: str, action: Callable[[dict[str, Any]], Any]) -> None:
        self.title_text = f"Add a user to {team}"
        super().__init__(action)

    def fields(self) -> Iterable[Any]:
        yield Static("Email", classes="label")
        yield field("joe@acme.com", id="email")
        yield Static("Role", classes="label")
        yield _roles("member", self.ROLES)

    def values(self) -> dict[str, Any]:
        return {"email": self.query_one("#email", Input).value,
                "role": _chosen_role(self, self.ROLES)}

    def check(self, values: dict[str, Any]) -> str | None:
        if not values["email"].strip():
            return "Type the new user's email, e.g. joe@acme.com."
        return None


class RoleDialog(FormDialog):
    """Change a team user's role."""

    ok_label = "Change"
    ROLES = ROLES

    def __init__(self, email: str, current: str, action: Callable[[dict[str, Any]], Any] | None,
                 *, check: Callable[[dict[str, Any]], str | None] | None = None,
                 yourself: bool = False) -> None:
        self.title_text = "Change your own role" if yourself else f"Change the role of {email}"
        self._current = current
        self._check = check
        super().__init__(action)

    def check(self, values: dict[str, Any]) -> str | None:
        # Decided before the store is asked: a refusal shows here and nothing is written.
        return self._check(values) if self._check is not None else None

    def fields(self) -> Iterable[Any]:
        yield Static(text(f"Now: {self._current}"), classes="label")
        yield _roles(self._current, self.ROLES)

    def on_mount(self) -> None:
        self.query_one("#role", RadioSet).focus()

    def values(self) -> dict[str, Any]:
        return {"role": _chosen_role(self, self.ROLES)}


class CollaboratorDialog(FormDialog):
    """Add a collaborator (view only) to one app of the team."""

    ok_label = "Add"
    holds_choices = True

    def __init__(self, team: str, apps: Sequence[str], action: Callable[[dict[str, Any]], Any],
                 selected: str | None = None) -> None:
        self.title_text = f"Add a collaborator to an app of {team} (view only)"
        self._apps = list(apps)
        self._selected = selected if selected in self._apps else None
        super().__init__(action)

    def fields(self) -> Iterable[Any]:
        yield Static("Email", classes="label")
        yield field("someone@partner.co", id="email")
        yield Static("App", classes="label")
        yield Select([(text(a), a) for a in self._apps], prompt="Choose an app", id="app",
                     compact=True, value=self._selected if self._selected else Select.NULL)

    def values(self) -> dict[str, Any]:
        app = self.query_one("#app", Select).value
        return {"email": self.query_one("#email", Input).value,
                "app": None if app is Select.NULL else app}

    def check(self, values: dict[str, Any]) -> str | None:
        if not values["email"].strip():
            return "Type the collaborator's email."
        if not values["app"]:
            return "Choose the app they may view."
        return None


class CreateAppDialog(FormDialog):
    """Create an app in the team, optionally locked."""

    ok_label = "Create"

    def __init__(self, team: str, action: Callable[[dict[str, Any]], Any]) -> None:
        self.title_text = f"Create an app in {team}"
        super().__init__(action)

    def fields(self) -> Iterable[Any]:
        yield Static("Name (3-30 of a-z, 0-9, -)", classes="label")
        yield field("my-new-app", id="name")
        yield Tick(Text("Locked (team users who join later need a grant)"), id="locked",
                       compact=True)

    def values(self) -> dict[str, Any]:
        return {"name": self.query_one("#name", Input).value,
                "locked": self.query_one("#locked", Checkbox).value}

    def check(self, values: dict[str, Any]) -> str | None:
        if not values["name"].strip():
            return "Type a name for the app, e.g. my-new-app."
        return None


class TransferInDialog(FormDialog):
    """Choose one of the actor's apps outside the team to move into it."""

    ok_label = "Next"
    holds_choices = True

    def __init__(self, team: str, candidates: Sequence[str]) -> None:
        self.title_text = f"Transfer an app into {team}"
        self._candidates = list(candidates)
        super().__init__(None)

    def fields(self) -> Iterable[Any]:
        if not self._candidates:
            yield Static("You have no apps outside this team to transfer in.", classes="label")
            return
        yield Static("App", classes="label")
        yield Select([(text(a), a) for a in self._candidates], prompt="Choose an app", id="app",
                     compact=True)
        yield Tick(Text("Lock it on arrival"), id="locked", compact=True)

    def values(self) -> dict[str, Any]:
        if not self._candidates:
            return {"app": None, "locked": False}
        app = self.query_one("#app", Select).value
        return {"app": None if app is Select.NULL else app,
                "locked": self.query_one("#locked", Checkbox).value}

    def check(self, values: dict[str, Any]) -> str | None:
        if not values["app"]:
            return "Choose an app to transfer (escape to go back)."
        return None


class TransferOutDialog(FormDialog):
    """Name the account that will own the app once it leaves the team."""

    ok_label = "Next"

    def __init__(self, app: str) -> None:
        self.title_text = f"Transfer {app} out of the team"
        super().__init__(None)

    def fields(self) -> Iterable[Any]:
        yield Static("New owner's email", classes="label")
        yield field("someone@acme.com", id="recipient")

    def values(self) -> dict[str, Any]:
        return {"recipient": self.query_one("#recipient", Input).value}

    def check(self, values: dict[str, Any]) -> str | None:
        if not values["recipient"].strip():
            return "Type the email of the account that will own the app."
        return None


class DestroyDialog(FormDialog):
    """Destroy an app only once its name is typed (as Heroku's Dashboard asks)."""

    ok_label = "Destroy"

    def __init__(self, app: str, warning: Text, action: Callable[[dict[str, Any]], Any]) -> None:
        self.title_text = f"Destroy {app}?"
        self._app = app
        self._warning = warning
        super().__init__(action)

    def fields(self) -> Iterable[Any]:
        yield Static(self._warning, classes="dialog-body")
        yield Static(text(f"Type {self._app} to confirm"), classes="label")
        yield field(self._app, id="confirm")

    def values(self) -> dict[str, Any]:
        return {"confirm": self.query_one("#confirm", Input).value}

    def check(self, values: dict[str, Any]) -> str | None:
        if values["confirm"].strip() != self._app:
            return f"Type the app's name, {clean(self._app)}, to destroy it (escape keeps it)."
        return None


PERMISSION_CHOICES = OPTIONAL_PERMISSIONS  # view is always held: shown ticked and fixed


def permission_boxes(current: Iterable[str]) -> Iterable[Checkbox]:
    have = set(current)
    yield Tick(Text("view (always)"), value=True, disabled=True, id="perm-view", compact=True)
    for name in PERMISSION_CHOICES:
        yield Tick(Text(name), value=name in have, id=f"perm-{name}", compact=True)


def ticked(dialog: ModalScreen, box_id: str) -> bool:
    """Whether the dialog's checkbox ``box_id`` is ticked (False where the dialog has none)."""
    return any(box.value for box in dialog.query(f"#{box_id}").results(Checkbox))


def checked_permissions(dialog: ModalScreen) -> list[str]:
    return [Permission.VIEW] + [n for n in PERMISSION_CHOICES if dialog.query_one(f"#perm-{n}", Checkbox).value]


def expires_field(value: str = "", *, label: str = "Expires in (empty: never; e.g. 45s, 30m, "
                  "8h, 7d, at most 90d)", placeholder: str = "never") -> Iterable[Any]:
    """The "Expires in" box of the grant, permissions and request forms."""
    yield Static(label, classes="label")
    yield field(placeholder, id="expires", value=value)


def read_expires_in(text: str) -> timedelta | None:
    """The "Expires in" box as a duration (empty: None); raises Invalid with the one-line reason."""
    return validate.expires_in(text) if text.strip() else None


class GrantDialog(FormDialog):
    """Give an account an explicit grant on one app, for good or for a while."""

    ok_label = "Grant"

    def __init__(self, app: str, action: Callable[[dict[str, Any]], Any]) -> None:
        self.title_text = f"Grant access to {app}"
        super().__init__(action)

    def fields(self) -> Iterable[Any]:
        yield Static("Email", classes="label")
        yield field("someone@acme.com", id="email")
        with Horizontal(classes="perms"):
            yield from permission_boxes(())
        yield from expires_field()

    def values(self) -> dict[str, Any]:
        return {"email": self.query_one("#email", Input).value, "permissions": checked_permissions(self),
                "expires": self.query_one("#expires", Input).value}

    def check(self, values: dict[str, Any]) -> str | None:
        if not values["email"].strip():
            return "Type the email of the account to grant access to."
        try:
            values["expires_in"] = read_expires_in(values["expires"])
        except Invalid as err:  # nothing is written: the form stays open with the reason
            return str(err)
        return None


class PermissionsDialog(FormDialog):
    """Replace an account's grant on one app (view stays on); keep, change or remove its end."""

    ok_label = "Save"

    def __init__(self, app: str, email: str, current: Iterable[str],
                 action: Callable[[dict[str, Any]], Any], *,
                 expires_at: datetime | None = None, now: datetime | None = None) -> None:
        self.title_text = f"Permissions of {email} on {app}"
        self._current = tuple(current)
        self._expires_at = expires_at
        self._now = now
        super().__init__(action)

    def fields(self) -> Iterable[Any]:
        with Horizontal(classes="perms"):
            yield from permission_boxes(self._current)
        if self._expires_at is None:
            yield Static("Ends: never", classes="label", id="ends-now")
            yield from expires_field()
            return
        left = validate.time_left(self._expires_at, self._now or self._expires_at)
        yield Static(text(f"Ends: {self._expires_at:%Y-%m-%d %H:%M} UTC ({left} left)"),
                     classes="label", id="ends-now")
        yield from expires_field(label="New end in, from now (empty: keep it; e.g. 30m, 8h, 7d, "
                                 "at most 90d)", placeholder="keep")
        yield Tick(Text("No end (permanent)"), id="permanent", compact=True)

    def on_mount(self) -> None:
        self.query_one("#perm-deploy", Checkbox).focus()

    def values(self) -> dict[str, Any]:
        return {"permissions": checked_permissions(self), "expires": self.query_one("#expires", Input).value,
                "permanent": ticked(self, "permanent")}

    def check(self, values: dict[str, Any]) -> str | None:
        try:
            values["expires_in"] = read_expires_in(values["expires"])
        except Invalid as err:
            return str(err)
        if values["permanent"] and values["expires_in"] is not None:
            return ("Choose one: a new end in 'Expires in', or 'No end (permanent)', not both.")
        return None


class TeamSwitcher(ModalScreen[str | None]):
    """Pick one of the actor's teams."""

    BINDINGS = [
        Binding("enter", "pick", "Switch", id="teams.pick"),
        Binding("escape", "cancel", "Cancel", id="teams.cancel"),
        Binding("j", "down", "Down", show=False),
        Binding("k", "up", "Up", show=False),
    ]

    def __init__(self, teams: Sequence[tuple[str, str]], current: str | None) -> None:
        super().__init__(classes="dialog-screen")
        self._teams = list(teams)
        self._current = current

    def compose(self) -> ComposeResult:
        yield TooSmall()
        with Vertical(classes="dialog switcher"):
            yield Static("Switch team", classes="dialog-title")
            if not self._teams:
                yield Static("You belong to no team yet.", classes="label")
            options = []
            for name, role in self._teams:
                label = Text(clean(name), style="bold" if name == self._current else "")
                label.append(f"  {role}", style="dim")
                if name == self._current:
                    label.append("  (current)", style="dim")
                options.append(Option(label, id=name))
            yield OptionList(*options, id="teams")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        teams = self.query_one("#teams", OptionList)
        names = [n for n, _r in self._teams]
        if self._current in names:
            teams.highlighted = names.index(self._current)
        teams.focus()

    def action_down(self) -> None:
        """Move down."""
        self.query_one("#teams", OptionList).action_cursor_down()

    def action_up(self) -> None:
        """Move up."""
        self.query_one("#teams", OptionList).action_cursor_up()

    def action_cancel(self) -> None:
        """Keep the current team."""
        self.dismiss(None)

    def action_pick(self) -> None:
        """Switch to the highlighted team (enter, as in the list)."""
        teams = self.query_one("#teams", OptionList)
        if teams.highlighted is not None:
            teams.action_select()

    @on(OptionList.OptionSelected)
    def _chosen(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)


class HelpScreen(ModalScreen[None]):
    """The keys of the screen underneath, as a list ('?' or F1)."""

    BINDINGS = [
        Binding("escape", "close", "Close", id="help.close"),
        Binding("question_mark", "close", "Close", show=False),
        Binding("f1", "close", "Close", show=False),
        Binding("q", "close", "Close", show=False),
        Binding("j,down", "scroll(1)", "Scroll", id="help.down", key_display="j/k"),
        Binding("k,up", "scroll(-1)", "Up", show=False),
        Binding("g,home", "scroll_to(0)", "Top", show=False),
        Binding("G,end", "scroll_to(-1)", "End", show=False),
    ]

    def __init__(self, title: str, keys: Sequence[tuple[str, str]], notes: Sequence[str] = ()) -> None:
        super().__init__(classes="dialog-screen")
        self._title = title
        self._keys = list(keys)
        self._notes = list(notes)

    def compose(self) -> ComposeResult:
        yield TooSmall()
        with Vertical(classes="dialog help"):
            yield Static(text(self._title), classes="dialog-title")
            body = Text()
            width = min(24, max((len(k) for k, _d in self._keys), default=0))
            # The dialog's text width (80 wide at most, less its border, padding and scrollbar):
            # a long description wraps under itself, not back under its label.
            room = max(20, min(80, self.app.size.width or 80) - 7 - width - 2)
            for key, description in self._keys:
                body.append(f"{clean(key):<{width}}", style="bold")
                lines = textwrap.wrap(clean(description), room) or [""]
                body.append("  " + ("\n" + " " * (width + 2)).join(lines) + "\n")
            for note in self._notes:
                body.append(f"\n{note}", style="dim")
            with VerticalScroll(classes="help-body"):
                yield Static(body)
        yield Footer(compact=True)

    def action_close(self) -> None:
        """Back to where you were."""
        self.dismiss(None)

    def action_scroll(self, lines: int) -> None:
        """j/k (and the arrows) scroll the text, as they move in every list."""
        body = self.query_one(".help-body", VerticalScroll)
        body.scroll_relative(y=lines, animate=False)

    def action_scroll_to(self, where: int) -> None:
        """g/G (Home/End) go to the top or the end."""
        body = self.query_one(".help-body", VerticalScroll)
        if where < 0:
            body.scroll_end(animate=False)
        else:
            body.scroll_home(animate=False)
