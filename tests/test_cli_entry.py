"""The real entry point in fresh interpreters: the seed's transcripts verbatim, and no Textual."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from teamaccess.store import ops
from teamaccess.store.db import Database

ADA = ops.Actor("ada@acme.com", "ada")

# The seed's transcripts with `heroku` replaced by `teamaccess`; `list` sorted by name (SPEC).
TRANSCRIPT = """\
$ teamaccess members:add joe@acme.com --team acme-widgets --role member
Adding joe@acme.com to acme-widgets as member... done
$ teamaccess members:set joe@acme.com --team acme-widgets --role admin
Adding joe@acme.com to acme-widgets as admin... done
$ teamaccess members:remove joe@acme.com --team acme-widgets
Removing joe@acme.com from acme-widgets... done
$ teamaccess apps:lock --app myapp
Locking myapp... done
$ teamaccess list --team acme
=== Apps in team acme
myapp (locked)
test
website-prod (locked)
website-staging
$ teamaccess apps:unlock --app myapp
Unlocking myapp... done
"""


@pytest.fixture
def env(tmp_path):
    """Environment for a subprocess: a seeded database in TEAMACCESS_DB, acting as its admin."""
    path = tmp_path / "entry.db"
    db = Database(path)
    ops.create_team(db, ADA, "acme-widgets")
    ops.create_team(db, ADA, "acme")
    for name in ("test", "myapp", "website-staging", "website-prod"):
        ops.create_app(db, ADA, name, "acme")
    ops.lock_app(db, ADA, "website-prod")
    db.close()
    e = {k: v for k, v in os.environ.items() if not k.startswith("TEAMACCESS_")}
    e.update(TEAMACCESS_DB=str(path), TEAMACCESS_AS="ada@acme.com", PYTHONIOENCODING="utf-8")
    return e


def commands(transcript: str) -> list[tuple[list[str], str]]:
    """Split a transcript into (argv after 'teamaccess', expected output) pairs."""
    out: list[tuple[list[str], str]] = []
    for line in transcript.splitlines(keepends=True):
        if line.startswith("$ teamaccess "):
            out.append((line[len("$ teamaccess "):].split(), ""))
        else:
            argv, text = out[-1]
            out[-1] = (argv, text + line)
    return out


def test_seed_transcript_through_python_m_tui(env):
    for argv, expected in commands(TRANSCRIPT):
        # stdout and stderr captured as one stream, as a terminal shows them
        done = subprocess.run([sys.executable, "-m", "teamaccess.tui", *argv], env=env, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
        assert (done.returncode, done.stdout) == (0, expected), argv


def test_lock_error_through_the_installed_script(env):
    script = Path(sys.executable).parent / "teamaccess"
    done = subprocess.run([str(script), "apps:lock", "--app", "website-prod"], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr == "Error: cannot lock website-prod. This app is already locked.\n"


def test_a_command_never_imports_textual_or_rich(env):
    probe = (
        "import sys\n"
        "from tui.__main__ import main\n"
        "try:\n"
        "    main()\n"
        "except SystemExit as e:\n"
        "    code = e.code\n"
        "loaded = sorted({m.split('.')[0] for m in sys.modules} & {'textual', 'rich'})\n"
        "print(code, loaded)\n"
    )
    for argv in (["members", "--team", "acme"], ["export", "--team", "acme"],
                 ["members", "--team", "nope"]):
        done = subprocess.run([sys.executable, "-c", probe, *argv], env=env,
                              capture_output=True, text=True, timeout=60)
        assert done.stdout.splitlines()[-1] in ("0 []", "1 []"), (argv, done.stdout, done.stderr)


def test_a_terminal_without_unicode_gets_dashes_not_a_crash(env):
    env = dict(env, PYTHONIOENCODING="latin-1")
    done = subprocess.run([sys.executable, "-m", "teamaccess.tui", "members", "--team", "acme"], env=env,
                          capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.decode("latin-1").splitlines()[1] == "------------  -----  --------"


def test_the_entry_point_freezes_what_it_imported_and_leaves_collection_on(monkeypatch):
    import gc

    import teamaccess.tui.__main__ as entry
    from teamaccess.tui import cli

    seen = {}

    def fake_main() -> None:
        seen["enabled"], seen["frozen"] = gc.isenabled(), gc.get_freeze_count()

    monkeypatch.setattr(cli, "main", fake_main)
    try:
        entry.main()
    finally:
        gc.unfreeze()  # the test process goes on: hand every object back to the collector
    assert seen["enabled"] is True  # commands still collect their own garbage
    assert seen["frozen"] > 1000  # the imported modules are out of later collections
