"""The one-line bar on top of every screen: the team, who you act as, and your role there."""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from teamaccess.tui.widgets.safe import clean
from textual import events
from textual.widgets import Static


def fit(candidates: Sequence[Text], width: int) -> Text:
    """The first candidate (most to least detailed) that fits ``width``; else the last, cut
    with an ellipsis. Callers order them so what matters least goes first."""
    for line in candidates:
        if width <= 0 or line.cell_len <= width:
            return line
    last = candidates[-1].copy()
    last.truncate(width, overflow="ellipsis")
    return last


class HeaderBar(Static):
    """Team, actor and role; redrawn by the app whenever its context changes (no clock)."""

    def on_mount(self) -> None:
        self.redraw()

    def on_resize(self, _event: events.Resize) -> None:
        self.redraw()

    def redraw(self) -> None:
        """Show the app's current context, shortened to the width (never the role)."""
        app = self.app
        team = getattr(app, "team", None)
        rel = getattr(app, "relation", None)
        actor = getattr(app, "actor", None)
        teams = getattr(app, "teams", [])

        def line(brand: bool, login: bool, switch: str) -> Text:
            out = Text(" teamaccess │" if brand else "", style="bold")
            out.append(" team ")
            out.append(clean(team) if team else "(none)", style="bold")
            out.append(" │ as ")
            if actor is not None:
                out.append(clean(actor.email), style="bold")
                if login and actor.login:
                    out.append(f" ({clean(actor.login)})")
            out.append(" │ role ")
            out.append(rel.value if rel is not None else "…", style="bold")
            if switch:
                out.append(f" │ {switch}")
            return out

        def last_resort() -> Text:
            # The role before the email, so that a cut at the end takes the email, not the role.
            out = Text(" ")
            out.append(clean(team) if team else "(none)", style="bold")
            out.append(" │ role ")
            out.append(rel.value if rel is not None else "…", style="bold")
            if many:
                out.append(" │ t: team")
            out.append(" │ ")
            out.append(clean(actor.email) if actor is not None else "", style="bold")
            return out

        many = len(teams) > 1
        long_switch = f"t: switch team ({len(teams)} teams)" if many else ""
        short_switch = "t: switch team" if many else ""
        self.update(fit([
            line(True, True, long_switch),
            line(False, True, long_switch),
            line(False, False, long_switch),
            line(False, False, short_switch),
            line(False, False, "t: team" if many else ""),
            last_resort(),
        ], self.size.width))
