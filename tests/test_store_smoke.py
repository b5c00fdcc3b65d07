"""A first pass over the store: the demo builds, the core rules hold end to end."""

import pytest
from teamaccess.store import ops, queries
from teamaccess.store.errors import LastAdminRefused, Refused

ADA = ops.Actor("ada@acme.com", "ada")


def test_demo_roster_has_every_role(demo_db):
    roles = {r.role for r in queries.roster(demo_db, "ada@acme.com", "acme-widgets")}
    assert roles == {"admin", "member", "viewer", "collaborator"}


def test_lock_twice_is_refused_with_the_seed_message(demo_db):
    ops.lock_app(demo_db, ADA, "test")
    before = queries.audit_count(demo_db)
    with pytest.raises(Refused, match=r"^cannot lock test\. This app is already locked\.$"):
        ops.lock_app(demo_db, ADA, "test")
    assert queries.audit_count(demo_db) == before + 1
    assert [a.locked for a in queries.apps(demo_db, "ada@acme.com", "acme-widgets") if a.name == "test"] == [True]


def test_last_admin_cannot_be_demoted(db):
    ops.create_team(db, ops.Actor("solo@acme.com"), "solo-team")
    with pytest.raises(LastAdminRefused):
        ops.set_role(db, ops.Actor("solo@acme.com"), "solo-team", "solo@acme.com", "member")
    assert [r.role for r in queries.roster(db, "solo@acme.com", "solo-team")] == ["admin"]
