"""Unexpected errors are logged with their traceback to a private, rotated file the user is told of."""

from __future__ import annotations

import logging
import stat

from conftest import make, settle, sync
from teamaccess.tui import errorlog


def _raise_and_catch(message: str) -> BaseException:
    try:
        raise KeyError(message)
    except KeyError as err:
        return err


def test_the_line_names_the_error_and_the_log_and_the_log_holds_the_traceback():
    line = errorlog.unexpected(_raise_and_catch("acme"), "reading the roster")
    path = errorlog.log_path()
    assert line == f"unexpected KeyError: 'acme' (please report this; details in {path})"
    text = path.read_text()
    assert "while reading the roster" in text
    assert "Traceback (most recent call last)" in text and "in _raise_and_catch" in text
    assert path.name == "teamaccess.log" and path.parent.name == "teamaccess"


def test_the_log_is_readable_by_its_owner_only_even_after_rotation(monkeypatch):
    monkeypatch.setattr(errorlog, "_MAX_BYTES", 300)  # the handler is made for this new folder
    for n in range(6):
        errorlog.unexpected(_raise_and_catch(f"boom {n}"), "testing rotation")
    path = errorlog.log_path()
    files = sorted(path.parent.glob("teamaccess.log*"))
    assert len(files) == 1 + errorlog._BACKUPS  # rotated, and bounded
    for file in files:
        assert stat.S_IMODE(file.stat().st_mode) == 0o600, file


def test_an_existing_world_readable_log_is_made_private():
    path = errorlog.log_path()
    path.parent.mkdir(parents=True)
    path.write_text("old\n")
    path.chmod(0o644)
    errorlog.unexpected(_raise_and_catch("x"), "testing permissions")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text().startswith("old\n")  # appended to, not replaced


def test_a_log_that_cannot_be_written_is_said_and_nothing_raises(tmp_path, monkeypatch):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    monkeypatch.setenv("XDG_DATA_HOME", str(blocker))
    line = errorlog.unexpected(_raise_and_catch("x"), "testing a broken home")
    assert line.startswith("unexpected KeyError: 'x' (please report this; the log could not be written")
    assert "\n" not in line


def test_control_characters_in_the_error_never_reach_the_line():
    line = errorlog.unexpected(RuntimeError("\x1b[2Jgone\nsecond line"), "testing escapes")
    assert "\x1b" not in line and "second line" not in line
    assert line.startswith("unexpected RuntimeError: ?[2Jgone (please report this")


def test_errors_go_to_the_file_only_never_to_the_console(capsys):
    logging.basicConfig()  # someone configures the root logger: it must not echo ours
    errorlog.unexpected(_raise_and_catch("quiet"), "testing propagation")
    captured = capsys.readouterr()
    assert "quiet" not in captured.err and "quiet" not in captured.out


def test_log_quietly_writes_the_same_log():
    errorlog.log_quietly(_raise_and_catch("silent"), "completing a team name")
    assert "while completing a team name" in errorlog.log_path().read_text()


@sync
async def test_the_dashboard_shows_the_line_and_logs_the_traceback(demo_db, monkeypatch):
    from teamaccess.store import queries

    def broken_roster(*_args, **_kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(queries, "roster", broken_roster)
    app = make(demo_db)
    async with app.run_test(size=(120, 30)) as pilot:
        await settle(pilot, app)
        shown = str(app.main.active_view.query_one(".refusal").render())
    log = errorlog.log_path()
    assert "unexpected RuntimeError: disk on fire (please report this; details in" in shown
    assert "Traceback" in log.read_text() and "in broken_roster" in log.read_text()
