"""SSH public keys in the store: the parser, keys:add / keys:remove under the bind rule, the audit
columns of a served session, and the upgrade of version-1 databases to schema 2.

Keys are made by the real ``ssh-keygen``, so the fingerprints are checked against what OpenSSH
itself prints.
"""

from __future__ import annotations

import base64
import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine, select, text
from sqlmodel import SQLModel
from teamaccess.store import ops, queries
from teamaccess.store.db import Database
from teamaccess.store.errors import DatabaseProblem, Invalid, NotFound, Refused, StoreError
from teamaccess.store.models import SCHEMA_VERSION, AuditEvent, SshKey
from teamaccess.store.policy import decide_act_for
from teamaccess.store.sshkeys import normalize_fingerprint, parse_public_key

DATA = Path(__file__).parent / "data"

ADA = ops.Actor("ada@acme.com", "ada")  # admin of acme
BOB = ops.Actor("bob@acme.com", "bob")  # admin of acme and of globex
JOE = ops.Actor("joe@acme.com", "joe")  # member of acme
TIM = ops.Actor("tim@acme.com", "tim")  # viewer of acme
SAM = ops.Actor("sam@freelance.dev", "sam")  # collaborator on acme's joeapp
MIX = ops.Actor("mix@acme.com", "mix")  # member of acme and of globex
PAT = ops.Actor("pat@globex.com", "pat")  # member of globex only
EVE = ops.Actor("eve@evil.example", "eve")  # no team; owns a personal app
LONE = ops.Actor("lone@acme.com")  # an account left in no team


# -- keys made by OpenSSH ----------------------------------------------------------------------


def _keygen(folder: Path, name: str, *args: str, comment: str = "test@host") -> str:
    path = folder / name
    subprocess.run(["ssh-keygen", "-q", "-N", "", "-C", comment, "-f", str(path), *args],
                   check=True, capture_output=True)
    return (folder / f"{name}.pub").read_text()


def _keygen_fingerprint(pub: str, folder: Path) -> str:
    path = folder / "probe.pub"
    path.write_text(pub)
    out = subprocess.run(["ssh-keygen", "-lf", str(path)], check=True, capture_output=True,
                         text=True).stdout
    return out.split()[1]


@pytest.fixture(scope="module")
def keydir(tmp_path_factory) -> Path:
    if shutil.which("ssh-keygen") is None:  # .ci/run installs openssh-client
        pytest.fail("ssh-keygen is missing: install the OpenSSH client (apt-get install openssh-client)")
    return tmp_path_factory.mktemp("keys")


@pytest.fixture(scope="module")
def pubs(keydir) -> dict[str, str]:
    """One public key of each kind the tests use, by name."""
    return {
        "ed25519": _keygen(keydir, "ed", "-t", "ed25519", comment="ada@laptop"),
        "ed25519-b": _keygen(keydir, "ed2", "-t", "ed25519"),
        "ed25519-c": _keygen(keydir, "ed3", "-t", "ed25519"),
        "ecdsa256": _keygen(keydir, "ec256", "-t", "ecdsa", "-b", "256"),
        "ecdsa384": _keygen(keydir, "ec384", "-t", "ecdsa", "-b", "384"),
        "ecdsa521": _keygen(keydir, "ec521", "-t", "ecdsa", "-b", "521"),
        "rsa2048": _keygen(keydir, "rsa", "-t", "rsa", "-b", "2048"),
        "rsa1024": _keygen(keydir, "rsa1k", "-t", "rsa", "-b", "1024"),
    }


# -- the parser ------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["ed25519", "ecdsa256", "ecdsa384", "ecdsa521", "rsa2048"])
def test_accepted_keys_have_the_fingerprint_ssh_keygen_prints(kind, pubs, keydir):
    parsed = parse_public_key(pubs[kind])
    assert parsed.fingerprint == _keygen_fingerprint(pubs[kind], keydir)
    key_type, blob, *_ = pubs[kind].split()
    assert (parsed.key_type, parsed.blob_b64, parsed.public_key) == (key_type, blob, f"{key_type} {blob}")


def test_a_file_with_comment_lines_and_blank_lines_holds_one_key(pubs):
    parsed = parse_public_key(f"# my laptop\n\n{pubs['ed25519']}\n\n")
    assert parsed.comment == "ada@laptop"
    assert parse_public_key(" ".join(pubs["ed25519"].split()[:2])).comment is None


def _dsa_line() -> str:
    # ssh-keygen no longer makes DSA keys; a well-formed ssh-dss blob is enough to be refused.
    def s(b: bytes) -> bytes:
        return len(b).to_bytes(4, "big") + b
    blob = s(b"ssh-dss") + s(b"\x00" + b"\x11" * 128) + s(b"\x22" * 20) + s(b"\x33" * 128) + s(b"\x44" * 128)
    return "ssh-dss " + base64.b64encode(blob).decode() + " old@box"


@pytest.mark.parametrize(
    ("make", "says"),
    [
        (lambda p: _dsa_line(), "DSA keys (ssh-dss) are refused"),
        (lambda p: p["rsa1024"], "RSA keys under 2048 bits are refused"),
        (lambda p: "", "No SSH key given"),
        (lambda p: "hello world", "'hello' is not a key type"),
        (lambda p: "ssh-ed25519", "base64 part is missing"),
        (lambda p: "ssh-ed25519 AAAA!!!!", "base64 part is damaged"),
        (lambda p: p["ed25519"].split()[0] + " " + p["ed25519"].split()[1][:-8], "damaged"),
        (lambda p: "ssh-rsa " + p["ed25519"].split()[1], "the type word and the base64 part disagree"),
        (lambda p: p["ed25519"] + p["ed25519-b"], "Found 2 lines where one SSH key was expected"),
        (lambda p: "-----BEGIN OPENSSH PRIVATE KEY-----\nb3Blbn\n-----END OPENSSH PRIVATE KEY-----",
         "That is a PRIVATE key"),
        (lambda p: "ssh-ed25519-cert-v01@openssh.com AAAA", "an SSH certificate"),
        (lambda p: p["ed25519"].strip() + " bad\x1b[2Jcomment", "control characters"),
        (lambda p: "x" * 20_000, "far too long"),
    ],
)
def test_refused_keys_say_what_is_wrong_in_one_line(make, says, pubs):
    with pytest.raises(Invalid) as caught:
        parse_public_key(make(pubs))
    assert says in str(caught.value)
    assert "\n" not in str(caught.value) and "\x1b" not in str(caught.value)


def test_fingerprints_are_read_with_or_without_their_prefix():
    fp = "SHA256:G78znSr57hL2MFM4gmsBXGTJXm1sRTa3HcLqEbSOUz0"
    assert normalize_fingerprint(fp) == fp
    assert normalize_fingerprint(fp.removeprefix("SHA256:")) == fp
    with pytest.raises(Invalid, match="MD5 fingerprint"):
        normalize_fingerprint("MD5:" + ":".join(["ab"] * 16))
    with pytest.raises(Invalid, match="Invalid key fingerprint"):
        normalize_fingerprint("SHA256:short")


# -- the bind rule, as a pure decision ---------------------------------------------------------


@pytest.mark.parametrize(
    ("actor", "target", "administers", "teams", "personal", "allowed", "rule"),
    [
        ("a@x.io", "a@x.io", set(), set(), (), True, "account:act_for:self"),
        ("a@x.io", "b@x.io", {"acme"}, {"acme"}, (), True, "account:act_for"),
        ("a@x.io", "b@x.io", {"acme", "globex"}, {"acme", "globex"}, (), True, "account:act_for"),
        ("a@x.io", "b@x.io", set(), {"acme"}, (), False, "account:act_for:admin_only"),
        ("a@x.io", "b@x.io", {"acme"}, set(), (), False, "account:act_for:no_team"),
        ("a@x.io", "b@x.io", {"acme"}, {"acme", "globex"}, (), False, "account:act_for:beyond_my_teams"),
        ("a@x.io", "b@x.io", {"acme"}, {"acme"}, ("side",), False, "account:act_for:beyond_my_teams"),
    ],
)
def test_decide_act_for_table(actor, target, administers, teams, personal, allowed, rule):
    d = decide_act_for(actor, target, administers=frozenset(administers),
                       target_teams=frozenset(teams), target_personal_apps=personal)
    assert (d.allowed, d.rule) == (allowed, rule)
    assert d.reason


# -- keys:add and keys:remove through the store ------------------------------------------------


def snapshot(db: Database) -> dict[str, list[tuple]]:
    """Every row of every table but the audit log."""
    out = {}
    with db.engine.connect() as conn:
        for table in SQLModel.metadata.sorted_tables:
            if table.name != "audit_event":
                out[table.name] = [tuple(r) for r in conn.execute(
                    select(table).order_by(*table.primary_key.columns))]
    return out


def events(db: Database) -> list[AuditEvent]:
    with db.read() as s:
        return list(s.scalars(select(AuditEvent).order_by(AuditEvent.id)))


def refused(db: Database, call, error: type[StoreError] = Refused, match: str | None = None,
            action: str = "account.update") -> str:
    """Run ``call``, expect ``error``; check nothing changed but one denied audit event."""
    before, logged = snapshot(db), len(events(db))
    with pytest.raises(error) as caught:
        call()
    message = str(caught.value)
    assert "\n" not in message
    if match is not None:
        assert match in message, message
    assert snapshot(db) == before, "a refused operation changed something"
    after = events(db)
    assert len(after) == logged + 1 and after[-1].outcome == "denied"
    assert after[-1].reason == message and after[-1].action == action
    return message


def key_owners(db: Database) -> dict[str, str]:
    """fingerprint -> email, straight from the table."""
    from teamaccess.store.models import Account

    with db.read() as s:
        return dict(s.execute(select(SshKey.fingerprint, Account.email)
                              .join(Account, Account.id == SshKey.account_id)).all())


@pytest.fixture
def teams(db):
    """acme (ada, bob admins; joe member; tim viewer; mix member; sam collaborator on joeapp),
    globex (bob admin; mix, pat members), eve with a personal app, lone in no team."""
    ops.create_team(db, ADA, "acme")
    for who, role in ((BOB, "admin"), (JOE, "member"), (TIM, "viewer"), (MIX, "member"),
                      (LONE, "member")):
        ops.add_member(db, ADA, "acme", who.email, role)
    ops.remove_member(db, ADA, "acme", LONE.email)
    ops.create_app(db, JOE, "joeapp", "acme")
    ops.grant_access(db, JOE, "joeapp", SAM.email, "deploy")
    ops.create_team(db, BOB, "globex")
    ops.add_member(db, BOB, "globex", MIX.email, "member")
    ops.add_member(db, BOB, "globex", PAT.email, "member")
    ops.create_app(db, EVE, "evesapp")
    return db


@pytest.mark.parametrize(
    ("actor", "target", "allowed", "says"),
    [
        (JOE, None, True, None),  # your own key: always
        (SAM, None, True, None),  # a collaborator's own key too
        (ADA, JOE, True, None),  # admin of every team joe is in
        (ADA, SAM, True, None),  # sam is a collaborator in acme only
        (BOB, MIX, True, None),  # bob administers both of mix's teams
        (ADA, MIX, False, "would also act in globex"),
        (ADA, BOB, False, "would also act in globex"),
        (JOE, TIM, False, "Only a team admin may add a key to another account"),
        (SAM, JOE, False, "Only a team admin"),
        (PAT, MIX, False, "Only a team admin"),
        (ADA, EVE, False, "they are in none of your teams"),
        (ADA, LONE, False, "they are in none of your teams"),
        (BOB, PAT, True, None),
    ],
)
def test_who_may_add_a_key_to_whom(teams, pubs, actor, target, allowed, says):
    pub = pubs["ed25519"]
    account = target.email if target else None
    if allowed:
        change = ops.add_key(teams, actor, pub, account=account)
        owner = account or actor.email
        assert change.email == owner
        assert key_owners(teams) == {change.fingerprint: owner}
        last = events(teams)[-1]
        assert (last.action, last.outcome, last.target_email) == ("account.update", "ok", owner)
        assert last.after == f'{{"ssh_key": "{change.fingerprint}"}}'
        assert queries.account_for_key(teams, change.fingerprint) == owner
    else:
        refused(teams, lambda: ops.add_key(teams, actor, pub, account=account), match=says)
        assert key_owners(teams) == {}


def test_adding_a_known_key_names_its_owner_only_to_who_may_see_it(teams, pubs):
    fp = ops.add_key(teams, JOE, pubs["ed25519"]).fingerprint
    refused(teams, lambda: ops.add_key(teams, JOE, pubs["ed25519"]), match="is already on joe@acme.com")
    # ada administers joe's only team, so she may know whose key it is
    said = refused(teams, lambda: ops.add_key(teams, ADA, pubs["ed25519"]),
                   match="already belongs to joe@acme.com")
    assert fp in said
    # pat (globex) has nothing to do with joe: told only that it is taken
    said = refused(teams, lambda: ops.add_key(teams, PAT, pubs["ed25519"]),
                   match="already belongs to another account")
    assert "joe" not in said
    assert key_owners(teams) == {fp: JOE.email}


def test_a_key_for_someone_unknown_is_not_found(teams, pubs):
    refused(teams, lambda: ops.add_key(teams, ADA, pubs["ed25519"], account="nobody@acme.com"),
            NotFound, match="No account nobody@acme.com")
    refused(teams, lambda: ops.add_key(teams, ops.Actor("new@acme.com"), pubs["ed25519"]),
            NotFound, match="No account new@acme.com")
    refused(teams, lambda: ops.add_key(teams, ADA, "ssh-dss AAAA"), Invalid, match="DSA")


def test_removing_your_own_key_always_and_another_s_by_the_same_rule(teams, pubs):
    mine = ops.add_key(teams, MIX, pubs["ed25519"]).fingerprint
    joes = ops.add_key(teams, ADA, pubs["ed25519-b"], account=JOE.email).fingerprint
    # ada may not manage mix's keys (globex), and is told no more than a stranger
    said = refused(teams, lambda: ops.remove_key(teams, ADA, mine), NotFound, match="No key")
    assert "mix" not in said
    refused(teams, lambda: ops.remove_key(teams, TIM, joes), NotFound, match="No key")
    refused(teams, lambda: ops.remove_key(teams, JOE, "SHA256:" + "A" * 43), NotFound)
    refused(teams, lambda: ops.remove_key(teams, JOE, "not a fingerprint"), Invalid)
    change = ops.remove_key(teams, ADA, joes.removeprefix("SHA256:"))
    assert (change.email, change.fingerprint) == (JOE.email, joes)
    last = events(teams)[-1]
    assert (last.outcome, last.target_email, last.before) == ("ok", JOE.email, f'{{"ssh_key": "{joes}"}}')
    ops.remove_key(teams, MIX, mine)
    assert key_owners(teams) == {}


def test_listing_keys_yours_or_by_the_rule(teams, pubs):
    ops.add_key(teams, JOE, pubs["ed25519"])
    ops.add_key(teams, JOE, pubs["ecdsa256"])
    rows = queries.keys(teams, JOE.email)
    assert [r.key_type for r in rows] == ["ssh-ed25519", "ecdsa-sha2-nistp256"]
    assert rows[0].comment == "ada@laptop" and rows[0].created_by == JOE.email
    assert queries.keys(teams, ADA.email, JOE.email) == rows
    assert queries.keys(teams, ADA.email) == []
    with pytest.raises(Refused, match="Only a team admin"):
        queries.keys(teams, TIM.email, JOE.email)
    with pytest.raises(Refused):
        queries.keys(teams, ADA.email, "nobody@acme.com")


def test_a_served_session_s_events_record_its_key_and_peer(teams, pubs):
    fp = ops.add_key(teams, JOE, pubs["ed25519"]).fingerprint
    served = ops.Actor(JOE.email, None, key_fingerprint=fp, peer="127.0.0.1:53412")
    ops.create_app(teams, served, "servedapp", "acme")
    refused(teams, lambda: ops.rename_team(teams, served, "acme", "acme2"), action="team.update")
    ok, denied = events(teams)[-2:]
    for event in (ok, denied):
        assert (event.actor_email, event.actor_login, event.actor_key, event.actor_peer) == (
            JOE.email, None, fp, "127.0.0.1:53412")
    local = events(teams)[-3]
    assert (local.actor_login, local.actor_key, local.actor_peer) == ("joe", None, None)
    rows = queries.audit(teams, ADA.email, "acme", limit=2)
    assert [(r.actor_key, r.actor_peer) for r in rows] == [(fp, "127.0.0.1:53412")] * 2


def test_account_for_key_is_one_indexed_lookup(teams, pubs):
    assert queries.account_for_key(teams, "SHA256:" + "B" * 43) is None
    conn = sqlite3.connect(teams.path)
    plan = " ".join(row[-1] for row in conn.execute(
        "EXPLAIN QUERY PLAN SELECT account.email FROM account JOIN ssh_key "
        "ON ssh_key.account_id = account.id WHERE ssh_key.fingerprint = 'x'"))
    conn.close()
    assert "USING INDEX" in plan and "ssh_key" in plan, plan


# -- schema 2: upgrading version-1 databases ---------------------------------------------------

_V1_ROWS = (
    "INSERT INTO account (id, email, mfa_enabled, created_at) VALUES "
    "(1, 'ada@acme.com', true, '2026-01-01 00:00:00'), (2, 'joe@acme.com', false, '2026-01-01 00:00:00')",
    "INSERT INTO team (id, name, created_at) VALUES (1, 'acme', '2026-01-01 00:00:00')",
    "INSERT INTO membership (id, team_id, account_id, role, created_at) VALUES "
    "(1, 1, 1, 'admin', '2026-01-01 00:00:00'), (2, 1, 2, 'member', '2026-01-01 00:00:00')",
    "INSERT INTO audit_event (id, at, actor_email, actor_login, action, team_id, team_name, "
    "target_email, after, outcome) VALUES (1, '2026-01-01 00:00:00', 'ada@acme.com', 'ada', "
    "'team_membership.create', 1, 'acme', 'joe@acme.com', '{\"role\": \"member\"}', 'ok')",
)


def _v1_sqlite(path: Path, extra: str = "") -> None:
    conn = sqlite3.connect(path)
    conn.executescript((DATA / "schema_v1.sqlite.sql").read_text() + ";\n".join(_V1_ROWS) + ";" + extra)
    conn.close()


def _v1_postgres(url: str) -> None:
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql((DATA / "schema_v1.postgresql.sql").read_text())
        for stmt in _V1_ROWS:
            conn.exec_driver_sql(stmt)
        conn.exec_driver_sql("SELECT setval('account_id_seq', 2)")
        conn.exec_driver_sql("SELECT setval('audit_event_id_seq', 1)")
        conn.exec_driver_sql("SELECT setval('membership_id_seq', 2)")
    engine.dispose()


def _check_upgraded(db: Database, pubs) -> None:
    with db.read() as s:
        assert s.execute(text("SELECT value FROM meta WHERE key = 'schema_version'")).scalar() == str(SCHEMA_VERSION)
    assert [r.email for r in queries.roster(db, ADA.email, "acme")] == [ADA.email, JOE.email]
    old = queries.audit(db, ADA.email, "acme")
    assert [(r.actor_login, r.actor_key, r.actor_peer, r.after) for r in old] == [
        ("ada", None, None, {"role": "member"})]
    served = ops.Actor(ADA.email, key_fingerprint="SHA256:" + "C" * 43, peer="[::1]:2222")
    fp = ops.add_key(db, served, pubs["ed25519-c"], account=JOE.email).fingerprint
    assert queries.account_for_key(db, fp) == JOE.email
    assert queries.audit(db, ADA.email, "acme")[0].actor_peer == "[::1]:2222"
    with pytest.raises(DatabaseProblem, match="append-only"):  # the trigger survived
        db.write(lambda s: s.execute(text("DELETE FROM audit_event")))


def test_a_version_1_sqlite_file_is_upgraded_in_place(tmp_path, pubs):
    path = tmp_path / "v1.db"
    _v1_sqlite(path)
    db = Database(path)
    try:
        _check_upgraded(db, pubs)
    finally:
        db.close()
    db = Database(path)  # a second open finds version 2 and changes nothing
    db.close()


@pytest.mark.postgres
def test_a_version_1_postgresql_database_is_upgraded_in_place(pg_url, pubs):
    import postgres_server

    url, schema = postgres_server.fresh_schema_url(pg_url)
    try:
        _v1_postgres(url)
        db = Database(url)
        try:
            _check_upgraded(db, pubs)
        finally:
            db.close()
    finally:
        postgres_server.drop_schema(pg_url, schema)


def test_an_upgrade_that_fails_leaves_the_version_1_file_as_it_was(tmp_path):
    path = tmp_path / "v1.db"
    # A table in the way of the upgrade's: the upgrade fails part way through.
    _v1_sqlite(path, "CREATE TABLE ssh_key (x INTEGER);")
    with pytest.raises(DatabaseProblem) as caught:
        Database(path)
    assert "\n" not in str(caught.value)
    conn = sqlite3.connect(path)
    columns = [row[1] for row in conn.execute("PRAGMA table_info(audit_event)")]
    version = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0]
    conn.close()
    assert "actor_key" not in columns and version == "1"


def test_an_import_over_ssh_records_the_key_and_peer_on_each_event(tmp_path, demo_db):
    from teamaccess.store import portable

    doc = portable.export_team(demo_db, "ada@acme.com", "acme-widgets")
    db = Database(tmp_path / "fresh.db")
    try:
        served = ops.Actor("ada@acme.com", key_fingerprint="SHA256:" + "D" * 43, peer="10.0.0.9:6000")
        portable.import_team(db, served, doc)
        logged = events(db)
        assert len(logged) > 10
        assert {(e.actor_key, e.actor_peer) for e in logged} == {("SHA256:" + "D" * 43, "10.0.0.9:6000")}
    finally:
        db.close()


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_first_opens_of_a_version_1_database_at_once_upgrade_it_once(backend, tmp_path, request):
    import threading

    import postgres_server

    if backend == "sqlite":
        where = str(tmp_path / "v1.db")
        _v1_sqlite(Path(where))
    else:
        pg_url = request.getfixturevalue("pg_url")
        where, schema = postgres_server.fresh_schema_url(pg_url)
        _v1_postgres(where)
    start = threading.Barrier(4)
    outcomes: list[object] = []

    def open_it() -> None:
        start.wait()
        try:
            Database(where).close()
            outcomes.append("ok")
        except Exception as err:  # noqa: BLE001 - shown by the assertion
            outcomes.append(err)

    threads = [threading.Thread(target=open_it) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    try:
        assert outcomes == ["ok"] * 4
        db = Database(where)
        with db.read() as s:
            assert s.execute(text("SELECT value FROM meta WHERE key = 'schema_version'")).scalar() == str(SCHEMA_VERSION)
            assert s.execute(text("SELECT count(*) FROM ssh_key")).scalar() == 0
            assert s.execute(text("SELECT count(actor_key) FROM audit_event")).scalar() == 0
        db.close()
    finally:
        if backend == "postgres":
            postgres_server.drop_schema(pg_url, schema)


_TEAMS = st.frozensets(st.sampled_from(["acme", "globex", "initech", "umbrella"]), max_size=4)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(["a@x.io", "b@x.io"]), _TEAMS, _TEAMS,
       st.lists(st.sampled_from(["side", "blog"]), max_size=2, unique=True))
def test_decide_act_for_agrees_with_a_naive_reading_of_the_spec(target, administers, teams, personal):
    """SPEC: "only an admin of every team that account is in" (and your own keys, always)."""
    naive = target == "a@x.io" or (
        bool(administers) and bool(teams) and teams <= administers and not personal)
    decision = decide_act_for("a@x.io", target, administers=administers, target_teams=teams,
                              target_personal_apps=tuple(personal))
    assert decision.allowed == naive
