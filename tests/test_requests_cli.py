"""access:request, access:requests, access:approve and access:deny through the real command line
(click's CliRunner), as transcripts: two people on one demo database, one asks, another decides.

The store's clock is pinned (``models.utcnow``, which every Database opened afterwards reads), so
ages and ends print the same every run.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from click.testing import CliRunner
from conftest import Clock, data, failed, progress
from teamaccess.store import models, queries
from teamaccess.store.db import Database
from teamaccess.store.demo import build_demo
from teamaccess.tui.cli import cli

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
def clock(monkeypatch):
    pinned = Clock(START)
    monkeypatch.setattr(models, "utcnow", pinned)
    return pinned


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    for var in ("TEAMACCESS_DB", "TEAMACCESS_AS", "TEAMACCESS_TEAM", "TEAMACCESS_APP"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def demo(tmp_path, clock):
    database = Database(tmp_path / "demo.db")
    build_demo(database)
    yield database
    database.close()


def run(db: Database, *args: str, who: str = "ada@acme.com", env: dict[str, str] | None = None):
    return CliRunner().invoke(cli, [*args, "--db", str(db.path), "--as", who], env=env,
                              prog_name="teamaccess")


def test_one_asks_another_approves(demo, clock):
    assert progress(run(demo, "access:request", "--app", "api-staging", "--permissions", "deploy",
                        "--expires-in", "8h", "--reason", "on call tonight", who="joe@acme.com")) \
        == "Requesting deploy on api-staging... done, request 1\n"
    clock.now = START + timedelta(minutes=5)
    assert data(run(demo, "access:requests")) == (
        "ID  App          Requester     Permissions  Expires in  Status                     Age  Reason\n"
        "──  ───────────  ────────────  ───────────  ──────────  ─────────────────────────  ───  ───────────────\n"
        "1   api-staging  joe@acme.com  deploy       8h          pending (yours to decide)  5m   on call tonight\n"
    )
    assert progress(run(demo, "access:approve", "1")) == (
        "Approving request 1: deploy on api-staging for joe@acme.com until 2026-03-02 17:05:00 UTC... done\n"
    )
    mine = json.loads(data(run(demo, "access:requests", "--json", who="joe@acme.com")))
    assert mine == [{
        "id": 1, "app": "api-staging", "team": "acme-widgets", "requester": "joe@acme.com",
        "permissions": ["view", "deploy"], "reason": "on call tonight", "status": "approved",
        "created_at": "2026-03-02T09:00:00Z", "expires_in": 28800, "decided_by": "ada@acme.com",
        "decided_at": "2026-03-02T09:05:00Z", "decision_reason": None, "may_decide": False,
    }]
    # The requester sees the grant.
    joe = [line for line in data(run(demo, "access", "--app", "api-staging", who="joe@acme.com"))
           .splitlines() if line.startswith("joe@acme.com")]
    assert len(joe) == 1 and "deploy, view" in joe[0]
    # The same approval twice is refused, by anyone, and names who decided.
    assert failed(run(demo, "access:approve", "1", who="grace@acme.com")) == \
        "Error: Request 1 was already approved by ada@acme.com: a request is decided once."
    assert failed(run(demo, "access:deny", "1")) == \
        "Error: Request 1 was already approved by ada@acme.com: a request is decided once."


def test_deny_with_a_reason(demo):
    progress(run(demo, "access:request", "-a", "api-staging", "-p", "deploy,operate", "-r", "x",
                 who="alan@acme.com"))
    assert progress(run(demo, "access:deny", "1", "--reason", "not this week", who="grace@acme.com")) \
        == "Denying request 1: deploy, operate on api-staging for alan@acme.com... done\n"
    (row,) = json.loads(data(run(demo, "access:requests", "--json", who="alan@acme.com")))
    assert (row["status"], row["decided_by"], row["decision_reason"]) == \
        ("denied", "grace@acme.com", "not this week")


def test_teamaccess_app_stands_in_for_app(demo):
    assert progress(run(demo, "access:request", "-p", "operate", "--reason", "restarts",
                        who="joe@acme.com", env={"TEAMACCESS_APP": "api-staging"})) == \
        "Requesting operate on api-staging... done, request 1\n"


def test_requester_may_not_approve(demo):
    progress(run(demo, "access:request", "-a", "api-staging", "-p", "deploy", "-r", "x",
                 who="joe@acme.com"))
    assert failed(run(demo, "access:approve", "1", who="joe@acme.com")) == (
        "Error: You can't approve your own request 1: another team admin or manage holder of "
        "api-staging must decide it.")


@pytest.mark.parametrize("given", ["abc", "0", "#3", "1.5", "99999999999", "", "\uff12", "\u0662"])
def test_a_bad_id_says_to_list_requests(demo, given):
    line = failed(run(demo, "access:approve", given))
    assert "access:requests" in line


def test_unknown_and_invisible_requests_read_alike(demo):
    progress(run(demo, "access:request", "-a", "api-staging", "-p", "deploy", "-r", "x",
                 who="joe@acme.com"))
    unknown = failed(run(demo, "access:deny", "7"))
    unseen = failed(run(demo, "access:deny", "1", who="ops@oncall-agency.io"))
    assert unknown == ("Error: No request 7 among the requests you can see: run "
                       "'teamaccess access:requests' to list them.")
    assert unseen == unknown.replace("request 7", "request 1")


def test_refusals_are_one_line(demo):
    assert failed(run(demo, "access:request", "-a", "api-staging", "-p", "deploy", "-r", "x")) == (
        "Error: You already have every permission on api-staging as a team admin of acme-widgets: "
        "there is nothing to request.")
    assert failed(run(demo, "access:request", "-a", "api-staging", "-p", "deploy", "-r", "x",
                      "--expires-in", "91d", who="joe@acme.com")) == (
        "Error: Invalid duration '91d': the longest is 90d; ask again when it runs out.")
    assert failed(run(demo, "access:request", "-a", "api-staging", "-p", "sudo", "-r", "x",
                      who="joe@acme.com")).startswith("Error: Invalid permission 'sudo'")
    assert failed(run(demo, "access:request", "-a", "secret-app", "-p", "deploy", "-r", "x",
                      who="joe@acme.com")) == (
        "Error: Couldn't find that app: secret-app. Run 'teamaccess apps' to list yours.")
    # Usage errors: exit 2.
    assert "--reason" in failed(run(demo, "access:request", "-a", "api-staging", "-p", "deploy",
                                    who="joe@acme.com"), 2)
    assert "not both" in failed(run(demo, "access:requests", "--app", "api-staging", "--team",
                                    "acme-widgets"), 2)
    assert queries.access_requests(demo, "ada@acme.com") == []


def test_a_reason_is_shown_as_text(demo):
    reason = "[bold red]urgent[/] " + "z" * 60
    progress(run(demo, "access:request", "-a", "api-staging", "-p", "deploy", "-r", reason,
                 who="joe@acme.com"))
    out = data(run(demo, "access:requests"))
    assert "[bold red]urgent[/] zzz" in out and "\x1b" not in out
    assert "z" * 60 not in out  # cut in the table
    assert json.loads(data(run(demo, "access:requests", "--json")))[0]["reason"] == reason


def test_nothing_to_list(demo):
    assert data(run(demo, "access:requests")) == "No access requests.\n"
    assert data(run(demo, "access:requests", "--pending")) == "No pending access requests.\n"
    assert data(run(demo, "access:requests", "--json")) == "[]\n"


def test_help_texts(demo):
    for command in ("access:request", "access:requests", "access:approve", "access:deny"):
        out = CliRunner().invoke(cli, [command, "--help"]).stdout
        assert "Usage: " in out and command in out
    assert "7 days" in CliRunner().invoke(cli, ["access:request", "--help"]).stdout


def test_approve_permanent_grants_it_with_no_end_and_not_with_an_end_too(demo):
    progress(run(demo, "access:request", "-a", "api-staging", "-p", "deploy", "--expires-in", "8h",
                 "-r", "joins the team for good", who="joe@acme.com"))
    assert failed(run(demo, "access:approve", "1", "--permanent", "--expires-in", "2h")) \
        == "Error: Give either --expires-in or --permanent, not both."
    (row,) = json.loads(data(run(demo, "access:requests", "--json", who="joe@acme.com")))
    assert row["status"] == "pending"  # the refusal changed nothing
    assert progress(run(demo, "access:approve", "1", "--permanent")) == (
        "Approving request 1: deploy on api-staging for joe@acme.com... done\n"
    )
    listed = json.loads(data(run(demo, "access", "--app", "api-staging", "--json", who="joe@acme.com")))
    (joe,) = [a for a in listed if a["user"]["email"] == "joe@acme.com"]
    assert joe["expires_at"] is None and {"name": "deploy"} in joe["permissions"]


def test_a_requester_withdraws_their_request(demo):
    progress(run(demo, "access:request", "-a", "api-staging", "-p", "deploy", "-r", "oops",
                 who="joe@acme.com"))
    assert failed(run(demo, "access:withdraw", "1")) == (
        "Error: Request 1 is joe@acme.com's: only they may withdraw it; a decider denies it with "
        "access:deny.")
    assert progress(run(demo, "access:withdraw", "1", who="joe@acme.com")) == \
        "Withdrawing request 1: deploy on api-staging... done\n"
    (row,) = json.loads(data(run(demo, "access:requests", "--json", who="joe@acme.com")))
    assert (row["status"], row["decided_by"]) == ("withdrawn", "joe@acme.com")
