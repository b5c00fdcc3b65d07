"""``python -m teamaccess.tui`` and the ``teamaccess`` console script."""

from __future__ import annotations

from teamaccess.tui.idle_gc import import_frozen


def main() -> None:
    """Run the command line (which opens the dashboard when no command is given)."""
    with import_frozen():  # why: tui/idle_gc.py
        from teamaccess.tui.cli import main as cli_main
    cli_main()


if __name__ == "__main__":
    main()
