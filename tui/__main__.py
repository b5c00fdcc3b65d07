"""``python -m teamaccess.tui`` and the ``teamaccess`` console script."""

from __future__ import annotations

import gc


def main() -> None:
    """Run the command line (which opens the dashboard when no command is given)."""
    # Importing the command line (SQLAlchemy, SQLModel, click) leaves ~65,000 objects that live
    # as long as the process. Collecting while they are made finds nothing to free (one full
    # pass, ~30 ms), and later full passes would walk them all again: 50 ms in the middle of
    # `access --app` on a 10,000-user team. So: no collection while importing, then they are
    # frozen out of every later one (gc.freeze). Whatever a command allocates is collected as
    # usual.
    gc.disable()
    try:
        from teamaccess.tui.cli import main as cli_main
    finally:
        gc.freeze()
        gc.enable()
    cli_main()


if __name__ == "__main__":
    main()
