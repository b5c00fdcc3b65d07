"""A key or login binding made for another account lapses when its authorizer loses authority.

The two attacks reproduced as the tester wrote them (a key planted on a future admin's account,
and a login bound to a new hire in a team of one's own), the legitimate keys and bindings that
keep working, the policy rows, and the schema upgrade 2 -> 3 (account.os_login_by).
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess

import pytest
from conftest import WITHOUT_SCHEMA_4
from sqlalchemy import select, text
from teamaccess.store import identity, ops, queries
from teamaccess.store.db import Database
from teamaccess.store.demo import DEMO_ADMIN, DEMO_TEAM, build_demo
from teamaccess.store.errors import NotFound, Refused
from teamaccess.store.models import SCHEMA_VERSION, Account, AuditEvent, SshKey
from teamaccess.store.policy import decide_act_for, decide_delegated_use, decide_remove_key

OTHER_UID = 65534  # nobody
ADA = ops.Actor(DEMO_ADMIN, "ada")
MAL = ops.Actor("mal@acme.com", "sx_mal")
VICTIM = "victim@acme.com"



@pytest.fixture(autouse=True)
def _no_as_from_outside(monkeypatch):
    monkeypatch.delenv("TEAMACCESS_AS", raising=False)


@pytest.fixture(scope="module")
def pubs(tmp_path_factory) -> list[str]:
    if shutil.which("ssh-keygen") is None:
        pytest.fail("ssh-keygen is missing: install the OpenSSH client")
    folder = tmp_path_factory.mktemp("keys")
    out = []
    for n in range(3):
        path = folder / f"k{n}"
        subprocess.run(["ssh-keygen", "-q", "-N", "", "-t", "ed25519", "-f", str(path)],
                       check=True, capture_output=True)
        out.append((folder / f"k{n}.pub").read_text())
    return out


def _state(db: Database) -> tuple:
    with db.read() as s:
        keys = s.execute(select(SshKey.fingerprint, SshKey.account_id).order_by(SshKey.id)).all()
        logins = s.execute(select(Account.email, Account.os_login, Account.os_login_by)
                           .order_by(Account.id)).all()
    return tuple(keys), tuple(logins)


# -- the policy rows ---------------------------------------------------------------------------

T = frozenset


@pytest.mark.parametrize("authorizer, admin_of, teams, allowed, rule", [
    (None, T(), T({"a", "b"}), True, "binding:use:owner"),
    ("v@x", T(), T({"a", "b"}), True, "binding:use:self"),
    ("m@x", T({"a", "b"}), T({"a", "b"}), True, "binding:use:authority"),
    ("m@x", T({"a", "b", "c"}), T({"a"}), True, "binding:use:authority"),
    ("m@x", T({"evil"}), T({"evil", "acme"}), False, "binding:use:lapsed"),
    ("m@x", T({"evil"}), T({"acme"}), False, "binding:use:lapsed"),
    ("m@x", T(), T({"acme"}), False, "binding:use:lapsed"),
    ("m@x", T({"a"}), T(), False, "binding:use:lapsed"),  # authority needs at least one team
])
def test_delegated_use_table(authorizer, admin_of, teams, allowed, rule):
    for what in ("binding", "key"):
        d = decide_delegated_use("v@x", authorizer, authorizer_admin_of=admin_of,
                                 account_teams=teams, what=what)
        assert (d.allowed, d.rule) == (allowed, rule.replace("binding", what))


def test_delegated_use_reasons_name_the_authorizer():
    d = decide_delegated_use("v@x", "m@x", authorizer_admin_of=T({"evil"}),
                             account_teams=T({"evil", "acme"}), what="binding")
    assert d.reason == (
        "your login's binding to v@x was made by m@x, who no longer administers all of v@x's "
        "teams: ask the database's owner or an admin of every team of v@x to bind it again")
    d = decide_delegated_use("v@x", "m@x", authorizer_admin_of=T({"evil"}),
                             account_teams=T({"evil", "acme"}), what="key")
    assert d.reason == "suspended: added by m@x, who no longer administers all of this account's teams"


@pytest.mark.parametrize("actor_admin_of, suspended, allowed", [
    (T({"acme"}), True, True),  # an admin of one of its teams removes a suspended key
    (T({"acme"}), False, False),  # ... but not a working one
    (T({"other"}), True, False),  # an admin of no team of the account: never
    (T(), True, False),
])
def test_remove_key_table(actor_admin_of, suspended, allowed):
    act_for = decide_act_for("ada@x", "v@x", administers=actor_admin_of,
                             target_teams=T({"acme", "evil"}))
    assert not act_for
    d = decide_remove_key(act_for, actor_admin_of=actor_admin_of,
                          account_teams=T({"acme", "evil"}), key_suspended=suspended)
    assert d.allowed is allowed


def test_remove_key_follows_act_for_when_it_allows():
    act_for = decide_act_for("ada@x", "v@x", administers=T({"acme"}), target_teams=T({"acme"}))
    assert decide_remove_key(act_for, actor_admin_of=T({"acme"}), account_teams=T({"acme"}),
                             key_suspended=False)


# -- attack 1: a key planted on a future admin's account ---------------------------------------


def _plant_key(db: Database, pub: str) -> str:
    ops.create_team(db, MAL, "evil-co")
    ops.add_member(db, MAL, "evil-co", VICTIM, "viewer")
    fp = ops.add_key(db, MAL, pub, account=VICTIM).fingerprint
    assert queries.account_for_key(db, fp) == VICTIM  # mal administers all of victim's teams
    return fp


def test_a_planted_key_stops_logging_in_once_the_account_joins_another_team(owned, pubs):
    fp = _plant_key(owned, pubs[0])
    ops.add_member(owned, ADA, DEMO_TEAM, VICTIM, "admin")
    assert queries.account_for_key(owned, fp) is None
    # the account's admin sees why, and removes it, though ada can't act for victim
    rows = queries.keys(owned, DEMO_ADMIN, VICTIM)
    assert [(r.fingerprint, r.suspended) for r in rows] == [(
        fp, "suspended: added by mal@acme.com, who no longer administers all of this "
            "account's teams")]
    ops.remove_key(owned, ADA, fp)
    assert queries.keys(owned, VICTIM) == []


def test_a_suspended_key_works_again_when_authority_returns(owned, pubs):
    fp = _plant_key(owned, pubs[0])
    ops.add_member(owned, ADA, DEMO_TEAM, VICTIM, "viewer")
    assert queries.account_for_key(owned, fp) is None
    ops.remove_member(owned, ADA, DEMO_TEAM, VICTIM)
    assert queries.account_for_key(owned, fp) == VICTIM


def test_an_admin_of_another_team_sees_only_suspended_keys_and_removes_no_working_one(owned, pubs):
    fp = _plant_key(owned, pubs[0])
    ops.add_member(owned, ADA, DEMO_TEAM, VICTIM, "viewer")
    own = ops.add_key(owned, ops.Actor(VICTIM), pubs[1]).fingerprint
    assert queries.account_for_key(owned, own) == VICTIM  # the account's own key works
    assert [r.fingerprint for r in queries.keys(owned, DEMO_ADMIN, VICTIM)] == [fp]
    before, events = _state(owned), queries.audit_count(owned)
    with pytest.raises(NotFound):
        ops.remove_key(owned, ADA, own)
    assert _state(owned) == before and queries.audit_count(owned) == events + 1
    assert {r.fingerprint: r.suspended is None for r in queries.keys(owned, VICTIM)} == {
        fp: False, own: True}


def test_an_admin_of_every_team_keeps_their_key_working(owned, pubs):
    ops.add_member(owned, ADA, DEMO_TEAM, VICTIM, "member")
    fp = ops.add_key(owned, ADA, pubs[0], account=VICTIM).fingerprint
    ops.create_team(owned, ADA, "ada-two")
    ops.add_member(owned, ADA, "ada-two", VICTIM, "viewer")
    assert queries.account_for_key(owned, fp) == VICTIM


def test_the_owners_bootstrap_key_never_lapses(owned, pubs):
    owner = identity.resolve_actor(owned, VICTIM)
    ops.add_member(owned, ADA, DEMO_TEAM, VICTIM, "member")
    fp = ops.add_key(owned, owner, pubs[0]).fingerprint
    ops.create_team(owned, MAL, "evil-co")
    ops.add_member(owned, MAL, "evil-co", VICTIM, "viewer")
    assert queries.account_for_key(owned, fp) == VICTIM


def test_the_stranger_still_learns_nothing_about_a_key(owned, pubs):
    fp = _plant_key(owned, pubs[0])
    ops.add_member(owned, ADA, DEMO_TEAM, VICTIM, "admin")
    with pytest.raises(Refused):
        queries.keys(owned, "joe@acme.com", VICTIM)  # no admin of any of victim's teams
    with pytest.raises(NotFound):
        ops.remove_key(owned, ops.Actor("joe@acme.com"), fp)
    assert queries.account_for_key(owned, fp) is None


# -- attack 2: a login bound to a new hire through a team of one's own -------------------------


def _as_other_user(db: Database, monkeypatch) -> None:
    """Make the file someone else's, so resolve_actor reads the binding (no owner powers)."""
    if os.geteuid() == 0:
        os.chown(db.path, OTHER_UID, -1)
    else:
        real = os.geteuid()
        monkeypatch.setattr(identity.os, "geteuid", lambda: real + 1)


def test_a_self_bound_login_stops_working_when_the_account_joins_another_team(owned, monkeypatch):
    monkeypatch.setattr(identity, "os_login", lambda: "sx_mal")
    ops.create_team(owned, MAL, "evil-co")
    ops.add_member(owned, MAL, "evil-co", "newhire@acme.com", "member")
    assert not ops.bind_login(owned, MAL, "sx_mal", "newhire@acme.com").offered
    _as_other_user(owned, monkeypatch)
    assert identity.resolve_actor(owned).email == "newhire@acme.com"
    ops.add_member(owned, ADA, DEMO_TEAM, "newhire@acme.com", "admin")
    events = queries.audit_count(owned)
    with pytest.raises(Refused) as caught:
        identity.resolve_actor(owned)
    assert str(caught.value) == (
        "your login's binding to newhire@acme.com was made by mal@acme.com, who no longer "
        "administers all of newhire@acme.com's teams: ask the database's owner or an admin of "
        "every team of newhire@acme.com to bind it again")
    assert queries.audit_count(owned) == events + 1  # the refusal is logged, nothing else
    with owned.read() as s:
        last = s.scalars(select(AuditEvent).order_by(AuditEvent.id.desc())).first()
        assert (last.actor_email, last.actor_login, last.outcome) == (
            "newhire@acme.com", "sx_mal", "denied")
    # authority returns: newhire leaves acme-widgets, the binding works again
    ops.remove_member(owned, ADA, DEMO_TEAM, "newhire@acme.com")
    assert identity.resolve_actor(owned).email == "newhire@acme.com"


def test_a_lapsed_binding_is_mended_by_binding_it_again(owned, monkeypatch):
    ops.create_team(owned, MAL, "evil-co")
    ops.add_member(owned, MAL, "evil-co", "newhire@acme.com", "member")
    ops.bind_login(owned, MAL, "sx_mal", "newhire@acme.com")
    ops.add_member(owned, ADA, DEMO_TEAM, "newhire@acme.com", "member")
    ops.add_member(owned, MAL, "evil-co", DEMO_ADMIN, "admin")  # ada now has authority
    ops.remove_member(owned, MAL, "evil-co", "mal@acme.com")  # and mal has none
    # still bound, but lapsed: it is not "already bound", an admin with authority offers again
    assert ops.bind_login(owned, ADA, "sx_mal", "newhire@acme.com").offered
    ops.bind_login(owned, ops.Actor("newhire@acme.com", "sx_mal"), "sx_mal", "newhire@acme.com")
    with owned.read() as s:
        assert s.scalar(select(Account.os_login_by).where(Account.email == "newhire@acme.com")) \
            == DEMO_ADMIN
    # a working binding is still "already bound"
    with pytest.raises(Refused, match="already bound"):
        ops.bind_login(owned, ADA, "sx_mal", "newhire@acme.com")
    monkeypatch.setattr(identity, "os_login", lambda: "sx_mal")
    _as_other_user(owned, monkeypatch)
    assert identity.resolve_actor(owned).email == "newhire@acme.com"


def test_the_owner_mends_a_lapsed_binding_for_good(owned, monkeypatch):
    ops.create_team(owned, MAL, "evil-co")
    ops.add_member(owned, MAL, "evil-co", "newhire@acme.com", "member")
    ops.bind_login(owned, MAL, "sx_mal", "newhire@acme.com")
    ops.add_member(owned, ADA, DEMO_TEAM, "newhire@acme.com", "member")
    binding = ops.bind_login(owned, identity.resolve_actor(owned, DEMO_ADMIN), "sx_mal", "newhire@acme.com")
    assert not binding.offered
    monkeypatch.setattr(identity, "os_login", lambda: "sx_mal")
    _as_other_user(owned, monkeypatch)
    assert identity.resolve_actor(owned).email == "newhire@acme.com"


def test_an_offered_binding_lapses_with_its_offerer_not_the_confirmer(owned, monkeypatch):
    ops.create_team(owned, MAL, "evil-co")
    ops.add_member(owned, MAL, "evil-co", "newhire@acme.com", "member")
    assert ops.bind_login(owned, MAL, "sx_new", "newhire@acme.com").offered
    ops.bind_login(owned, ops.Actor("newhire@acme.com", "sx_new"), "sx_new", "newhire@acme.com")
    with owned.read() as s:
        assert s.scalar(select(Account.os_login_by).where(Account.email == "newhire@acme.com")) \
            == "mal@acme.com"
    monkeypatch.setattr(identity, "os_login", lambda: "sx_new")
    _as_other_user(owned, monkeypatch)
    assert identity.resolve_actor(owned).email == "newhire@acme.com"
    ops.add_member(owned, ADA, DEMO_TEAM, "newhire@acme.com", "viewer")
    with pytest.raises(Refused, match="was made by mal@acme.com"):
        identity.resolve_actor(owned)


def test_an_owners_binding_and_an_own_binding_never_lapse(owned, monkeypatch):
    owner = identity.resolve_actor(owned, DEMO_ADMIN)
    ops.bind_login(owned, owner, "sx_joe", "joe@acme.com")
    ops.bind_login(owned, ADA, "ada", DEMO_ADMIN)  # an admin binds their own login
    ops.create_team(owned, MAL, "evil-co")
    ops.add_member(owned, MAL, "evil-co", "joe@acme.com", "viewer")
    ops.add_member(owned, MAL, "evil-co", DEMO_ADMIN, "viewer")
    _as_other_user(owned, monkeypatch)
    for login, email in (("sx_joe", "joe@acme.com"), ("ada", DEMO_ADMIN)):
        monkeypatch.setattr(identity, "os_login", lambda login=login: login)
        assert identity.resolve_actor(owned).email == email


def test_a_binding_by_an_admin_of_every_team_keeps_working(owned, monkeypatch):
    ops.add_member(owned, ADA, DEMO_TEAM, "newhire@acme.com", "member")
    ops.bind_login(owned, ADA, "sx_new", "newhire@acme.com")
    ops.bind_login(owned, ops.Actor("newhire@acme.com", "sx_new"), "sx_new", "newhire@acme.com")
    ops.create_team(owned, ADA, "ada-two")
    ops.add_member(owned, ADA, "ada-two", "newhire@acme.com", "viewer")
    monkeypatch.setattr(identity, "os_login", lambda: "sx_new")
    _as_other_user(owned, monkeypatch)
    assert identity.resolve_actor(owned).email == "newhire@acme.com"


# -- schema 2 -> 3 -----------------------------------------------------------------------------


def test_a_version_2_file_gets_os_login_by_and_its_bindings_count_as_the_owners(tmp_path, monkeypatch):
    path = tmp_path / "v2.db"
    db = Database(path)
    build_demo(db)
    ops.bind_login(db, identity.resolve_actor(db, DEMO_ADMIN), "sx_joe", "joe@acme.com")
    db.close()
    conn = sqlite3.connect(path)
    conn.executescript(WITHOUT_SCHEMA_4)
    conn.execute("ALTER TABLE account DROP COLUMN os_login_by")
    conn.execute("UPDATE meta SET value = '2' WHERE key = 'schema_version'")
    conn.commit()
    conn.close()
    db = Database(path)
    try:
        with db.read() as s:
            assert s.execute(text("SELECT value FROM meta WHERE key = 'schema_version'")).scalar() \
                == str(SCHEMA_VERSION)
            assert s.execute(text("SELECT os_login, os_login_by FROM account WHERE os_login "
                                  "IS NOT NULL")).all() == [("sx_joe", None)]
        monkeypatch.setattr(identity, "os_login", lambda: "sx_joe")
        _as_other_user(db, monkeypatch)
        assert identity.resolve_actor(db).email == "joe@acme.com"
    finally:
        db.close()


@pytest.mark.postgres
def test_a_version_2_postgresql_database_is_upgraded(pg_url):
    import postgres_server

    url, schema = postgres_server.fresh_schema_url(pg_url)
    try:
        db = Database(url)
        build_demo(db)
        db.close()
        db = Database(url)
        db.write(lambda s: (s.connection().exec_driver_sql(WITHOUT_SCHEMA_4),
                            s.execute(text("ALTER TABLE account DROP COLUMN os_login_by")),
                            s.execute(text("UPDATE meta SET value = '2' WHERE key = 'schema_version'"))))
        db.close()
        db = Database(url)
        try:
            with db.read() as s:
                assert s.execute(text("SELECT value FROM meta WHERE key = 'schema_version'")).scalar() \
                    == str(SCHEMA_VERSION)
                assert s.execute(text("SELECT count(os_login_by) FROM account")).scalar() == 0
        finally:
            db.close()
    finally:
        postgres_server.drop_schema(pg_url, schema)




def test_the_dashboard_keys_screen_shows_why_a_key_is_suspended(owned, pubs):
    from teamaccess.tui.screens.keys import KeysView

    _plant_key(owned, pubs[0])
    ops.add_member(owned, ADA, DEMO_TEAM, VICTIM, "admin")
    own = ops.add_key(owned, ops.Actor(VICTIM), pubs[1]).fingerprint
    rows = queries.keys(owned, VICTIM)
    notes = {r.fingerprint: (KeysView._note(r).plain, r.comment) for r in rows}
    assert notes[own][0] == notes[own][1]  # a working key: its comment only
    [(note, comment)] = [v for fp, v in notes.items() if fp != own]
    assert note == ("suspended: added by mal@acme.com, who no longer administers all of this "
                    f"account's teams ({comment})")
