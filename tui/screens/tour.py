"""Scripted walks through the dashboard on the demo team: the snapshot tests and the screenshot
script replay the same scenes, so what the README shows is what the tests check."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from teamaccess.store.db import Database
from teamaccess.store.demo import DEMO_TEAM
from teamaccess.store.ops import Actor
from textual.pilot import Pilot

Step = str | Callable[[Any], None]


def select(key: str) -> Callable[[Any], None]:
    """A step that puts the cursor of the front list on the row with this key."""

    def step(app: Any) -> None:
        from .access import AccessScreen

        screen = app.screen
        view = screen.view if isinstance(screen, AccessScreen) else app.main.active_view
        view.table.move_cursor(row=view.table.get_row_index(key), animate=False)

    return step


def fill(selector: str, value: Any) -> Callable[[Any], None]:
    """A step that sets a widget's value on the front screen (an input, checkbox or select)."""

    def step(app: Any) -> None:
        app.screen.query_one(selector).value = value

    return step


def steady(app: Any) -> None:
    """A step that stops every text cursor on the front screen from blinking (stable pictures)."""
    from textual.widgets import Input

    for box in app.screen.query(Input):
        box.cursor_blink = False


#: Public keys for the Keys scenes (public halves only; nobody holds the private ones).
ADA_KEYS = (
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMYTchqdUXPIEUNDwh3IaNZK+5DRh0Nzg7iWqJTSCEt1 ada@workstation",
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINzD2pIYsghQz2dv0YKXibBtcgBc/xiyGFRddvlmO3BN ada@laptop",
)
JOE_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDfEtRlI060Kz5Bfa2OEsencyMhh6kxT8J9PPklyW4bm joe@laptop"


def ada_has_keys(app: Any) -> None:
    """A step that gives the actor ada two SSH keys, dated on the demo's clock (stable pictures)."""
    from sqlalchemy import update
    from teamaccess.store import ops
    from teamaccess.store.demo import _T0
    from teamaccess.store.models import SshKey

    for key in ADA_KEYS:
        ops.add_key(app.db, app.actor, key)
    app.db.write(lambda s: s.execute(update(SshKey).values(created_at=_T0)))


#: "Now" in the scenes with requests and temporary grants: their ages and time left are drawn
#: against this fixed clock, so the pictures are the same on every run.
SCENE_NOW = datetime(2024, 9, 2, 9, 0, 0, tzinfo=UTC)


def _at(db: Any, minutes_ago: float) -> None:
    moment = SCENE_NOW - timedelta(minutes=minutes_ago)
    db.clock = lambda: moment


def requests_filed(app: Any) -> None:
    """A step that files access requests in the demo team at fixed times (pending, approved,
    denied, lapsed; a reason holding markup, shown as typed), then reloads the dashboard."""
    from teamaccess.store import ops

    db = app.db

    def request(who: str, minutes_ago: float, app_name: str, perms: list[str], reason: str,
                hours: int | None = None) -> int:
        _at(db, minutes_ago)
        return ops.request_access(db, Actor(who), app_name, perms, reason,
                                  expires_in=timedelta(hours=hours) if hours else None).id

    request("li@partner.co", 8 * 24 * 60, "api-staging", ["deploy"], "ship the docs fix")
    approved = request("barbara@acme.com", 2 * 24 * 60, "api-prod", ["manage"],
                       "rotate the API keys before the audit")
    _at(db, 24 * 60)
    ops.approve_request(db, Actor("grace@acme.com"), approved)
    denied = request("ops@oncall-agency.io", 5 * 60, "website-prod", ["deploy"],
                     "deploy the hotfix ourselves", hours=4)
    _at(db, 4 * 60)
    ops.deny_request(db, Actor("ada@acme.com"), denied, reason="use the release train")
    request("sam@freelance.dev", 3 * 60, "website-staging", ["operate"],
            "restart the dynos after the launch [red]now[/]")
    request("john@acme.com", 20, "admin-panel", ["deploy"],
            "hotfix for INC-4711: payments page answers 500", hours=8)
    request("dennis@acme.com", 5, "website-prod", ["operate"], "on call tonight", hours=12)
    _at(db, 0)
    app.data_changed()


def temporary_grants(app: Any) -> None:
    """A step that gives website-prod temporary grants ending at fixed times (see SCENE_NOW)."""
    from teamaccess.store import ops

    db, ada = app.db, Actor("ada@acme.com")
    _at(db, 0)
    ops.grant_access(db, ada, "website-prod", "pat@partner.co", ["deploy"],
                     expires_in=timedelta(minutes=45))
    ops.update_access(db, ada, "website-prod", "ops@oncall-agency.io", None,
                      expires_in=timedelta(days=2))
    ops.update_access(db, ada, "website-prod", "john@acme.com", None,
                      expires_in=timedelta(hours=8))
    app.data_changed()


@dataclass(frozen=True)
class Scene:
    """One screen or dialog, reached from launch by some steps, as one actor."""

    name: str
    actor: str = "ada@acme.com"
    steps: Sequence[Step] = field(default=())
    sizes: tuple[tuple[int, int], ...] = ((80, 24), (120, 40))
    readme: bool = False  # shown in the README
    no_color: bool = False  # as under NO_COLOR=1 (the warning badges must still stand out)


SCENES: tuple[Scene, ...] = (
    Scene("roster", readme=True),
    Scene("roster_no_mfa_sorted", steps=("m", "s", "s")),
    Scene("roster_sorted_reversed", steps=("s", "s", "S")),
    Scene("roster_no_color", no_color=True),
    Scene("roster_collaborator", steps=(select("ops@oncall-agency.io"), "enter")),
    Scene("roster_demote_yourself", steps=(select("ada@acme.com"), "e", fill("#role-viewer", True),
                                           "ctrl+s")),
    Scene("roster_filter", steps=("slash", "j", "o")),
    Scene("roster_add_user", steps=("a", fill("#email", "newbie@acme.com"))),
    Scene("roster_member_access", steps=(select("john@acme.com"), "enter")),
    Scene("roster_change_role", steps=(select("joe@acme.com"), "e")),
    Scene("roster_remove_confirm", steps=(select("joe@acme.com"), "d"), readme=True),
    Scene("roster_add_collaborator", steps=("c", fill("#email", "pat@partner.co"),
                                            fill("#app", "docs-site"))),
    Scene("roster_as_collaborator", actor="sam@freelance.dev", steps=("1",)),
    Scene("apps_as_collaborator", actor="sam@freelance.dev"),
    Scene("apps", steps=("2",), readme=True),
    Scene("apps_as_member", actor="john@acme.com", steps=("2",)),
    Scene("apps_create", steps=("2", "n", fill("#name", "new-service"))),
    Scene("apps_transfer_in", steps=("2", "i")),
    Scene("apps_transfer_out", steps=("2", select("website-staging"), "o",
                                      fill("#recipient", "joe@acme.com"))),
    Scene("apps_transfer_out_confirm", steps=("2", select("website-staging"), "o",
                                              fill("#recipient", "joe@acme.com"), "ctrl+s")),
    Scene("apps_destroy_confirm", steps=("2", select("ml-models"), "d")),
    Scene("access", steps=("2", select("website-prod"), "enter"), readme=True),
    Scene("access_read_only", actor="alan@acme.com", steps=("2", select("api-staging"), "enter")),
    Scene("access_locked_out", actor="john@acme.com", steps=("2", select("admin-panel"), "enter")),
    Scene("access_grant", steps=("2", select("api-staging"), "enter", "a",
                                 fill("#email", "pat@partner.co"), fill("#perm-deploy", True))),
    Scene("access_change", steps=("2", select("website-prod"), "enter", select("john@acme.com"),
                                  "e")),
    Scene("access_revoke_confirm", steps=("2", select("website-prod"), "enter",
                                          select("john@acme.com"), "d")),
    Scene("audit", steps=("3",), readme=True),
    Scene("audit_event", steps=("3", "enter")),
    Scene("access_row_details", steps=("2", select("website-prod"), "enter",
                                       select("john@acme.com"), "enter")),
    Scene("resources", steps=("4",)),
    Scene("billing", steps=("5",)),
    Scene("billing_as_member", actor="joe@acme.com", steps=("5",)),
    Scene("help", steps=("question_mark",)),
    Scene("palette", steps=("ctrl+p", steady)),
    Scene("team_switcher", steps=("t",)),
    Scene("keys", steps=(ada_has_keys, "ctrl+k")),
    Scene("keys_add", steps=("ctrl+k", "a", fill("#key", JOE_KEY.replace("joe@", "ada@")), steady)),
    Scene("keys_remove_confirm", steps=(ada_has_keys, "ctrl+k", "d")),
    Scene("roster_add_key", steps=(select("joe@acme.com"), "K", fill("#key", JOE_KEY), steady)),
    Scene("too_small", sizes=((60, 20),)),
    Scene("requests", steps=(requests_filed, "r"), readme=True),
    Scene("requests_as_requester", actor="john@acme.com", steps=(requests_filed, "r")),
    Scene("requests_approve", steps=(requests_filed, "r", "y", steady)),
    Scene("requests_deny", steps=(requests_filed, "r", "n", fill("#reason", "not before the freeze"),
                                  steady)),
    Scene("request_file", actor="john@acme.com",
          steps=("2", select("api-prod"), "R", fill("#perm-deploy", True), fill("#expires", "4h"),
                 fill("#reason", "deploy the payments fix"), steady)),
    Scene("access_temporary", steps=(requests_filed, temporary_grants, "2",
                                     select("website-prod"), "enter")),
    Scene("access_change_temporary", steps=(temporary_grants, "2", select("website-prod"),
                                            "enter", select("john@acme.com"), "e", steady)),
)

SCENE_BY_NAME = {scene.name: scene for scene in SCENES}


def prepare(db: Database) -> None:
    """The demo team, plus a second team for ada so that the team switcher has a choice."""
    from teamaccess.store import ops
    from teamaccess.store.demo import build_demo

    if build_demo(db):
        ops.create_team(db, Actor("ada@acme.com", "ada"), "acme-labs")


def make_app(db: Database, scene: Scene) -> Any:
    """The dashboard as the scene's actor, with no watcher and a fixed theme."""
    import os

    from teamaccess.tui.app import TeamAccessApp

    had = os.environ.get("NO_COLOR")
    if scene.no_color:
        os.environ["NO_COLOR"] = "1"  # Textual reads it as the app is made
    try:
        return TeamAccessApp(db, Actor(scene.actor, scene.actor.split("@")[0]), DEMO_TEAM,
                             theme="textual-dark", watch=False)
    finally:
        # ...from its own copy of the environment: the next scene must not inherit it.
        if had is None:
            os.environ.pop("NO_COLOR", None)
        else:
            os.environ["NO_COLOR"] = had


async def settle(pilot: Pilot, app: Any, limit: int = 600) -> None:
    """Wait until no load or write is in flight and the screen has caught up."""
    for _ in range(limit):
        await pilot.pause(0.01)
        if app.settled:
            await pilot.pause()
            if app.settled:
                return
    raise TimeoutError("the dashboard never settled")


async def play(pilot: Pilot, scene: Scene) -> None:
    """Replay a scene's steps, settling after each."""
    app = pilot.app
    await settle(pilot, app)
    for step in scene.steps:
        if isinstance(step, str):
            await pilot.press(step)
        else:
            step(app)
        await settle(pilot, app)
    await pilot.pause()
