"""The keys commands (keys, keys:add, keys:remove) and the audit table's "Via" column."""

from __future__ import annotations

import json
import subprocess

import pytest
from click.testing import CliRunner
from teamaccess.store import ops, queries
from teamaccess.store.db import Database
from teamaccess.tui.cli import State, cli

ADA = ops.Actor("ada@acme.com", "ada")


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    for var in ("TEAMACCESS_DB", "TEAMACCESS_AS", "TEAMACCESS_TEAM"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def kdb(tmp_path):
    """acme: ada admin, joe member; globex: gil admin, pat member."""
    db = Database(tmp_path / "keys.db")
    ops.create_team(db, ADA, "acme")
    ops.add_member(db, ADA, "acme", "joe@acme.com", "member")
    ops.create_team(db, ops.Actor("gil@globex.com"), "globex")
    ops.add_member(db, ops.Actor("gil@globex.com"), "globex", "pat@globex.com", "member")
    yield db
    db.close()


@pytest.fixture(scope="module")
def pub(tmp_path_factory) -> tuple[str, str]:
    """A fresh ed25519 public key file made by ssh-keygen, and its fingerprint."""
    folder = tmp_path_factory.mktemp("k")
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "joe@laptop",
                    "-f", str(folder / "id")], check=True)
    fp = subprocess.run(["ssh-keygen", "-lf", str(folder / "id.pub")], check=True,
                        capture_output=True, text=True).stdout.split()[1]
    return str(folder / "id.pub"), fp


def run(db: Database, *args: str, who: str | None = "ada@acme.com", input: str | None = None,
        obj: State | None = None):
    extra = ["--db", str(db.path)] + (["--as", who] if who else [])
    return CliRunner().invoke(cli, [*args, *extra] if obj is None else list(args), input=input,
                              prog_name="teamaccess", obj=obj)


def error_line(result) -> str:
    assert result.exit_code == 1, (result.stdout, result.stderr)
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    return lines[0]


def test_add_list_and_remove_your_own_key(kdb, pub):
    path, fp = pub
    added = run(kdb, "keys:add", path, who="joe@acme.com")
    assert added.exit_code == 0, added.stderr
    assert added.stdout == ""
    assert added.stderr == f"Adding key {fp} to joe@acme.com... done\n"
    listed = run(kdb, "keys", who="joe@acme.com").stdout.splitlines()
    assert listed[0] == "=== joe@acme.com keys"
    assert listed[1].split()[0] == "Fingerprint"
    assert listed[3].split()[:2] == [fp, "ssh-ed25519"] and listed[3].split()[3] == "joe@laptop"
    data = json.loads(run(kdb, "keys", "--json", who="joe@acme.com").stdout)
    assert [(k["fingerprint"], k["email"], k["comment"]) for k in data] == [(fp, "joe@acme.com", "joe@laptop")]
    assert data[0]["public_key"] == open(path).read().strip()
    assert len(data[0]["id"]) == 36 and data[0]["id"].count("-") == 4  # a UUID, as Heroku's
    removed = run(kdb, "keys:remove", fp, who="joe@acme.com")
    assert (removed.exit_code, removed.stdout) == (0, "")
    assert removed.stderr == f"Removing key {fp} from joe@acme.com... done\n"
    assert run(kdb, "keys", who="joe@acme.com").stdout == "You have no SSH keys.\n"
    assert run(kdb, "keys", "--json", who="joe@acme.com").stdout.strip() == "[]"


def test_the_key_as_text_or_on_standard_input(kdb, pub):
    path, fp = pub
    text = open(path).read()
    assert run(kdb, "keys:add", "-", input=text).exit_code == 0
    assert queries.account_for_key(kdb, fp) == "ada@acme.com"
    assert run(kdb, "keys:remove", fp).exit_code == 0
    assert run(kdb, "keys:add", text.strip(), "--account", "joe@acme.com").stderr == \
        f"Adding key {fp} to joe@acme.com... done\n"
    assert queries.account_for_key(kdb, fp) == "joe@acme.com"
    assert run(kdb, "keys", "--account", "joe@acme.com").stdout.splitlines()[0] == "=== joe@acme.com keys"
    assert run(kdb, "keys:remove", fp).exit_code == 0
    assert run(kdb, "keys:add", *text.split()).exit_code == 0  # the words unquoted, as over SSH
    assert queries.account_for_key(kdb, fp) == "ada@acme.com"


def test_refusals_are_one_line_and_change_nothing(kdb, pub, tmp_path):
    path, fp = pub
    before = queries.audit_count(kdb)
    assert "Only a team admin may add a key to another account" in error_line(
        run(kdb, "keys:add", path, "--account", "ada@acme.com", who="joe@acme.com"))
    assert "would also act in globex" in error_line(
        run(kdb, "keys:add", path, "--account", "pat@globex.com"))
    assert "No file nothere.pub" in error_line(run(kdb, "keys:add", "nothere.pub"))
    (tmp_path / "bad.pub").write_text("ssh-dss AAAAB3NzaC1kc3MAAACBAP\n")
    assert "DSA keys (ssh-dss) are refused" in error_line(run(kdb, "keys:add", str(tmp_path / "bad.pub")))
    assert "No key" in error_line(run(kdb, "keys:remove", fp))
    assert "Only a team admin" in error_line(run(kdb, "keys", "--account", "ada@acme.com", who="joe@acme.com"))
    assert queries.keys(kdb, "ada@acme.com") == [] and queries.keys(kdb, "joe@acme.com") == []
    # each refused write is logged (a missing file never reached the store; reads are not logged)
    assert queries.audit_count(kdb) == before + 4


def test_a_served_session_never_reads_a_server_file(kdb, pub):
    """Over SSH a KEY|FILE argument is key text only: a path on the server is not opened."""
    path, fp = pub
    served = State(db_where=str(kdb.path))
    served._actor = ops.Actor("joe@acme.com", None, key_fingerprint=fp, peer="127.0.0.1:4000")
    result = run(kdb, "keys:add", path, obj=served)
    line = error_line(result)
    assert "is not a key type" in line and "ssh-ed25519" not in line
    assert queries.keys(kdb, "joe@acme.com") == []
    served = State(db_where=str(kdb.path))
    served._actor = ops.Actor("joe@acme.com", None, key_fingerprint=fp, peer="127.0.0.1:4000")
    assert run(kdb, "keys:add", "-", input=open(path).read(), obj=served).exit_code == 0


def test_the_audit_table_shows_how_the_actor_came(kdb, pub):
    path, fp = pub
    served = ops.Actor("ada@acme.com", None, key_fingerprint=fp, peer="127.0.0.1:53412")
    ops.create_app(kdb, served, "servedapp", "acme")
    lines = run(kdb, "audit", "--team", "acme", "-n", "2").stdout.splitlines()
    assert lines[0].split()[:4] == ["When", "Actor", "Via", "Action"]
    assert f"{fp} from 127.0.0.1:53412" in lines[2] and "app.create" in lines[2]
    assert lines[3].split()[2] == "ada"  # a local run: the OS login
    data = json.loads(run(kdb, "audit", "--team", "acme", "--json").stdout)
    assert data[0]["actor"] == {"email": "ada@acme.com", "login": None,
                                "key_fingerprint": fp, "peer": "127.0.0.1:53412"}
    assert data[1]["actor"]["key_fingerprint"] is None
