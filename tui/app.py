"""The Textual dashboard: team roster, apps, access panes, audit, resources and billing."""

from __future__ import annotations

from textual.app import App, ComposeResult
from textual.widgets import Static

from store.db import Database
from store.ops import Actor


class TeamAccessApp(App[None]):
    """The teamaccess dashboard for one acting account (skeleton; the screens follow)."""

    def __init__(self, db: Database, actor: Actor, team: str | None = None) -> None:
        super().__init__()
        self.db = db
        self.actor = actor
        self.team = team

    def compose(self) -> ComposeResult:
        yield Static("teamaccess")
