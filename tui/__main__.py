"""``python -m tui`` and the ``teamaccess`` console script."""

from __future__ import annotations


def main() -> None:
    """Run the command line (which opens the dashboard when no command is given)."""
    from tui.cli import main as cli_main

    cli_main()


if __name__ == "__main__":
    main()
