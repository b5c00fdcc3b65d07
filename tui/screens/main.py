"""The main screen: the header, one tab per list of the team, and the footer of keys."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.screen import Screen
from textual.widgets import Footer, TabbedContent, TabPane

from tui.widgets.dialogs import TooSmall

from .base import TableView
from .header import HeaderBar
from .views import AppsView, AuditView, BillingView, ResourcesView, RosterView

#: (tab id, title, view class); number keys 1-5 follow this order.
TABS: tuple[tuple[str, str, type[TableView]], ...] = (
    ("roster", "1 Roster", RosterView),
    ("apps", "2 Apps", AppsView),
    ("audit", "3 Audit", AuditView),
    ("resources", "4 Resources", ResourcesView),
    ("billing", "5 Billing", BillingView),
)


class MainScreen(Screen[None]):
    """The team's lists, one per tab."""

    def compose(self) -> ComposeResult:
        yield TooSmall()
        yield HeaderBar()
        with TabbedContent(initial="roster", id="tabs"):
            for tab_id, title, view in TABS:
                with TabPane(title, id=tab_id):
                    yield view(id=f"{tab_id}-view")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        if self.app.team is not None:  # type: ignore[attr-defined]
            self.show_tab("roster")  # the team is known: load at once, not after the context

    def view(self, tab_id: str) -> TableView:
        """The list of one tab."""
        return self.query_one(f"#{tab_id}-view", TableView)

    def views(self) -> list[TableView]:
        """Every list on this screen."""
        return [self.view(tab_id) for tab_id, _t, _v in TABS]

    @property
    def active_view(self) -> TableView:
        """The list of the tab in front."""
        return self.view(self.query_one(TabbedContent).active or "roster")

    def show_tab(self, tab_id: str) -> None:
        """Bring a tab to the front with the keyboard on its list."""
        self.query_one(TabbedContent).active = tab_id
        self._arrive(tab_id)

    @on(TabbedContent.TabActivated)
    def _tab_activated(self, event: TabbedContent.TabActivated) -> None:
        self._arrive(event.pane.id or "roster")

    def _arrive(self, tab_id: str) -> None:
        view = self.view(tab_id)
        if view.stale and self.app.team is not None:  # type: ignore[attr-defined]
            view.reload()
        view.focus_list()
        self.refresh_bindings()
