"""Make user data safe to print on the command line: the store's one "unsafe characters" rule.

Both faces print names, emails and audit details that anyone with write access could have
chosen; a stray ESC or a right-to-left override could repaint the terminal or disguise a row.
The rule itself lives in ``store/safetext.py`` so that the CLI, the dashboard, error messages
and the audit log share one definition; this module keeps the CLI's import short.
"""

from __future__ import annotations

from teamaccess.store.safetext import REPLACEMENT, UNSAFE, plain

__all__ = ["REPLACEMENT", "UNSAFE", "money", "plain"]


def money(cents: int) -> str:
    """Cents as dollars, e.g. $1,250.00 (both faces show prices this way)."""
    return f"${cents / 100:,.2f}"
