"""Who is acting: the OS login's bound account; ``--as`` only on a database the user owns."""

from __future__ import annotations

import os
import pwd
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select, text
from teamaccess.store import identity, ops, queries
from teamaccess.store.db import Database
from teamaccess.store.demo import DEMO_ADMIN, DEMO_TEAM, build_demo
from teamaccess.store.errors import Invalid, NotFound, Refused
from teamaccess.store.models import AuditEvent

ME = pwd.getpwuid(os.geteuid()).pw_name
OTHER_UID = 65534  # nobody


@pytest.fixture
def owned(tmp_path) -> Database:
    """The demo database in a file this process owns (a personal database)."""
    db = Database(tmp_path / "mine.db")
    build_demo(db)
    yield db
    db.close()


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


def test_the_first_binding_must_be_the_binders_own_account(owned):
    before = queries.audit_count(owned)
    with pytest.raises(Refused, match="first binding must be your own account"):
        ops.bind_login(owned, ops.Actor(DEMO_ADMIN, "ada"), "ada", "joe@acme.com")
    assert _bound_email(owned, "ada") is None
    assert queries.audit_count(owned) == before + 1  # the refusal is logged, nothing else


def test_only_an_admin_of_the_accounts_team_may_bind_a_login_to_it(owned):
    ada = ops.Actor(DEMO_ADMIN, "ada")
    ops.bind_login(owned, ada, "ada", DEMO_ADMIN)
    for who in ("joe@acme.com", "tim@acme.com", "sam@freelance.dev"):  # member, viewer, collaborator
        with pytest.raises(Refused, match="Only a team admin may bind logins"):
            ops.bind_login(owned, ops.Actor(who, who[:3]), who[:3], who)
        assert _bound_email(owned, who[:3]) is None
    ops.bind_login(owned, ada, "joe", "joe@acme.com")
    assert _bound_email(owned, "joe") == "joe@acme.com"


def test_an_admin_of_another_team_cannot_take_over_an_account_by_binding(owned):
    # mallory makes a team of her own, adds ada to it, and tries to bind her login to ada:
    # she would then act as ada, an admin of acme-widgets, which she does not administer.
    ada = ops.Actor(DEMO_ADMIN, "ada")
    ops.bind_login(owned, ada, "ada", DEMO_ADMIN)
    mallory = ops.Actor("mallory@evil.example", "mallory")
    ops.create_team(owned, mallory, "mteam")
    ops.add_member(owned, mallory, "mteam", DEMO_ADMIN, "viewer")
    ops.add_member(owned, mallory, "mteam", "joe@acme.com", "viewer")
    before = queries.audit_count(owned)
    with pytest.raises(Refused, match=r"would also act in acme-widgets.*ask an admin"):
        ops.bind_login(owned, mallory, "mallory", DEMO_ADMIN)
    with pytest.raises(Refused, match=r"would also act in acme-widgets"):
        ops.bind_login(owned, mallory, "mallory", "joe@acme.com")
    # nor may she take ada's own login away from her
    ops.add_member(owned, mallory, "mteam", "fresh@evil.example", "viewer")
    with pytest.raises(Refused, match=r"Login ada is bound to ada@acme.com"):
        ops.bind_login(owned, mallory, "ada", "fresh@evil.example")
    assert _bound_email(owned, "ada") == DEMO_ADMIN
    assert _bound_email(owned, "mallory") is None
    assert queries.audit_count(owned) == before + 4  # three refusals and fresh's membership
    # within her own team she may bind whom she administers entirely
    ops.bind_login(owned, mallory, "fresh", "fresh@evil.example")
    assert _bound_email(owned, "fresh") == "fresh@evil.example"


def test_binding_a_login_again_moves_it(owned):
    ada = ops.Actor(DEMO_ADMIN, "ada")
    ops.bind_login(owned, ada, "ada", DEMO_ADMIN)
    ops.bind_login(owned, ada, "shared-login", "joe@acme.com")
    ops.bind_login(owned, ada, "shared-login", "alan@acme.com")
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
