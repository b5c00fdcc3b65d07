"""The one-line bar on top of every screen: the team, who you act as, and your role there."""

from __future__ import annotations

from rich.text import Text
from teamaccess.tui.widgets.safe import clean
from textual.widgets import Static


class HeaderBar(Static):
    """Team, actor and role; redrawn by the app whenever its context changes (no clock)."""

    def on_mount(self) -> None:
        self.redraw()

    def redraw(self) -> None:
        """Show the app's current context."""
        app = self.app
        line = Text(" teamaccess ", style="bold")
        team = getattr(app, "team", None)
        rel = getattr(app, "relation", None)
        actor = getattr(app, "actor", None)
        line.append("│ team ")
        line.append(clean(team) if team else "(none)", style="bold")
        line.append(" │ as ")
        if actor is not None:
            line.append(clean(actor.email), style="bold")
            if actor.login:
                line.append(f" ({clean(actor.login)})")
        line.append(" │ role ")
        line.append(rel.value if rel is not None else "…", style="bold")
        teams = getattr(app, "teams", [])
        if len(teams) > 1:
            line.append(f" │ t: switch ({len(teams)} teams)")
        self.update(line)
