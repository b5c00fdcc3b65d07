"""The footer of keys: rebuilt only when what it shows changed, without restyling each key."""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.screen import Screen
from textual.widgets import Footer
from textual.widgets._footer import FooterKey


class KeysFooter(Footer):
    """Textual's Footer, rebuilt once per change of what it shows and with compact keys.

    Textual's Footer rebuilds every key each time the screen says its bindings may have
    changed (focus moves, a list loads, the cursor moves), once per signal even when several
    arrive in one frame and even when nothing it shows changed: opening the access pane cost
    nine rebuilds. This one compares first and skips the rebuild when the keys and their
    labels are what is already on screen (so of several signals in one frame only the first
    rebuilds); when only some keys were enabled or disabled, it flips those keys in place.

    Textual's FooterKey also sets its ``-compact`` class from a watcher once mounted, which
    restyles every key; here the class is set before the key is mounted. The result on screen is
    the same.
    """

    _shown: Any = None

    def signature(self) -> tuple[tuple[Any, ...], tuple[bool, ...]]:
        """What the footer would show now: the keys with their labels, and which are enabled."""
        keys, enabled = [], []
        for key, (_node, binding, on, tooltip) in self.screen.active_bindings.items():
            if binding.show or key == self.app.COMMAND_PALETTE_BINDING:
                keys.append((key, binding.action, binding.description, tooltip))
                enabled.append(on)
        return tuple(keys), tuple(enabled)

    def compose(self) -> ComposeResult:
        if self._bindings_ready:
            self._shown = self.signature()
        for widget in super().compose():
            if self.compact and isinstance(widget, FooterKey):
                widget.add_class("-compact", update=False)
            yield widget

    def bindings_changed(self, screen: Screen) -> None:
        self._bindings_ready = True
        if not screen.app.app_focus:
            return
        if self.is_attached and screen is self.screen:
            self.call_after_refresh(self._rebuild)

    async def _rebuild(self) -> None:
        if not self.is_attached:
            return
        now = self.signature()
        if now == self._shown:
            return
        if self._shown is not None and now[0] == self._shown[0]:
            self._shown = now
            self._enable_in_place(now)
        else:
            await self.recompose()

    def _enable_in_place(self, signature: tuple[tuple[Any, ...], tuple[bool, ...]]) -> None:
        """Enable or disable the keys on screen as Footer.compose would have built them (the
        first binding of an action decides for its key)."""
        enabled: dict[str, bool] = {}
        for (_key, action, _description, _tooltip), on in zip(*signature, strict=True):
            enabled.setdefault(action, on)
        for key in self.query(FooterKey):
            if key.action in enabled:
                # FooterKey keeps this in a private flag and a class, not in Widget.disabled.
                key._disabled = not enabled[key.action]
                key.set_class(key._disabled, "-disabled")
