"""The main screen: the header, one tab per list of the team, and the footer of keys."""

from __future__ import annotations

from collections.abc import Awaitable

from teamaccess.tui.widgets.dialogs import TooSmall
from textual import on
from textual.app import ComposeResult
from textual.css.query import NoMatches
from textual.screen import Screen
from textual.widgets import Footer, TabbedContent, TabPane

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
    """The team's lists, one per tab.

    Only the roster's list is mounted at first; each other list is mounted the first time its
    tab is shown, so the first screen styles a fifth of the widgets and shows rows sooner.
    """

    def __init__(self) -> None:
        super().__init__()
        self._views: dict[str, TableView] = {
            tab_id: view(id=f"{tab_id}-view") for tab_id, _title, view in TABS
        }

    def compose(self) -> ComposeResult:
        yield TooSmall()
        yield HeaderBar()
        with TabbedContent(initial="roster", id="tabs"):
            for tab_id, title, _view in TABS:
                with TabPane(title, id=tab_id):
                    if tab_id == "roster":
                        yield self._views[tab_id]
        yield Footer(compact=True)

    def on_mount(self) -> None:
        if self.app.team is not None:  # type: ignore[attr-defined]
            self.show_tab("roster")  # the team is known: load at once, not after the context

    def view(self, tab_id: str) -> TableView:
        """The list of one tab (mounted or not yet)."""
        return self._views[tab_id]

    def views(self) -> list[TableView]:
        """Every list of this screen, mounted or not yet."""
        return list(self._views.values())

    @property
    def active_view(self) -> TableView:
        """The list of the tab in front."""
        return self.view(self.query_one(TabbedContent).active or "roster")

    def show_waiting(self, waiting: int) -> None:
        """The Apps tab's title counts the access requests waiting for the actor's decision."""
        title = dict((tab_id, title) for tab_id, title, _view in TABS)["apps"]
        if waiting:
            title += f" ({waiting} request{'s' if waiting > 1 else ''})"
        try:
            tab = self.query_one(TabbedContent).get_tab("apps")
        except NoMatches:  # not composed yet: the next context load shows it
            return
        if str(tab.label) != title:
            tab.label = title

    def show_tab(self, tab_id: str) -> None:
        """Bring a tab to the front with the keyboard on its list."""
        self.query_one(TabbedContent).active = tab_id
        self._arrive(tab_id)

    @on(TabbedContent.TabActivated)
    def _tab_activated(self, event: TabbedContent.TabActivated) -> None:
        self._arrive(event.pane.id or "roster")

    def _arrive(self, tab_id: str) -> None:
        view = self.view(tab_id)
        if view.parent is None:
            # Pending at once, so nobody takes the dashboard for settled before it loads.
            view.pending = True
            self.call_later(self._mounted, self.query_one(f"#{tab_id}", TabPane).mount(view),
                            tab_id)
            return
        if not view.is_mounted:
            return  # still mounting: _mounted arrives again when it is done
        if view.stale and self.app.team is not None:  # type: ignore[attr-defined]
            view.reload()
        view.focus_list()
        self.refresh_bindings()

    async def _mounted(self, mounting: Awaitable[None], tab_id: str) -> None:
        await mounting
        self.view(tab_id).pending = False  # _arrive loads it again if there is a team to read
        self._arrive(tab_id)
