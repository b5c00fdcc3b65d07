"""The private Textual APIs in tui/textual_private.py were written for one Textual version: any
other must be checked by a person first (this test fails until WRITTEN_FOR is moved on)."""

from __future__ import annotations

import ast
from importlib.metadata import version
from pathlib import Path

from teamaccess.tui import textual_private

TUI = Path(textual_private.__file__).parent


def test_textual_is_the_version_the_private_apis_were_written_for():
    assert textual_private.WRITTEN_FOR == "8.2.8"
    assert version("textual") == textual_private.WRITTEN_FOR, (
        "Textual changed: check each piece of tui/textual_private.py against the new source, "
        "then set WRITTEN_FOR (and the pin in pyproject.toml)"
    )


def test_nothing_else_in_tui_imports_a_private_textual_module():
    offenders = []
    for path in TUI.rglob("*.py"):
        if path.name == "textual_private.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("textual"):
                if any(part.startswith("_") for part in node.module.split(".")):
                    offenders.append(f"{path.relative_to(TUI)}: from {node.module}")
    assert offenders == []
