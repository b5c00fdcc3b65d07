"""Issue 11 on a real shared jump host: real OS users, README's group-and-folder recipe.

Each test plays an attack from the security review as written, as the OS user who would make
it, and checks that it fails and that nothing changed. Users and groups are created here
(prefixed ``tr``) and removed afterwards; that needs root, which CI and the dev machine have.
"""

from __future__ import annotations

import os
import pwd
import shutil
import sqlite3
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from os_users import cli_as, needs_root, os_users, run_as

pytestmark = needs_root


class Host:
    """The jump host: users, the shared folder and database, and helpers to act as them."""

    def __init__(self, users: dict[str, str], base: Path, srv: Path) -> None:
        self.users, self.base, self.srv = users, base, srv
        self.db = srv / "teamaccess.db"

    def cli(self, who: str, *argv: str, db: str | Path | None = None) -> tuple[int, str, str]:
        return tuple(cli_as(self.users[who], "--db", str(db or self.db), *argv))

    def ok(self, who: str, *argv: str, db: str | Path | None = None) -> str:
        code, out, err = self.cli(who, *argv, db=db)
        assert code == 0, (argv, out, err)
        return out

    def role_of(self, email: str, team: str = "acme-widgets") -> str | None:
        conn = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True)
        try:
            row = conn.execute(
                "SELECT m.role FROM membership m JOIN account a ON a.id = m.account_id "
                "JOIN team t ON t.id = m.team_id WHERE a.email = ? AND t.name = ?",
                (email, team)).fetchone()
        finally:
            conn.close()
        return row[0] if row else None

    def bound(self, login: str) -> str | None:
        conn = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True)
        try:
            row = conn.execute("SELECT email FROM account WHERE os_login = ?", (login,)).fetchone()
        finally:
            conn.close()
        return row[0] if row else None

    def audit(self) -> list[tuple]:
        conn = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True)
        try:
            return conn.execute(
                "SELECT actor_email, actor_login, action, target_email, outcome FROM audit_event "
                "ORDER BY id").fetchall()
        finally:
            conn.close()


def _make_host(folder_mode: str) -> Iterator[Host]:
    with os_users("tr", "ada", "grace", "bob", "carol", group="ta") as users:
        base = Path(tempfile.mkdtemp(prefix="tr-jump-"))
        base.chmod(0o755)  # mkdtemp's 0700 would keep the users out
        srv = base / "srv"
        subprocess.run(["install", "-d", "-m", "3770", "-o", users["ada"], "-g",
                        users["group"], str(srv)], check=True)
        host = Host(users, base, srv)
        try:
            # README's recipe: ada creates (and so owns) the file and bootstraps
            host.ok("ada", "--as", "ada@acme.com", "teams:create", "acme-widgets")
            host.ok("ada", "--as", "ada@acme.com", "accounts:bind", users["ada"], "ada@acme.com")
            for email, role in (("grace@acme.com", "admin"), ("bob@acme.com", "member"),
                                ("carol@acme.com", "member")):
                host.ok("ada", "members:add", email, "--team", "acme-widgets", "--role", role)
            host.ok("ada", "accounts:bind", users["grace"], "grace@acme.com")
            host.ok("ada", "accounts:bind", users["bob"], "bob@acme.com")
            srv.chmod(int(folder_mode, 8))
            yield host
        finally:
            shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def host() -> Iterator[Host]:
    yield from _make_host("3770")


@pytest.fixture
def unsticky_host() -> Iterator[Host]:
    yield from _make_host("2770")  # the README's recipe before issue 11


def test_the_recipe_makes_a_group_file_in_a_sticky_folder(host):
    info = host.db.stat()
    assert (info.st_mode & 0o777, pwd.getpwuid(info.st_uid).pw_name) == (0o660, host.users["ada"])
    assert host.ok("grace", "teams").splitlines()[2].split() == ["acme-widgets", "admin"]


# -- 1. --as on someone else's file --------------------------------------------------------------


def test_a_uri_filename_decoy_cannot_make_bob_ada(host):
    bob_home = host.base / "bob"
    bob_home.mkdir(mode=0o700)
    os.chown(bob_home, pwd.getpwnam(host.users["bob"]).pw_uid, -1)
    # bob's decoy: a path spelled like the URI, in his own folder, owned by him
    decoy_dir = bob_home / f"file:{host.srv}"
    url = f"sqlite:///file:{host.db}?uri=true"

    def attack() -> list:
        os.chdir(bob_home)
        os.makedirs(f"file:{host.srv}", exist_ok=True)
        from teamaccess.store.db import Database
        try:
            Database(f"{decoy_dir}/teamaccess.db").close()
        except Exception:  # noqa: BLE001 - only a decoy
            pass
        from os_users import _cli
        return _cli(["--db", url, "--as", "ada@acme.com", "members:set", "bob@acme.com",
                     "--team", "acme-widgets", "--role", "admin"])

    code, _out, err = run_as(host.users["bob"], attack)
    assert code == 1 and "plain path" in err
    assert host.role_of("bob@acme.com") == "member"


def test_a_symlink_flipped_during_the_check_never_wins(host):
    bob = host.users["bob"]
    bob_home = host.base / "bob"
    bob_home.mkdir(mode=0o700)
    os.chown(bob_home, pwd.getpwnam(bob).pw_uid, -1)

    def attack(tries: int) -> int:
        from os_users import _cli
        own = bob_home / "own.db"
        _cli(["--db", str(own), "--as", "ada@acme.com", "teams:create", "acme-widgets"])
        _cli(["--db", str(own), "--as", "ada@acme.com", "members:add", "bob@acme.com",
              "--team", "acme-widgets", "--role", "member"])
        link, spare = bob_home / "lnk", bob_home / "lnk.new"
        link.symlink_to(own)
        stop = threading.Event()

        def flip() -> None:
            targets = (host.db, own)
            i = 0
            while not stop.is_set():
                spare.unlink(missing_ok=True)
                spare.symlink_to(targets[i % 2])
                os.replace(spare, link)
                i += 1

        flipper = threading.Thread(target=flip, daemon=True)
        flipper.start()
        try:
            for _ in range(tries):
                _cli(["--db", str(link), "--as", "ada@acme.com", "members:set", "bob@acme.com",
                      "--team", "acme-widgets", "--role", "admin"])
        finally:
            stop.set()
            flipper.join()
        return tries

    assert run_as(bob, attack, 30) == 30
    assert host.role_of("bob@acme.com") == "member"  # never once on the shared file
    assert ("ada@acme.com", bob, "account.act_as", "ada@acme.com", "denied") in host.audit()


def test_bob_cannot_replace_the_file_in_the_sticky_folder(host):
    def swap() -> list:
        import shutil as sh
        sh.copy(host.db, host.srv / ".x")
        try:
            os.replace(host.srv / ".x", host.db)
            return ["replaced"]
        except PermissionError:
            os.unlink(host.srv / ".x")
            return ["refused"]

    assert run_as(host.users["bob"], swap) == ["refused"]
    assert pwd.getpwuid(host.db.stat().st_uid).pw_name == host.users["ada"]


def test_in_a_folder_others_may_rename_in_nobody_acts_via_as(unsticky_host):
    host = unsticky_host
    bob = host.users["bob"]

    def swap() -> list:
        import shutil as sh
        sh.copy(host.db, host.srv / ".x")
        os.replace(host.srv / ".x", host.db)  # the old recipe's folder allows this
        return []

    run_as(bob, swap)
    assert pwd.getpwuid(host.db.stat().st_uid).pw_name == bob  # bob "owns" the database now
    code, _out, err = host.cli("bob", "--as", "ada@acme.com", "members:set", "bob@acme.com",
                               "--team", "acme-widgets", "--role", "admin")
    assert code == 1 and "others may rename files in" in err and "chmod +t" in err
    assert host.role_of("bob@acme.com") == "member"
    # the refusal is logged with bob's login; bob's own bound account still works as itself
    assert ("ada@acme.com", bob, "account.act_as", "ada@acme.com", "denied") in host.audit()
    assert host.ok("bob", "teams").splitlines()[2].split() == ["acme-widgets", "member"]


# -- 3. binding squatting ------------------------------------------------------------------------


def test_squatting_on_root_or_an_unbound_login_fails_and_the_real_admin_binds(host):
    bob, carol = host.users["bob"], host.users["carol"]
    host.ok("bob", "teams:create", "bteam")  # bob becomes an admin of a team of his own
    host.ok("bob", "members:add", "trap@evil.dev", "--team", "bteam", "--role", "admin")
    for login in ("root", carol):
        code, _out, err = host.cli("bob", "accounts:bind", login, "trap@evil.dev")
        assert code == 0 and err.startswith(f"Offering login {login} to act as trap@evil.dev")
        assert host.bound(login) is None
    # nor can bob act as carol by making her a viewer of his team: he would read acme as her
    host.ok("bob", "members:add", "carol@acme.com", "--team", "bteam", "--role", "viewer")
    code, _out, err = host.cli("bob", "accounts:bind", bob, "carol@acme.com")
    assert code == 1 and "would also act in acme-widgets" in err
    assert host.bound(bob) != "carol@acme.com"
    host.ok("bob", "members:remove", "carol@acme.com", "--team", "bteam")
    # carol, unbound, can't take her own account without an offer from its admins
    code, _out, err = host.cli("carol", "accounts:bind", carol, "carol@acme.com")
    assert code == 1 and "No admin has offered" in err
    assert host.bound(carol) is None
    # grace, an admin of carol's team (not the file's owner), offers; carol confirms as herself
    code, _out, err = host.cli("grace", "accounts:bind", carol, "carol@acme.com")
    assert code == 0 and err.splitlines() == [
        f"Offering login {carol} to act as carol@acme.com... done",
        f"{carol} confirms by running: teamaccess accounts:bind {carol} carol@acme.com"]
    assert host.bound(carol) is None
    code, _out, err = host.cli("bob", "accounts:bind", carol, "carol@acme.com")
    assert code == 1 and "admin of carol@acme.com's team" in err  # not bob's to offer
    code, _out, err = host.cli("carol", "accounts:bind", carol, "carol@acme.com")
    assert (code, err) == (0, f"Binding login {carol} to carol@acme.com... done\n")
    assert host.bound(carol) == "carol@acme.com" and host.bound("root") is None
    assert "acme-widgets" in host.ok("carol", "teams")
    steps = [e for e in host.audit() if e[2] == "account.update" and e[3] in (
        "carol@acme.com", "trap@evil.dev")]
    assert [(e[1], e[4]) for e in steps] == [
        (bob, "ok"), (bob, "ok"), (bob, "denied"), (carol, "denied"), (host.users["grace"], "ok"),
        (bob, "denied"), (carol, "ok")]


# -- 7. read-only databases --------------------------------------------------------------------


def test_a_reader_of_a_read_only_file_leaves_nothing_that_breaks_the_owners_writes(host):
    host.db.chmod(0o640)  # ada lets the group read only
    for side in ("-wal", "-shm"):
        Path(f"{host.db}{side}").unlink(missing_ok=True)
    assert "acme-widgets" in host.ok("grace", "teams")
    code, _out, err = host.cli("grace", "teams:create", "graces")
    assert code == 1 and "read-only for you" in err
    host.ok("ada", "teams:create", "after-reader")  # the owner still writes
    assert "after-reader" in host.ok("ada", "teams")


def test_a_read_only_file_in_rollback_mode_can_be_read(host):
    for side in ("-wal", "-shm"):
        Path(f"{host.db}{side}").unlink(missing_ok=True)
    conn = sqlite3.connect(host.db)
    conn.execute("PRAGMA journal_mode=DELETE")
    conn.close()
    host.db.chmod(0o440)
    before = host.db.read_bytes()
    assert host.ok("grace", "teams").splitlines()[2].split() == ["acme-widgets", "admin"]
    assert host.ok("ada", "teams").splitlines()[2].split() == ["acme-widgets", "admin"]
    code, _out, err = host.cli("grace", "teams:create", "graces")
    assert code == 1 and "read-only for you" in err
    assert host.db.read_bytes() == before


def test_a_login_bound_to_a_new_hire_stops_working_when_the_hire_joins_acme(host):
    """The tester's attack 2 as bob (bound to bob@acme.com, a member): he binds his own login
    to a new hire in a team of his own, then ada makes the hire an admin of acme-widgets."""
    bob = host.users["bob"]
    host.ok("bob", "teams:create", "evil-co")
    host.ok("bob", "members:add", "newhire@acme.com", "--team", "evil-co", "--role", "member")
    code, _out, err = host.cli("bob", "accounts:bind", bob, "newhire@acme.com")
    assert (code, err) == (0, f"Binding login {bob} to newhire@acme.com... done\n")
    host.ok("ada", "members:add", "newhire@acme.com", "--team", "acme-widgets", "--role", "admin")
    before = host.role_of("joe@acme.com"), host.role_of("newhire@acme.com")
    code, out, err = host.cli("bob", "members:add", "joe@acme.com", "--team", "acme-widgets",
                              "--role", "admin")
    assert code == 1 and out == ""
    assert err == (
        "Error: your login's binding to newhire@acme.com was made by bob@acme.com, who no longer "
        "administers all of newhire@acme.com's teams: ask the database's owner or an admin of "
        "every team of newhire@acme.com to bind it again\n")
    assert (host.role_of("joe@acme.com"), host.role_of("newhire@acme.com")) == before
    assert host.audit()[-1][1:] == (bob, "account.act_as", "newhire@acme.com", "denied")
    # ada (the file's owner) binds it again: from now on it holds whatever teams newhire joins
    host.ok("ada", "accounts:bind", bob, "newhire@acme.com")
    assert "acme-widgets" in host.ok("bob", "teams")
