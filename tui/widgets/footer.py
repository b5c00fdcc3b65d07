"""The footer of keys, built without restyling each key after it is mounted."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.widgets import Footer
from textual.widgets._footer import FooterKey


class KeysFooter(Footer):
    """Textual's Footer, with each key's ``-compact`` class set before the key is mounted.

    Textual's FooterKey sets that class from a watcher once mounted, which restyles every key
    (and the footer is rebuilt whenever the keys on offer change): about a quarter of the cost
    of opening the access pane. The result on screen is the same.
    """

    def compose(self) -> ComposeResult:
        for widget in super().compose():
            if self.compact and isinstance(widget, FooterKey):
                widget.add_class("-compact", update=False)
            yield widget
