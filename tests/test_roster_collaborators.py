"""The roster and `members` count collaborators among the team's users (SPEC "Words")."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from teamaccess.store import ops, queries
from teamaccess.store.errors import Invalid
from teamaccess.tui.cli import cli

TEAM = "acme-widgets"
ADA = "ada@acme.com"
COLLABORATORS = {
    "audit@ledger-firm.com": ("billing-service",),
    "li@partner.co": ("api-staging",),
    "ops@oncall-agency.io": ("api-prod", "website-prod"),
    "sam@freelance.dev": ("marketing-site", "website-staging"),
}


def test_roster_lists_collaborators_with_role_mfa_and_apps(demo):
    rows = queries.roster(demo, ADA, TEAM)
    assert [r.email for r in rows] == sorted(r.email for r in rows)
    found = {r.email: r for r in rows if r.role == "collaborator"}
    assert {e: r.apps for e, r in found.items()} == COLLABORATORS
    assert found["sam@freelance.dev"].mfa is False and found["li@partner.co"].mfa is True
    assert all(r.apps == () for r in rows if r.role != "collaborator")


def test_roster_filters_and_first_page_include_collaborators(demo):
    full = queries.roster(demo, ADA, TEAM)
    for n in (1, 3, 10, 22, 40):
        assert queries.roster(demo, ADA, TEAM, limit=n) == full[:n]
    only = queries.roster(demo, ADA, TEAM, role="collaborator")
    assert [r.email for r in only] == sorted(COLLABORATORS)
    no_mfa = queries.roster(demo, ADA, TEAM, no_mfa_only=True)
    assert {"sam@freelance.dev", "ops@oncall-agency.io"} <= {r.email for r in no_mfa}
    assert all(not r.mfa for r in no_mfa)
    assert [r.email for r in queries.roster(demo, ADA, TEAM, text="partner")] == ["li@partner.co"]
    assert {r.role for r in queries.roster(demo, ADA, TEAM, text="collab")} == {"collaborator"}
    with pytest.raises(Invalid, match="collaborator"):
        queries.roster(demo, ADA, TEAM, role="owner")


def test_a_removed_user_with_grants_stays_as_a_collaborator_and_one_without_goes(demo):
    ada = ops.Actor(ADA)
    ops.remove_member(demo, ada, TEAM, "john@acme.com")  # holds a grant on website-prod
    ops.remove_member(demo, ada, TEAM, "vint@acme.com")  # holds none
    rows = {r.email: r for r in queries.roster(demo, ADA, TEAM)}
    assert rows["john@acme.com"].role == "collaborator"
    assert rows["john@acme.com"].apps == ("website-prod",)
    assert "vint@acme.com" not in rows


def test_members_cli_lists_collaborators_and_filters_by_role(demo):
    def run(*args: str) -> str:
        result = CliRunner().invoke(cli, [*args, "--db", str(demo.path), "--as", ADA])
        assert result.exit_code == 0, result.output
        return result.stdout

    table = run("members", "--team", TEAM).splitlines()
    assert table[0].split() == ["Email", "Role", "MFA", "Apps"]
    line = next(x for x in table if x.startswith("ops@oncall-agency.io"))
    assert line.split() == ["ops@oncall-agency.io", "collaborator", "disabled", "api-prod,",
                            "website-prod"]
    listed = json.loads(run("members", "--team", TEAM, "--role", "collaborator", "--json"))
    assert [m["email"] for m in listed] == sorted(COLLABORATORS)
    assert {m["role"] for m in listed} == {"collaborator"}
    assert listed[0]["apps"] == [{"name": "billing-service"}]
    admins = json.loads(run("members", "--team", TEAM, "--role", "admin", "--json"))
    assert all("apps" not in m for m in admins)
