"""The dashboard on a jump host: 16-colour and NO_COLOR terminals, no animations, literal text."""

from __future__ import annotations

import asyncio

import pytest
from rich.text import Text
from teamaccess.store import ops
from teamaccess.store.db import Database
from teamaccess.store.demo import build_demo
from teamaccess.tui.app import TeamAccessApp, pick_theme
from teamaccess.tui.screens.tour import settle
from teamaccess.tui.widgets.safe import clean, text


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"COLORTERM": "truecolor", "TERM": "xterm"}, "textual-dark"),
        ({"TERM": "xterm-256color"}, "textual-dark"),
        ({"TERM": "xterm"}, "ansi-dark"),
        ({"TERM": "linux"}, "ansi-dark"),
        ({"TERM": "xterm-256color", "TEAMACCESS_THEME": "ansi-dark"}, "ansi-dark"),
    ],
)
def test_theme_follows_the_terminal(monkeypatch, env, expected):
    for name in ("COLORTERM", "TERM", "TEAMACCESS_THEME"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert pick_theme() == expected


def test_control_characters_become_visible_and_markup_stays_text():
    assert clean("a\x1b[31mb\x07\x00c\u202ed") == "a␛[31mb␇␀c\ufffdd"
    shown = text("[bold]x[/bold]")
    assert isinstance(shown, Text) and shown.plain == "[bold]x[/bold]" and not shown.spans


def _run_in(tmp_path, monkeypatch, **env) -> TeamAccessApp:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    db = Database(tmp_path / "demo.db")
    build_demo(db)
    app = TeamAccessApp(db, ops.Actor("ada@acme.com", "ada"), "acme-widgets", watch=False)

    async def go() -> None:
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(pilot, app)
            app.saved_svg = app.export_screenshot()  # type: ignore[attr-defined]

    asyncio.run(go())
    db.close()
    return app


def test_sixteen_colours_and_no_animation(tmp_path, monkeypatch):
    monkeypatch.delenv("COLORTERM", raising=False)
    monkeypatch.delenv("TEAMACCESS_THEME", raising=False)
    app = _run_in(tmp_path, monkeypatch, TERM="xterm")
    assert app.theme == "ansi-dark"
    assert app.animation_level == "none"
    assert "no&#160;MFA" in app.saved_svg  # the badge is a word, not only a colour


def test_no_color_still_reads(tmp_path, monkeypatch):
    app = _run_in(tmp_path, monkeypatch, NO_COLOR="1")
    assert app.no_color
    svg = app.saved_svg
    assert "no&#160;MFA" in svg and "6" in svg  # badge words and the count survive
