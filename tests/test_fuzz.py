"""Bad input, fuzzed: every operation and the import reject malformed, oversized, control-laden
or markup-laden values with a one-line message and change nothing but the audit log.

Hypothesis feeds each field of each operation (and whole import documents) with hostile text;
whatever it tries, the outcome is either a success that stored only well-formed values, or a
StoreError whose message is one clean line, with nothing changed bar one denied audit event.
"""

from __future__ import annotations

import re
from datetime import datetime

import pytest
from conftest import _check_invariants, _state
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from teamaccess.store import ops, portable, queries, validate
from teamaccess.store.db import Database
from teamaccess.store.demo import DEMO_ADMIN, DEMO_TEAM
from teamaccess.store.errors import MAX_MESSAGE, Invalid, StoreError
from teamaccess.store.models import Account, App, AuditEvent, Team

ADA = ops.Actor(DEMO_ADMIN, "ada")
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
MARKUP = re.compile(r"\[/?[a-z#@][^\]]*\]", re.IGNORECASE)

FUZZ = settings(
    max_examples=100,
    deadline=None,
    # One database per test, reused across examples on purpose: each example checks what it
    # changed against the state it started from.
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    derandomize=True,  # CI must be repeatable; a failing input is printed whole
)

HOSTILE = [
    "", " ", "\t", "[bold]x[/bold]", "[link=https://evil.example]click[/link]", "[/]",
    "\x1b[31mred\x1b[0m", "\x1b]0;owned\x07", "\x1b[2J", "a\nb", "a\rb", "nul\x00byte", "\x7f",
    "\x9b31m", "\u202eevil", "line\u2028break", "x" * 31, "x" * 300, "y" * 5000,
    "joe@acme.com\n", "joe@acme.com\x1b[2J", "[red]joe@acme.com", "joe@acme.com[/]", "joe@acme",
    "@acme.com", "joe@@acme.com", "joe@acme.c", "joe @acme.com", "jo\u00e9@acme.com",
    "a" * 250 + "@acme.com", "admin", "ADMIN", " member ", "owner", "root", "view,deploy",
    "deploy,,manage", "manage;drop table grant", "-rf", "--team", "a-", "9lives", "ab", "Ab-c",
]

VALID = {
    "email": ["joe@acme.com", "new.person+tag@acme.co", "grace@acme.com", "sam@freelance.dev"],
    "team": [DEMO_TEAM, "new-team"],
    "app": ["test", "api-prod", "docs-site", "brand-new-app"],
    "role": ["admin", "member", "viewer"],
    "perms": ["deploy", "deploy,operate", "view,manage", ""],
    "login": ["joe", "a.b-c_d"],
}


def _values(kind: str) -> st.SearchStrategy[str]:
    return st.one_of(
        st.sampled_from(VALID[kind]),
        st.sampled_from(HOSTILE),
        st.text(max_size=40),
        st.text(st.characters(max_codepoint=0x9F), max_size=12),
        st.builds(lambda good, bad, at: good[:at] + bad + good[at:],
                  st.sampled_from(VALID[kind]), st.sampled_from(HOSTILE), st.integers(0, 30)),
    )


OPERATIONS = {
    "members:add": (("team", "email", "role"), ops.add_member),
    "members:set": (("team", "email", "role"), ops.set_role),
    "members:remove": (("team", "email"), ops.remove_member),
    "access:add": (("app", "email", "perms"), ops.grant_access),
    "access:update": (("app", "email", "perms"), ops.update_access),
    "access:remove": (("app", "email"), ops.revoke_access),
    "apps:create": (("app", "team"), ops.create_app),
    "apps:lock": (("app",), ops.lock_app),
    "apps:destroy": (("app",), ops.destroy_app),
    "apps:transfer": (("app", "email"), ops.transfer_app),
    "teams:create": (("team",), ops.create_team),
    "teams:rename": (("team", "team"), ops.rename_team),
    "collaborator": (("team", "email", "app"), ops.add_collaborator),
    "accounts:bind": (("login", "email"), ops.bind_login),
}


@st.composite
def operations(draw):
    name = draw(st.sampled_from(sorted(OPERATIONS)))
    kinds, call = OPERATIONS[name]
    args = [draw(_values(kind)) for kind in kinds]
    actor = draw(st.one_of(st.just(DEMO_ADMIN), _values("email")))
    return name, call, actor, args


@pytest.fixture
def fuzz_db(any_demo_db):
    """The demo team on each backend: PostgreSQL is stricter about text (NUL) than SQLite."""
    return any_demo_db


def _assert_clean_message(err: StoreError) -> None:
    message = str(err)
    assert message.strip(), "an error without a message"
    assert not CONTROL.search(message), repr(message)
    assert len(message) <= MAX_MESSAGE


def _assert_stored_values_are_well_formed(db: Database) -> None:
    with db.read() as s:
        for a in s.scalars(select(Account)):
            assert validate.email(a.email) == a.email, a.email
            assert a.name is None or not CONTROL.search(a.name), a.name
            assert a.os_login is None or validate.login(a.os_login) == a.os_login
        for t in s.scalars(select(Team)):
            assert validate.team_name(t.name) == t.name
        for app in s.scalars(select(App)):
            assert validate.app_name(app.name) == app.name


def _last_event(db: Database) -> AuditEvent:
    with db.read() as s:
        return s.scalars(select(AuditEvent).order_by(AuditEvent.id.desc())).first()


def _check_outcome(db: Database, attempt) -> str:
    """Run ``attempt``; check a failure changed nothing but one denied event. 'ok' or the kind."""
    before, events = _state(db), queries.audit_count(db)
    try:
        result = attempt()
    except StoreError as err:
        _assert_clean_message(err)
        assert _state(db) == before, "a refused operation changed something"
        assert queries.audit_count(db) == events + 1
        last = _last_event(db)
        assert (last.outcome, last.reason) == ("denied", str(err))
        return type(err).__name__
    # An import logs each change it makes as its own event (none when it changed nothing).
    expected = result.changes if isinstance(result, portable.ImportResult) else 1
    assert queries.audit_count(db) == events + expected
    if expected:
        assert _last_event(db).outcome == "ok"
    return "ok"


@FUZZ
@given(op=operations())
def test_fuzzed_operations_refuse_cleanly_or_store_only_well_formed_values(fuzz_db, op):
    name, call, actor, args = op
    _check_outcome(fuzz_db, lambda: call(fuzz_db, ops.Actor(actor, "fuzz"), *args))
    _assert_stored_values_are_well_formed(fuzz_db)
    _check_invariants(fuzz_db)


@pytest.mark.parametrize("field,bad", [
    ("email", "joe@acme.com\x1b[2J"), ("email", "[bold]joe@acme.com"), ("email", "a" * 250 + "@acme.com"),
    ("email", "joe@acme.com\nrm -rf"), ("role", "owner"), ("role", "[red]admin"),
    ("team", "acme-widgets\x00"), ("team", "x" * 31),
])
def test_each_kind_of_bad_input_is_named_in_the_message(fuzz_db, field, bad):
    args = {"team": DEMO_TEAM, "email": "new@acme.com", "role": "member"} | {field: bad}
    before = _state(fuzz_db)
    with pytest.raises(Invalid) as caught:
        ops.add_member(fuzz_db, ADA, args["team"], args["email"], args["role"])
    message = str(caught.value)
    assert message.startswith(f"Invalid {field}"), message
    assert not CONTROL.search(message)
    assert _state(fuzz_db) == before


# -- the import ----------------------------------------------------------------------------------

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=15,
)

TIMES = st.one_of(
    st.none(), st.sampled_from([
        "2024-06-03T14:30:00Z", "2024-06-03", "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00",
        "yesterday", "2024-13-45T00:00:00Z", "",
    ]),
    st.datetimes().map(datetime.isoformat), JSON,
)


def _maybe(kind: str) -> st.SearchStrategy:
    return st.one_of(_values(kind), JSON)


@st.composite
def documents(draw):
    """Import documents shaped like the real thing, with hostile values anywhere."""
    members = draw(st.lists(st.fixed_dictionaries(
        {"email": _maybe("email"), "role": _maybe("role")},
        optional={"two_factor_authentication": st.one_of(st.booleans(), JSON),
                  "user": st.fixed_dictionaries({}, optional={"name": st.one_of(
                      st.sampled_from(HOSTILE), st.text(max_size=130), JSON)}),
                  "created_at": TIMES},
    ), max_size=4))
    apps = draw(st.lists(st.fixed_dictionaries(
        {"name": _maybe("app")}, optional={"locked": st.one_of(st.booleans(), JSON), "locked_at": TIMES},
    ), max_size=3))
    access = draw(st.dictionaries(
        st.one_of(st.sampled_from(VALID["app"]), st.sampled_from(HOSTILE), st.text(max_size=10)),
        st.lists(st.fixed_dictionaries(
            {"email": _maybe("email")},
            optional={"permissions": st.one_of(
                st.lists(st.one_of(st.sampled_from(["view", "deploy", "operate", "manage"]),
                                   st.sampled_from(HOSTILE), JSON), max_size=4), JSON)},
        ), max_size=3),
        max_size=2,
    ))
    doc = {"team": draw(st.one_of(_values("team"), JSON)), "members": members, "apps": apps,
           "access": access}
    for key in draw(st.sets(st.sampled_from(sorted(doc)), max_size=2)):
        doc[key] = draw(JSON)  # a field of the wrong shape altogether
    return doc


def _good_document() -> dict:
    return {
        "team": "imported",
        "members": [
            {"email": DEMO_ADMIN, "role": "admin", "created_at": "2024-01-08T09:00:00Z"},
            {"email": "newbie@acme.com", "role": "member", "two_factor_authentication": True,
             "user": {"name": "New Person"}},
        ],
        "apps": [{"name": "imported-app", "locked": True, "locked_at": "2024-06-03T14:30:00Z"}],
        "access": {"imported-app": [{"email": "helper@vendor.io", "permissions": ["view", "deploy"]}]},
    }


#: Where one hostile value goes in an otherwise good document, so that it gets past the checks
#: of everything else and reaches the deepest code.
_SPOTS = [
    ("team",), ("members", 0, "email"), ("members", 1, "role"), ("members", 0, "created_at"),
    ("members", 1, "user", "name"), ("members", 1, "two_factor_authentication"),
    ("apps", 0, "name"), ("apps", 0, "locked"), ("apps", 0, "locked_at"),
    ("access", "imported-app", 0, "email"), ("access", "imported-app", 0, "permissions"),
    ("access", "imported-app", 0, "permissions", 1),
]


@st.composite
def nearly_good_documents(draw):
    doc = _good_document()
    spot = draw(st.sampled_from(_SPOTS))
    value = draw(st.one_of(st.sampled_from(HOSTILE), TIMES, JSON, st.text(max_size=30)))
    target = doc
    for key in spot[:-1]:
        target = target[key]
    target[spot[-1]] = value
    return doc


def test_a_good_document_imports(fuzz_db):
    assert _check_outcome(fuzz_db, lambda: portable.import_team(fuzz_db, ADA, _good_document())) == "ok"


@pytest.mark.parametrize("when", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"])
def test_a_time_that_does_not_fit_in_utc_is_invalid(fuzz_db, when):
    doc = _good_document()
    doc["members"][0]["created_at"] = when
    with pytest.raises(Invalid, match=r"^members\[0\]\.created_at: expected an ISO 8601 time"):
        portable.import_team(fuzz_db, ADA, doc)


@FUZZ
@given(doc=st.one_of(nearly_good_documents(), documents(), JSON))
def test_fuzzed_imports_are_all_or_nothing_with_a_clean_message(fuzz_db, doc):
    _check_outcome(fuzz_db, lambda: portable.import_team(fuzz_db, ADA, doc))
    _assert_stored_values_are_well_formed(fuzz_db)
    _check_invariants(fuzz_db)


@pytest.mark.parametrize("name", ["\x1b[2Jwiped", "Ada\nLovelace", "[bold red]Boss[/]", "x" * 121])
def test_an_imported_name_with_control_characters_markup_or_too_long_is_refused(fuzz_db, name):
    doc = {"team": "imported", "members": [
        {"email": DEMO_ADMIN, "role": "admin"},
        {"email": "newbie@acme.com", "role": "member", "user": {"name": name}},
    ]}
    before = _state(fuzz_db)
    with pytest.raises(Invalid, match=r"^members\[1\]\.user\.name: "):
        portable.import_team(fuzz_db, ADA, doc)
    assert _state(fuzz_db) == before
