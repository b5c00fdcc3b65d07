"""Who is acting: the OS login's bound account; ``--as`` only on a database the user owns."""

from __future__ import annotations

import os
import pwd
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select, text
from teamaccess.store import identity, ops, policy, queries
from teamaccess.store.db import Database
from teamaccess.store.demo import DEMO_ADMIN, DEMO_TEAM, build_demo
from teamaccess.store.errors import Invalid, NotFound, Refused
from teamaccess.store.models import AuditEvent

ME = pwd.getpwuid(os.geteuid()).pw_name
OTHER_UID = 65534  # nobody



@pytest.fixture
def shared(owned, monkeypatch) -> Database:
    """The same database as seen by a user who does not own the file (a shared database)."""
    if os.geteuid() == 0:
        os.chown(owned.path, OTHER_UID, -1)
    else:  # can't give a file away: pretend to be someone else instead
        real = os.geteuid()
        monkeypatch.setattr(identity.os, "geteuid", lambda: real + 1)
        monkeypatch.setattr(identity, "os_login", lambda: ME)
    return owned


@pytest.fixture(autouse=True)
def _no_as_from_outside(monkeypatch):
    monkeypatch.delenv("TEAMACCESS_AS", raising=False)


def test_the_os_login_comes_from_the_uid_not_from_the_environment(monkeypatch):
    monkeypatch.setenv("USER", "ada")
    monkeypatch.setenv("LOGNAME", "ada")
    monkeypatch.setenv("LNAME", "ada")
    monkeypatch.setenv("USERNAME", "ada")
    assert identity.os_login() == ME != "ada"


def test_as_is_honoured_on_a_database_you_own(owned):
    assert identity.may_act_as_anyone(owned)
    assert identity.resolve_actor(owned, "  Joe@Acme.com ") == ops.Actor("joe@acme.com", ME)


def test_teamaccess_as_is_honoured_on_a_database_you_own(owned, monkeypatch):
    monkeypatch.setenv("TEAMACCESS_AS", "grace@acme.com")
    assert identity.resolve_actor(owned) == ops.Actor("grace@acme.com", ME)


def test_an_empty_teamaccess_as_counts_as_unset(owned, monkeypatch):
    monkeypatch.setenv("TEAMACCESS_AS", "")
    with pytest.raises(NotFound, match="No account is bound to your login"):
        identity.resolve_actor(owned)


def test_a_malformed_as_is_invalid(owned):
    with pytest.raises(Invalid, match=r"^Invalid email"):
        identity.resolve_actor(owned, "ada@acme.com\x1b[2J")


def test_as_is_refused_on_a_database_someone_else_owns(shared):
    assert not identity.may_act_as_anyone(shared)
    with pytest.raises(Refused) as caught:
        identity.resolve_actor(shared, DEMO_ADMIN)
    message = str(caught.value)
    assert message.startswith("--as/TEAMACCESS_AS is honoured only on a database you own")
    assert f"'teamaccess accounts:bind {ME} EMAIL'" in message


def test_teamaccess_as_is_refused_there_too(shared, monkeypatch):
    monkeypatch.setenv("TEAMACCESS_AS", DEMO_ADMIN)
    with pytest.raises(Refused, match="honoured only on a database you own"):
        identity.resolve_actor(shared)


def test_a_symlink_you_own_does_not_make_the_database_yours(shared, tmp_path):
    link = tmp_path / "my-link.db"
    link.symlink_to(shared.path)
    via_link = Database(link)
    try:
        with pytest.raises(Refused, match="honoured only on a database you own"):
            identity.resolve_actor(via_link, DEMO_ADMIN)
    finally:
        via_link.close()


def test_an_unbound_login_on_a_shared_database_is_told_how_to_get_bound(shared):
    with pytest.raises(NotFound) as caught:
        identity.resolve_actor(shared)
    assert str(caught.value) == (
        f"No account is bound to your login {ME!r}: pass --as EMAIL (on a database you own) "
        f"or ask a team admin to run 'teamaccess accounts:bind {ME} EMAIL'."
    )


def test_the_bound_account_acts_and_the_audit_log_records_the_login(owned, monkeypatch):
    # The file's owner bootstraps: acting as ada, binds their own login to ada's account.
    ada = identity.resolve_actor(owned, DEMO_ADMIN)
    ops.bind_login(owned, ada, ME, DEMO_ADMIN)
    if os.geteuid() == 0:
        os.chown(owned.path, OTHER_UID, -1)
    else:
        real = os.geteuid()
        monkeypatch.setattr(identity.os, "geteuid", lambda: real + 1)
    actor = identity.resolve_actor(owned)
    assert actor == ops.Actor(DEMO_ADMIN, ME)
    ops.lock_app(owned, actor, "test")
    with owned.read() as s:
        last = s.scalars(select(AuditEvent).order_by(AuditEvent.id.desc())).first()
        assert (last.actor_email, last.actor_login, last.action, last.outcome) == (
            DEMO_ADMIN, ME, "app.update", "ok")
    assert [r.actor_login for r in queries.audit(owned, DEMO_ADMIN, DEMO_TEAM, limit=2)][0] == ME


# -- binding logins ------------------------------------------------------------------------------


def _bound_email(db: Database, login: str) -> str | None:
    account = queries.account_by_login(db, login)
    return account.email if account else None


ADA = ops.Actor(DEMO_ADMIN, "ada")  # a team admin on a database someone else owns


def _offer_and_confirm(db: Database, admin: ops.Actor, login: str, email: str) -> None:
    assert ops.bind_login(db, admin, login, email).offered
    assert _bound_email(db, login) != email  # an offer binds nothing yet
    assert not ops.bind_login(db, ops.Actor(email, login), login, email).offered
    assert _bound_email(db, login) == email


def test_the_databases_owner_binds_directly(owned):
    owner = identity.resolve_actor(owned, DEMO_ADMIN)
    assert owner.owns_database
    binding = ops.bind_login(owned, owner, "joe", "joe@acme.com")
    assert (binding.offered, _bound_email(owned, "joe")) == (False, "joe@acme.com")


def test_binding_someone_elses_login_is_an_offer_until_its_holder_confirms(owned):
    before = queries.audit_count(owned)
    _offer_and_confirm(owned, ADA, "joe", "joe@acme.com")
    events = queries.audit(owned, DEMO_ADMIN, DEMO_TEAM, action="account.update", limit=2)
    assert [(e.actor_email, e.actor_login, e.after) for e in events] == [
        ("joe@acme.com", "joe", {"email": "joe@acme.com", "login": "joe"}),
        (DEMO_ADMIN, "ada", {"offer": {"email": "joe@acme.com", "login": "joe"}}),
    ]
    assert queries.audit_count(owned) == before + 2
    # the offer is used up: moving joe's login elsewhere and back needs a new one
    ops.bind_login(owned, identity.resolve_actor(owned, DEMO_ADMIN), "joe", "alan@acme.com")
    with pytest.raises(Refused, match="No admin has offered login joe"):
        ops.bind_login(owned, ops.Actor("joe@acme.com", "joe"), "joe", "joe@acme.com")
    assert _bound_email(owned, "joe") == "alan@acme.com"


def test_an_admin_binds_their_own_login_without_an_offer(owned):
    assert not ops.bind_login(owned, ADA, "ada", DEMO_ADMIN).offered
    assert _bound_email(owned, "ada") == DEMO_ADMIN


def test_confirming_without_an_offer_is_refused_and_changes_nothing(owned):
    before = queries.audit_count(owned)
    for actor, login in ((ops.Actor("joe@acme.com", "joe"), "joe"),
                         (ops.Actor("joe@acme.com", "root"), "root")):
        with pytest.raises(Refused, match=f"No admin has offered login {login} to act as joe"):
            ops.bind_login(owned, actor, login, "joe@acme.com")
        assert _bound_email(owned, login) is None
    assert queries.audit_count(owned) == before + 2  # the refusals are logged, nothing else


def test_an_offer_made_to_another_login_or_account_does_not_count(owned):
    ops.bind_login(owned, ADA, "joe", "joe@acme.com")  # offered to login joe, as joe
    with pytest.raises(Refused, match="No admin has offered login tim"):
        ops.bind_login(owned, ops.Actor("joe@acme.com", "tim"), "tim", "joe@acme.com")
    with pytest.raises(Refused, match="No admin has offered login joe to act as alan"):
        ops.bind_login(owned, ops.Actor("alan@acme.com", "joe"), "joe", "alan@acme.com")
    assert _bound_email(owned, "tim") is None and _bound_email(owned, "joe") is None


def test_an_offer_from_someone_who_lost_authority_no_longer_counts(owned):
    owner = identity.resolve_actor(owned, DEMO_ADMIN)
    ops.add_member(owned, owner, DEMO_TEAM, "eve@acme.com", "admin")
    eve = ops.Actor("eve@acme.com", "eve")
    assert ops.bind_login(owned, eve, "joe", "joe@acme.com").offered
    ops.remove_member(owned, owner, DEMO_TEAM, "eve@acme.com")
    with pytest.raises(Refused, match="No admin has offered login joe"):
        ops.bind_login(owned, ops.Actor("joe@acme.com", "joe"), "joe", "joe@acme.com")
    assert _bound_email(owned, "joe") is None


def test_only_an_admin_of_the_accounts_team_may_offer(owned):
    for who in ("joe@acme.com", "tim@acme.com", "sam@freelance.dev"):  # member, viewer, collaborator
        before = queries.audit_count(owned)
        with pytest.raises(Refused, match="Only an admin of .*'s team may bind"):
            ops.bind_login(owned, ops.Actor(who, who[:3]), "alan", "alan@acme.com")
        assert queries.audit_count(owned) == before + 1
    assert _bound_email(owned, "alan") is None


def test_squatting_on_root_or_an_unbound_login_does_not_work(owned):
    # mallory makes a team of her own, adds an account she controls, and "binds" logins to it
    mallory = ops.Actor("mallory@evil.example", "mallory")
    ops.create_team(owned, mallory, "mteam")
    ops.add_member(owned, mallory, "mteam", "trap@evil.example", "admin")
    for login in ("root", "carol"):
        assert ops.bind_login(owned, mallory, login, "trap@evil.example").offered
        assert _bound_email(owned, login) is None
    # the real admin's binding still works, offered and confirmed by carol herself
    ops.add_member(owned, ADA, DEMO_TEAM, "carol@acme.com", "member")
    _offer_and_confirm(owned, ADA, "carol", "carol@acme.com")
    assert _bound_email(owned, "root") is None


def test_a_viewer_elsewhere_cannot_be_read_through_a_binding_and_the_owner_still_binds(owned):
    # mallory makes joe a viewer of her team (and gives him a personal app), tim a member and
    # alan a view-only grant: none of it lets her act as them (she would read acme-widgets as
    # them); it keeps ada, who administers only acme-widgets, from offering joe a binding, but
    # the database's owner still binds.
    mallory = ops.Actor("mallory@evil.example", "mallory")
    ops.create_team(owned, mallory, "mteam")
    ops.add_member(owned, mallory, "mteam", "joe@acme.com", "viewer")
    ops.add_member(owned, mallory, "mteam", "tim@acme.com", "member")
    ops.create_app(owned, mallory, "mallory-gift", "mteam")
    ops.grant_access(owned, mallory, "mallory-gift", "alan@acme.com", [])  # view only
    ops.create_app(owned, mallory, "personal-gift")
    ops.transfer_app(owned, mallory, "personal-gift", "joe@acme.com")
    before = queries.audit_count(owned)
    for login, email in (("mallory", "tim@acme.com"), ("mallory", "alan@acme.com"),
                         ("mallory", "joe@acme.com")):
        with pytest.raises(Refused, match=r"would also act in acme-widgets"):
            ops.bind_login(owned, mallory, login, email)
    with pytest.raises(Refused, match=r"would also act in .*mteam"):
        ops.bind_login(owned, ADA, "joe", "joe@acme.com")
    assert queries.audit_count(owned) == before + 4
    assert _bound_email(owned, "mallory") is None and _bound_email(owned, "joe") is None
    owner = identity.resolve_actor(owned, DEMO_ADMIN)
    assert owner.owns_database
    ops.bind_login(owned, owner, "joe", "joe@acme.com")
    ops.bind_login(owned, owner, "alan", "alan@acme.com")
    assert _bound_email(owned, "joe") == "joe@acme.com"
    assert _bound_email(owned, "alan") == "alan@acme.com"


def test_an_admin_of_another_team_cannot_take_over_an_account_by_binding(owned):
    # mallory adds ada and joe to her team and tries to act as them: each holds a role in
    # acme-widgets, which she does not administer
    mallory = ops.Actor("mallory@evil.example", "mallory")
    ops.bind_login(owned, ADA, "ada", DEMO_ADMIN)
    ops.create_team(owned, mallory, "mteam")
    ops.add_member(owned, mallory, "mteam", DEMO_ADMIN, "viewer")
    ops.add_member(owned, mallory, "mteam", "joe@acme.com", "viewer")
    before = queries.audit_count(owned)
    with pytest.raises(Refused, match=r"would also act in acme-widgets.*ask an admin"):
        ops.bind_login(owned, mallory, "mallory", DEMO_ADMIN)  # her own login: no offer needed
    with pytest.raises(Refused, match=r"would also act in acme-widgets"):
        ops.bind_login(owned, mallory, "mallory", "joe@acme.com")
    with pytest.raises(Refused, match=r"would also act in acme-widgets"):
        ops.bind_login(owned, mallory, "ada", "joe@acme.com")
    assert _bound_email(owned, "ada") == DEMO_ADMIN
    assert _bound_email(owned, "mallory") is None
    assert queries.audit_count(owned) == before + 3
    # nor does a key (login None) reach the account: decide_bind is the keys' rule too
    facts = policy.BindFacts(
        email=DEMO_ADMIN, login=None, actor_email=mallory.email, actor_login="mallory",
        actor_owns_database=False, actor_admin_of=frozenset({"mteam"}),
        account_teams=frozenset({"mteam", DEMO_TEAM}), account_strong_teams=frozenset({DEMO_TEAM}))
    assert policy.decide_bind(facts).outcome is policy.BindOutcome.REFUSE


def test_binding_a_login_again_moves_it(owned):
    owner = identity.resolve_actor(owned, DEMO_ADMIN)
    ops.bind_login(owned, owner, "ada", DEMO_ADMIN)
    ops.bind_login(owned, owner, "shared-login", "joe@acme.com")
    moved = ops.bind_login(owned, owner, "shared-login", "alan@acme.com")
    assert moved.previous == "joe@acme.com"
    assert _bound_email(owned, "shared-login") == "alan@acme.com"
    with owned.read() as s:
        logins = s.execute(text("SELECT email, os_login FROM account WHERE os_login IS NOT NULL"))
        assert sorted(logins) == [(DEMO_ADMIN, "ada"), ("alan@acme.com", "shared-login")]


@pytest.mark.parametrize("bad", ["", "has space", "x" * 65, "ada;rm", "-flag", "\x1b[31m"])
def test_a_malformed_login_is_invalid_and_binds_nothing(owned, bad):
    ada = ops.Actor(DEMO_ADMIN, "ada")
    with pytest.raises(Invalid, match=r"^Invalid login"):
        ops.bind_login(owned, ada, bad, DEMO_ADMIN)
    with owned.read() as s:
        assert s.execute(text("SELECT count(*) FROM account WHERE os_login IS NOT NULL")).scalar() == 0


# -- PostgreSQL: the database's owner role is the one who may use --as ------------------------------


@pytest.mark.postgres
def test_on_postgresql_as_is_honoured_for_the_owner_role_only(pg_db):
    build_demo(pg_db)
    login = identity.acting_login(pg_db)
    assert identity.resolve_actor(pg_db, DEMO_ADMIN) == ops.Actor(DEMO_ADMIN, login)
    with pg_db.read() as s:
        schema = s.execute(text("SELECT current_schema()")).scalar()
    role = f"ta_{schema}"[:60]
    with pg_db.engine.connect() as conn:
        conn.exec_driver_sql(f'CREATE ROLE "{role}" NOLOGIN')
        conn.exec_driver_sql(f'GRANT USAGE ON SCHEMA "{schema}" TO "{role}"')
        conn.exec_driver_sql(f'GRANT SELECT ON ALL TABLES IN SCHEMA "{schema}" TO "{role}"')
        conn.commit()
    from sqlalchemy.engine import make_url

    url = make_url(pg_db.url)
    options = f"{url.query['options']} -crole={role}"
    as_other = Database(url.update_query_dict({"options": options}).render_as_string(False))
    try:
        assert not identity.may_act_as_anyone(as_other)
        with pytest.raises(Refused, match="honoured only on a database you own"):
            identity.resolve_actor(as_other, DEMO_ADMIN)
    finally:
        as_other.close()
        with pg_db.engine.connect() as conn:
            conn.exec_driver_sql(f'DROP OWNED BY "{role}"')
            conn.exec_driver_sql(f'DROP ROLE "{role}"')
            conn.commit()


@pytest.mark.postgres
def test_on_postgresql_an_offer_is_confirmed_by_its_login_and_audited(pg_db):
    build_demo(pg_db)
    _offer_and_confirm(pg_db, ADA, "joe", "joe@acme.com")
    mallory = ops.Actor("mallory@evil.example", "mallory")
    ops.create_team(pg_db, mallory, "mteam")
    ops.add_member(pg_db, mallory, "mteam", "joe@acme.com", "viewer")
    assert not [e for e in queries.audit(pg_db, mallory.email, "mteam")
                if e.action.startswith("account.")]
    steps = queries.audit(pg_db, DEMO_ADMIN, DEMO_TEAM, action="account.update", limit=2)
    assert [e.actor_login for e in steps] == ["joe", "ada"]


# -- the command line ----------------------------------------------------------------------------


def test_the_cli_refuses_as_on_a_shared_file_in_one_line(shared):
    if os.geteuid() != 0:
        pytest.skip("gives the database file to another user, which needs root (CI runs as root)")
    result = subprocess.run(
        [str(Path(sys.executable).with_name("teamaccess")), "--db", str(shared.path),
         "--as", DEMO_ADMIN, "apps:lock", "--app", "test"],
        capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
        env={k: v for k, v in os.environ.items() if k != "TEAMACCESS_AS"},
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("Error: --as/TEAMACCESS_AS is honoured only on a database")
    assert len(result.stderr.strip().splitlines()) == 1
    assert [a.locked for a in queries.apps(shared, DEMO_ADMIN, DEMO_TEAM) if a.name == "test"] == [False]


@pytest.mark.postgres
def test_on_postgresql_the_login_is_the_role_the_server_authenticated(pg_db, monkeypatch):
    build_demo(pg_db)
    with pg_db.read() as s:
        role = s.execute(text("SELECT session_user")).scalar()
    monkeypatch.setenv("USER", "ada")
    assert identity.acting_login(pg_db) == role
    ops.bind_login(pg_db, ops.Actor(DEMO_ADMIN, role), role, DEMO_ADMIN)
    monkeypatch.setattr(identity, "may_act_as_anyone", lambda db: False)
    assert identity.resolve_actor(pg_db) == ops.Actor(DEMO_ADMIN, role)
    with pytest.raises(Refused):
        identity.resolve_actor(pg_db, "joe@acme.com")
