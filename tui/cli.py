"""The Heroku-style command line: ``teamaccess members:add ...`` over store.ops and store.queries.

Commands keep Heroku's topic:command names, flags, progress lines (``Locking myapp... done``)
and ``--json`` field names, so muscle memory and scripts carry over. Nothing here decides who
may do what: every command calls the same store function as the dashboard, and a refusal comes
back as the store's one-line reason. Textual is imported only when the dashboard opens.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, NoReturn

import click
from teamaccess.store import ops, portable, queries, sshkeys, validate
from teamaccess.store.db import Database, default_path
from teamaccess.store.errors import Invalid, NotFound, StoreError
from teamaccess.store.identity import acting_login, resolve_actor
from teamaccess.store.ids import public_id
from teamaccess.store.ops import Actor
from teamaccess.store.policy import AppAction, Relation, TeamAction, decide_team, utc_text
from teamaccess.store.portable import iso
from teamaccess.store.words import COLLABORATOR
from teamaccess.tui.text import money, plain

PROG = "teamaccess"
TEAM_OWNER_DOMAIN = "herokumanager.com"  # a team app's owner is TEAM@herokumanager.com, as Heroku says
APP_ENV = "TEAMACCESS_APP"  # stands in for --app, as HEROKU_APP does for Heroku's CLI

#: Other names Heroku's CLI answers to, as hidden aliases (kept out of the command list, named
#: in each command's help): alias -> command.
ALIASES: dict[str, str] = {
    "list": "apps",
    "apps:list": "apps",
    "create": "apps:create",
    "destroy": "apps:destroy",
    "apps:delete": "apps:destroy",
    "lock": "apps:lock",
    "unlock": "apps:unlock",
    "join": "apps:join",
    "leave": "apps:leave",
    "whoami": "auth:whoami",
    "2fa": "auth:2fa",
    "twofactor": "auth:2fa",
}
DEMO_TEAM = "acme-widgets"
DEMO_ADMIN = "ada@acme.com"

_HELP = """\
Manage an Enterprise Team's users and their access to its apps, the Heroku way.

Run without a command to open the dashboard; 'teamaccess demo' opens it on a demo team.

\b
Where the data lives: --db PATH|URL or TEAMACCESS_DB (default: your user data directory).
Who acts: --as EMAIL or TEAMACCESS_AS, else the account bound to your OS login.
Which team: --team T or TEAMACCESS_TEAM, else your only team.
Which app: --app A or TEAMACCESS_APP.
--db and --as work before or after the command.

\b
Shell completion (click's own):
  bash: eval "$(_TEAMACCESS_COMPLETE=bash_source teamaccess)"
        (and COMP_WORDBREAKS=${COMP_WORDBREAKS//:} so that 'members:add' completes)
  zsh:  eval "$(_TEAMACCESS_COMPLETE=zsh_source teamaccess)"
  fish: _TEAMACCESS_COMPLETE=fish_source teamaccess | source
"""


# -- state shared by the group and its commands ------------------------------------------------


@dataclass
class State:
    """What the global options said, and the database and actor opened from them on demand."""

    db_where: str | None = None
    as_email: str | None = None
    _db: Database | None = field(default=None, repr=False)
    _actor: Actor | None = field(default=None, repr=False)

    def db(self) -> Database:
        """The database named by --db / TEAMACCESS_DB / the default path, opened once."""
        if self._db is None:
            self._db = Database(self.db_where)
        return self._db

    def actor(self) -> Actor:
        """The acting account (--as / TEAMACCESS_AS / the bound OS login)."""
        if self._actor is None:
            try:
                self._actor = resolve_actor(self.db(), self.as_email)
            except Invalid as err:  # only the --as / TEAMACCESS_AS email is parsed here
                raise Invalid(f"--as/TEAMACCESS_AS: {err}") from None
        return self._actor

    def close(self) -> None:
        """Release the database, if one was opened."""
        if self._db is not None:
            self._db.close()
            self._db = None


def _state() -> State:
    return click.get_current_context().ensure_object(State)


def _remember(attr: str) -> Callable[[click.Context, click.Parameter, Any], None]:
    def callback(ctx: click.Context, _param: click.Parameter, value: Any) -> None:
        if value is not None:  # a value given after the command overrides one given before
            setattr(ctx.ensure_object(State), attr, value)

    return callback


def global_options(f: Callable) -> Callable:
    """Give a command (and the group) ``--db`` and ``--as``, so they work on either side."""
    f = click.option(
        "--as", "as_email", metavar="EMAIL", expose_value=False, is_eager=True,
        callback=_remember("as_email"),
        help="Act as this account (on a database file you own). Env: TEAMACCESS_AS.",
    )(f)
    f = click.option(
        "--db", metavar="PATH|URL", expose_value=False, is_eager=True,
        callback=_remember("db_where"),
        help="SQLite file or SQLAlchemy URL. Env: TEAMACCESS_DB.",
    )(f)
    return f


def _completer(kind: str) -> Callable[[click.Context, click.Parameter, str], list[str]]:
    """Complete team or app names from the database, as the acting account sees them."""

    def complete(ctx: click.Context, _param: click.Parameter, incomplete: str) -> list[str]:
        state = ctx.find_object(State) or State()
        try:
            db = Database(state.db_where, create=False)  # never create a file to complete a word
            try:
                email = resolve_actor(db, state.as_email).email
                if kind == "team":
                    names = [t.name for t in queries.teams(db, email)]
                else:
                    names = [a.name for a in queries.apps(db, email)]
            finally:
                db.close()
        except Exception as err:  # noqa: BLE001 - a completion that can't look never breaks the shell
            from teamaccess.tui.errorlog import log_quietly  # only on this rare path

            log_quietly(err, f"completing a {kind} name")
            return []
        return [n for n in names if n.startswith(incomplete)]

    return complete


def team_option(f: Callable) -> Callable:
    """``--team``/``-t``; when absent, TEAMACCESS_TEAM or the actor's only team is used."""
    return click.option(
        "--team", "-t", metavar="TEAM", shell_complete=_completer("team"),
        help="Team name (default: TEAMACCESS_TEAM, else your only team).",
    )(f)


class _EnvOption(click.Option):
    """An option an environment variable stands in for: a missing one names the variable too."""

    def get_error_hint(self, ctx: click.Context) -> str:
        hint = super().get_error_hint(ctx)
        return f"{hint} (or set {self.envvar})" if isinstance(self.envvar, str) else hint


def app_option(f: Callable) -> Callable:
    """``--app``/``-a``, required, as in Heroku; TEAMACCESS_APP stands in for it (HEROKU_APP)."""
    return click.option("--app", "-a", "app", metavar="APP", required=True, envvar=APP_ENV,
                        cls=_EnvOption, shell_complete=_completer("app"),
                        help=f"App name (default: {APP_ENV}).")(f)


def json_option(f: Callable) -> Callable:
    """``--json``: print Heroku Platform API shaped rows instead of a table."""
    return click.option("--json", "as_json", is_flag=True, help="Output as JSON.")(f)


def resolve_team(state: State, team: str | None) -> str:
    """The team a command is about: --team, TEAMACCESS_TEAM, or the actor's only team."""
    if team:
        return team
    env = os.environ.get("TEAMACCESS_TEAM")
    if env:
        return env
    rows = queries.teams(state.db(), state.actor().email)
    own = [r.name for r in rows if r.role != COLLABORATOR] or [r.name for r in rows]
    if len(own) == 1:
        return own[0]
    if not own:
        raise click.UsageError(
            "No team given and you belong to none: pass --team TEAM "
            "(or create one with 'teamaccess teams:create NAME')."
        )
    raise click.UsageError(
        f"Which team? You belong to {', '.join(own)}: pass --team TEAM or set TEAMACCESS_TEAM."
    )


def default_team(state: State) -> str | None:
    """The team a command uses when --team is left out, if there is one (``teams --json``'s
    ``default``): what :func:`resolve_team` picks without asking."""
    try:
        return resolve_team(state, None)
    except click.UsageError:  # no team, or several: no default
        return None


# -- output helpers --------------------------------------------------------------------------


def say(line: str = "") -> None:
    """Print one line of output to stdout."""
    click.echo(line)


def progress(action: str) -> None:
    """Heroku's progress line, printed whole once the work succeeded: ``Locking myapp... done``.

    On standard error, as Heroku writes it, so standard output holds only data: a script's
    ``teamaccess members --json > x`` capture stays clean, and a terminal shows the same lines.
    """
    click.echo(f"{action}... done", err=True)


def done(action: str) -> None:
    """The older name of :func:`progress` (commands written before it still call this)."""
    progress(action)


def note(line: str) -> None:
    """A line that tells a person something beside the data (what a change also did): stderr."""
    click.echo(line, err=True)


def print_json(data: Any) -> None:
    """JSON for people and scripts; ASCII-escaped so no control byte gets out.

    A list prints one compact element per line: Python's indenting encoder is pure Python and
    cost more than the whole query on a 10,000-user team, while the C encoder (no indent) keeps
    ``members --json`` near the cost of starting Python. Anything else is indented by two.
    """
    if isinstance(data, list) and data:
        encode = _element_encoder()
        say("[\n  " + ",\n  ".join(encode(item) for item in data) + "\n]")
        return
    say(json.dumps(data, indent=2, ensure_ascii=True, default=_json_default))


def _element_encoder() -> Callable[[Any], str]:
    """``JSONEncoder(ensure_ascii=True).encode`` for many small values in a row.

    JSONEncoder.encode builds a new C encoder for every call; for 10,000 list elements that
    setup was a third of the encoding. The C encoder is built once here (json.encoder's own
    constructor, as JSONEncoder.iterencode calls it), with the pure-Python encoder as the
    fallback where the C one is missing. Same output (tests compare the two).
    """
    from json import encoder as stdlib

    if stdlib.c_make_encoder is None:  # pragma: no cover - CPython always has it
        return json.JSONEncoder(ensure_ascii=True, default=_json_default).encode
    chunks = stdlib.c_make_encoder(None, _json_default, stdlib.encode_basestring_ascii, None,
                                   ": ", ", ", False, False, True)
    return lambda value: "".join(chunks(value, 0))


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return iso(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> None:
    """A plain left-aligned table with a header rule, every cell shown literally on one line."""

    cells = [[plain(c, one_line=True) for c in row] for row in rows]
    columns = list(zip(*cells, strict=True)) if cells else [() for _ in headers]
    widths = [max(len(h), max(map(len, column), default=0))
              for h, column in zip(headers, columns, strict=True)]
    line = "  ".join(f"{{:<{w}}}" for w in widths).format
    lines = [line(*headers).rstrip(), "  ".join(_rule_char() * w for w in widths)]
    lines.extend(line(*row).rstrip() for row in cells)
    # One write, not one click.echo per row: 10,000 echoes cost a fifth of `access` at 10k.
    say("\n".join(lines))


def _rule_char() -> str:
    """The header rule's character: a box line where the output can encode it, else a dash."""
    try:
        "─".encode(getattr(sys.stdout, "encoding", None) or "ascii")
    except (UnicodeEncodeError, LookupError):
        return "-"
    return "─"


def perms_text(perms: Iterable[str], sep: str = ", ") -> str:
    """Permission names as Heroku prints them: sorted alphabetically, comma separated.

    Heroku's ``access:add`` writes "deploy, operate, view"; its ``access:update`` writes the
    list unspaced, "manage,view" (``sep=","``).
    """
    return sep.join(sorted(perms))


def shown(value: object) -> str:
    """User data (a name, an email) made safe to put inside a one-line message."""
    return plain(value, one_line=True)


# -- confirmation ----------------------------------------------------------------------------


def stdin_is_terminal() -> bool:
    """Whether a person can answer a prompt (a function so tests can pretend one is there)."""
    return sys.stdin.isatty()


def confirm_app(app: str, confirm: str | None, warning: str) -> None:
    """Heroku's confirmation: ``--confirm APP`` or, on a terminal, type the app's name."""
    if confirm is not None:
        if confirm != app:
            raise click.ClickException(
                f"Confirmation {shown(confirm)} did not match {shown(app)}. Aborted."
            )
        return
    if not stdin_is_terminal():
        raise click.ClickException(
            f"{warning} Pass --confirm {shown(app)} to proceed (no terminal to ask on)."
        )
    click.echo(f" !    WARNING: {warning}", err=True)
    click.echo(f" !    To proceed, type {shown(app)} or re-run this command with --confirm {shown(app)}", err=True)
    answer = click.prompt("", prompt_suffix="> ", default="", show_default=False, err=True)
    if answer.strip() != app:
        raise click.ClickException(
            f"Confirmation {shown(answer.strip())} did not match {shown(app)}. Aborted."
        )


# -- the group -------------------------------------------------------------------------------


class TeamAccessGroup(click.Group):
    """The ``teamaccess`` group: one-line errors with Heroku's exit statuses, never a traceback."""

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        """A command by its name or by one of Heroku's aliases for it (``lock``, ``list``...)."""
        return super().get_command(ctx, ALIASES.get(cmd_name, cmd_name))

    def main(  # type: ignore[override]
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> NoReturn:
        """Run a command; print any failure as one ``Error: ...`` line and exit 1 (2: usage)."""
        for stream in (sys.stdout, sys.stderr):
            # A terminal that can't show a character gets '?', not a UnicodeEncodeError.
            reconfigure = getattr(stream, "reconfigure", None)
            if reconfigure is not None:
                try:
                    reconfigure(errors="replace")
                except (ValueError, OSError):  # pragma: no cover - a stream that won't change
                    pass
        code = 0
        try:
            rv = super().main(
                args, prog_name or PROG, complete_var, standalone_mode=False, **extra
            )
            code = rv if isinstance(rv, int) else 0
        except click.UsageError as err:
            hint = ""
            if err.ctx is not None:
                hint = f" See '{err.ctx.command_path} --help'."
            _error(f"{err.format_message()}{hint}")
            code = 2
        except click.ClickException as err:
            _error(err.format_message())
            code = err.exit_code
        except click.Abort:
            _error("Aborted.")
            code = 1
        except StoreError as err:
            _error(str(err))
            code = 1
        except BrokenPipeError:
            code = 1  # the reader went away (| head): nothing useful left to say
        except Exception as err:  # noqa: BLE001 - the promise is one line, never a traceback
            from teamaccess.tui.errorlog import unexpected  # only on this rare path

            _error(unexpected(err, f"running {' '.join(sys.argv[1:2]) or 'the command'}"))
            code = 1
        sys.exit(code)


def _error(message: str) -> None:
    text = plain(message, one_line=True)
    if not text.startswith("Error: "):
        text = "Error: " + text
    try:
        click.echo(text, err=True)
    except BrokenPipeError:  # pragma: no cover - stderr closed
        pass


@click.group(
    cls=TeamAccessGroup,
    invoke_without_command=True,
    help=_HELP,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@global_options
@click.version_option(package_name="teamaccess", prog_name=PROG, message="%(prog)s %(version)s")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """The group callback: with no command, open the dashboard."""
    state = ctx.ensure_object(State)
    ctx.call_on_close(state.close)
    if ctx.invoked_subcommand is None:
        open_dashboard(state.db(), state.actor(), os.environ.get("TEAMACCESS_TEAM") or None)


def open_dashboard(db: Database, actor: Actor, team: str | None) -> None:
    """Open the Textual dashboard (the only place that imports Textual).

    Without a terminal on both ends it refuses in one line; if the terminal goes away while it
    runs, it closes (see tui/terminal_watch.py) and exits 1.
    """
    from teamaccess.tui import terminal_watch

    problem = terminal_watch.missing_terminal()
    if problem is not None:
        raise click.ClickException(problem)
    from teamaccess.tui.app import TeamAccessApp

    app = TeamAccessApp(db, actor, team=team)
    watch = terminal_watch.TerminalWatch(
        sys.stdin.fileno(), lambda: app.call_from_thread(app.exit, None, 1))
    watch.start()
    try:
        app.run()
    finally:
        watch.stop()
    if watch.gone.is_set():
        terminal_watch.say_gone()
        sys.exit(1)


def command(name: str, **kw: Any) -> Callable[[Callable], click.Command]:
    """Declare a ``topic:command`` with the global options."""

    def wrap(f: Callable) -> click.Command:
        cmd = cli.command(name, **kw)(global_options(f))
        aliases = [alias for alias, target in ALIASES.items() if target == name]
        if aliases and cmd.epilog is None:
            cmd.epilog = f"Aliases: {', '.join(aliases)}."
        return cmd

    return wrap


@command("help")
@click.argument("topic", metavar="[COMMAND]", required=False)
@click.pass_context
def help_cmd(ctx: click.Context, topic: str | None) -> None:
    """Show help for teamaccess, a command, or a topic (apps, members, access...)."""
    group = ctx.find_root()
    if topic is None:
        say(cli.get_help(group))
        return
    found = cli.get_command(group, topic)
    prefix = (found.name if found is not None else topic) + ":"
    in_topic = [n for n in cli.list_commands(group) if n.startswith(prefix)]
    if found is None and not in_topic:
        raise click.UsageError(
            f"No such command or topic: {shown(topic)}. Run '{PROG} help' for the list."
        )
    if found is not None:
        with click.Context(found, info_name=topic, parent=group) as sub:
            say(found.get_help(sub))
    if in_topic:
        if found is not None:
            say()
        say(f"Commands in {shown(prefix[:-1])}:")
        width = max(map(len, in_topic))
        for n in in_topic:
            cmd = cli.commands[n]
            say(f"  {n:<{width}}  {cmd.get_short_help_str(limit=80)}")


# -- members ---------------------------------------------------------------------------------


def row_id(kind: str, key: int | str | None, created_at: datetime | None) -> str | None:
    """A row's stable public id (a UUID, see store/ids.py), or None for a row without a key."""
    if key is None or created_at is None:
        return None
    return public_id(kind, key, created_at)


def member_json(row: queries.MemberRow) -> dict[str, Any]:
    """A roster row with the Platform API's team-member field names."""
    out = portable.member_row(row.email, row.name, row.role, row.mfa, row.since)
    if row.role == queries.COLLABORATOR:
        out["apps"] = [{"name": app} for app in row.apps]  # what makes them a collaborator
    return out


def with_member_id(row: queries.MemberRow, team_key: tuple[int, datetime] | None,
                   fields: dict[str, Any]) -> dict[str, Any]:
    """A roster row's JSON with its ``id`` and ``updated_at``, as Heroku's team members have.

    The id is the (team, email) pair's, so it stays as the role changes. ``updated_at`` is when
    the membership began: the store keeps no time of a role change (the audit log has it).
    """
    key = f"{team_key[0]}.{row.email}" if team_key else None
    return {"id": row_id("team-member", key, team_key[1] if team_key else None), **fields,
            "updated_at": iso(row.since)}


@command("members")
@team_option
@click.option("--role", "-r", metavar="ROLE",
              help="Only users with this role (admin, member, viewer, collaborator).")
@json_option
def members_cmd(team: str | None, role: str | None, as_json: bool) -> None:
    """List the team's users and collaborators with their role and MFA status.

    A collaborator (an app grant, no membership) is listed with the apps they hold.
    """
    s = _state()
    name = resolve_team(s, team)
    rows = queries.roster(s.db(), s.actor().email, name, role=role)
    if as_json:
        key = queries.team_keys(s.db(), [name]).get(name)
        print_json([with_member_id(r, key, member_json(r)) for r in rows])
        return
    if not rows:
        say(f"No members in {shown(name)}{' with role ' + shown(role) if role else ''}.")
        return
    if any(r.apps for r in rows):
        table(("Email", "Role", "MFA", "Apps"),
              ((r.email, r.role, "enabled" if r.mfa else "disabled", ", ".join(r.apps)) for r in rows))
        return
    table(("Email", "Role", "MFA"), ((r.email, r.role, "enabled" if r.mfa else "disabled") for r in rows))


@command("members:add")
@click.argument("email")
@team_option
@click.option("--role", "-r", metavar="ROLE", required=True, help="admin, member or viewer.")
def members_add(email: str, team: str | None, role: str) -> None:
    """Add a user to the team with a role.

    On an existing team user, sets their role (as Heroku's API does).
    """
    s = _state()
    change = ops.add_member(s.db(), s.actor(), resolve_team(s, team), email, role)
    done(f"Adding {shown(change.email)} to {shown(change.team)} as {change.role}")


@command("members:set")
@click.argument("email")
@team_option
@click.option("--role", "-r", metavar="ROLE", required=True, help="admin or member.")
def members_set(email: str, team: str | None, role: str) -> None:
    """Change the role of a team user (admin or member)."""
    s = _state()
    change = ops.set_role(s.db(), s.actor(), resolve_team(s, team), email, role)
    done(f"Adding {shown(change.email)} to {shown(change.team)} as {change.role}")


@command("members:remove")
@click.argument("email")
@team_option
def members_remove(email: str, team: str | None) -> None:
    """Remove a user from the team.

    Their explicit app grants stay (they become a collaborator there) and are listed.
    """
    s = _state()
    removal = ops.remove_member(s.db(), s.actor(), resolve_team(s, team), email)
    done(f"Removing {shown(removal.email)} from {shown(removal.team)}")
    if removal.kept_grants:
        apps = ", ".join(shown(a) for a in removal.kept_grants)
        note(f"{shown(removal.email)} keeps explicit grants (now as a collaborator) on: {apps}")
        note(f"To remove them: teamaccess access:remove {shown(removal.email)} --app APP")


def _sources_text(sources: Iterable[tuple[str, tuple[str, ...], str]]) -> str:
    return "; ".join(f"{detail} ({perms_text(perms)})" for _src, perms, detail in sources)


def _sources_json(sources: Iterable[tuple[str, tuple[str, ...], str]]) -> list[dict[str, Any]]:
    return [
        {"source": src, "permissions": sorted(perms), "detail": detail}
        for src, perms, detail in sources
    ]


@command("members:access")
@click.argument("email")
@team_option
@json_option
def members_access(email: str, team: str | None, as_json: bool) -> None:
    """Every team app EMAIL can reach, and why.

    Each app with each permission and where it comes from (role, grant, lock).
    """
    s = _state()
    name = resolve_team(s, team)
    found = queries.member_access(s.db(), s.actor().email, name, email)
    if as_json:
        print_json([
            {"id": row_id("app", row.app_id, row.created_at),
             "app": {"id": row_id("app", row.app_id, row.created_at), "name": row.name,
                     "locked": row.locked},
             "permissions": [{"name": p} for p in sorted(row.permissions)],
             "sources": _sources_json(sources)}
            for row, sources in found
        ])
        return
    say(f"=== {shown(email.strip().lower())} in {shown(name)}")
    if not found:
        say("No access to any app of this team.")
        return
    table(
        ("App", "Permissions", "From"),
        ((row.name + (" (locked)" if row.locked else ""), perms_text(row.permissions),
          _sources_text(sources)) for row, sources in found),
    )


# -- access ----------------------------------------------------------------------------------


def access_json(view: queries.AccessView, row: queries.AccessRow,
                granted: dict[str, datetime], now: datetime | None = None) -> dict[str, Any]:
    """An access row with the Platform API's collaborator field names, plus its provenance.

    ``role`` reads as in the table: a personal app's ``owner``, a team user's role, else
    ``collaborator``. The id is the (app, email) pair's; ``created_at``/``updated_at`` are
    the explicit grant's (``granted``; null where the access comes from the team role alone).
    ``expires_at`` is the grant's end and ``expires_in`` the seconds left at ``now`` (both
    null for access that doesn't end).
    """
    when = granted.get(row.email)
    left = None
    if row.expires_at is not None and now is not None:
        left = max(0, int((row.expires_at - now).total_seconds()))
    return {
        "id": row_id("collaborator", f"{view.app_id}.{row.email}", view.app_created_at),
        **portable.access_row(view.app.name, row.email, row.mfa,
                              row.role or ("owner" if view.app.team is None else None),
                              row.permissions),
        "created_at": iso(when),
        "updated_at": iso(when),
        "grant": sorted(row.grant) if row.grant is not None else None,
        "sources": _sources_json(row.sources),
        "expires_at": iso(row.expires_at),
        "expires_in": left,
    }


@command("access")
@app_option
@json_option
def access_cmd(app: str, as_json: bool) -> None:
    """List who has access to an app.

    Expires shows how long a temporary grant has left (blank: it doesn't end).
    """
    s = _state()
    now = s.db().now()
    view = queries.app_access(s.db(), s.actor().email, app)
    if as_json:
        granted = queries.grant_times(s.db(), s.actor().email, app)
        print_json([access_json(view, r, granted, now) for r in view.rows])
        return
    owner_role = "owner" if view.app.team is None else COLLABORATOR
    table(
        ("Email", "Role", "Permissions", "MFA", "Expires"),
        ((r.email, r.role or owner_role, perms_text(r.permissions),
          "enabled" if r.mfa else "disabled",
          validate.time_left(r.expires_at, now) if r.expires_at is not None else "")
         for r in view.rows),
    )


def _until(change: ops.GrantChange) -> str:
    """`` until 2026-11-29 20:00:00 UTC`` for a grant that ends, else nothing."""
    return f" until {utc_text(change.expires_at)}" if change.expires_at is not None else ""


expires_in_option = click.option(
    "--expires-in", "expires_in", metavar="DURATION", default=None,
    help="End the grant after this long: a whole number and s, m, h or d (45s, 30m, 8h, 7d; "
         "at most 90d). From then on it gives nothing.")


@command("access:add")
@click.argument("email")
@app_option
@click.option("--permissions", "-p", "permissions", metavar="LIST", default="",
              help="Comma-separated: deploy, operate, manage (view is always given).")
@expires_in_option
def access_add(email: str, app: str, permissions: str, expires_in: str | None) -> None:
    """Give an account access to an app, for good or for --expires-in.

    A team admin already holds every permission (nothing to grant them, for any time).
    """
    span = validate.expires_in(expires_in)
    s = _state()
    change = ops.grant_access(s.db(), s.actor(), app, email, permissions, expires_in=span)
    done(f"Adding {shown(change.email)} access to the app {shown(change.app)} with "
         f"{perms_text(change.permissions)} permissions{_until(change)}")


@command("access:update")
@click.argument("email")
@app_option
@click.option("--permissions", "-p", "permissions", metavar="LIST", default=None,
              help="Comma-separated: the whole new set (view is always kept); "
                   "left out: the set stays.")
@expires_in_option
@click.option("--permanent", is_flag=True,
              help="Remove the grant's end: it lasts until revoked.")
def access_update(email: str, app: str, permissions: str | None, expires_in: str | None,
                  permanent: bool) -> None:
    """Replace an account's permissions on an app, or when they end.

    --expires-in sets a new end measured from now; --permanent removes the end; without
    either the grant keeps the end it has.
    """
    span = validate.expires_in(expires_in)
    if span is not None and permanent:
        raise Invalid("Give either --expires-in or --permanent, not both.")
    if permissions is None and span is None and not permanent:
        raise Invalid("Nothing to change: give --permissions, --expires-in or --permanent.")
    s = _state()
    change = ops.update_access(s.db(), s.actor(), app, email, permissions,
                               expires_in=span, permanent=permanent)
    done(f"Updating {shown(change.email)} in application {shown(change.app)} with "
         f"{perms_text(change.permissions, ',')} permissions{_until(change)}")


@command("access:remove")
@click.argument("email")
@app_option
def access_remove(email: str, app: str) -> None:
    """Remove an account's explicit access to an app."""
    s = _state()
    change = ops.revoke_access(s.db(), s.actor(), app, email)
    done(f"Removing {shown(change.email)} access from the app {shown(change.app)}")


@command("access:prune")
@click.option("--app", "-a", "app", metavar="APP", default=None,
              help="Only this app (default: every app whose access you manage).")
def access_prune(app: str | None) -> None:
    """Remove grants that have expired (they already give nothing).

    Each removal is logged as collaborator.destroy with reason 'expired'. The next change to
    an app does the same for that app; this tidies every app you manage at once.
    """
    s = _state()
    removed = ops.prune_expired(s.db(), s.actor(), app)
    if not removed:
        where = f" on {shown(app)}" if app is not None else " on the apps you manage"
        note(f"No expired grants{where}: nothing to remove.")
        return
    by_app: dict[str, list[ops.GrantChange]] = {}
    for change in removed:
        by_app.setdefault(change.app, []).append(change)
    for name, changes in by_app.items():
        count = len(changes)
        progress(f"Removing {count} expired grant{'s' if count != 1 else ''} from {shown(name)}")
        for change in changes:
            note(f"  {shown(change.email)} ({perms_text(change.previous)}), expired at "
                 f"{utc_text(change.expires_at) if change.expires_at else 'unknown'}")


@command("access:why")
@click.argument("email")
@app_option
@json_option
def access_why(email: str, app: str, as_json: bool) -> None:
    """Why EMAIL has, or lacks, each permission on an app.

    For each permission: held or not, and the rule (role, grant, lock) behind it.
    """
    s = _state()
    rows = queries.why(s.db(), s.actor().email, app, email)
    if as_json:
        print_json([{"permission": r.permission, "held": r.held, "reasons": list(r.reasons)}
                    for r in rows])
        return
    say(f"=== {shown(email.strip().lower())} on {shown(app)}")
    table(("Permission", "Has", "Why"),
          ((r.permission, "yes" if r.held else "no", "; ".join(r.reasons)) for r in rows))


# -- access requests -------------------------------------------------------------------------


REQUEST_REASON_CELL = 40  # the widest a reason gets in the access:requests table (--json: whole)


def _expires_in(_ctx: click.Context, _param: click.Parameter, value: str | None) -> timedelta | None:
    """``--expires-in``: parsed by the store's one parser, so every face reads it alike (its
    Invalid is the command's one-line error)."""
    return validate.expires_in(value)


def _request_id(value: str) -> int:
    """The ID a person typed (``access:approve 12``), or a one-line error naming the fix."""
    text = value.strip()
    if not (text.isascii() and text.isdigit()) or not 0 < int(text) < 2**31:  # not '２' either
        raise NotFound(f"Invalid request ID {shown(text)!r}: give a request's number, as "
                       "'teamaccess access:requests' lists them.")
    return int(text)


def _asked_text(perms: Iterable[str]) -> str:
    """What a request asks for, as people say it: the permissions beyond the view every grant has."""
    extra = [p for p in perms if p != "view"]
    return perms_text(extra or ["view"])


def _age(created_at: datetime, now: datetime) -> str:
    """How long ago a request was filed, in the two largest units (``2d 3h``, ``45s``)."""
    if now - created_at < timedelta(seconds=1):
        return "0s"
    return validate.time_left(now, created_at)


def request_json(row: queries.RequestRow) -> dict[str, Any]:
    """A request for scripts: the SPEC's fields, then who decided and whether the actor may."""
    return {
        "id": row.id,
        "app": row.app,
        "team": row.team,
        "requester": row.requester,
        "permissions": list(row.permissions),
        "reason": row.reason,
        "status": row.status,
        "created_at": iso(row.created_at),
        "expires_in": int(row.expires_in.total_seconds()) if row.expires_in else None,
        "decided_by": row.decided_by,
        "decided_at": iso(row.decided_at),
        "decision_reason": row.decision_reason,
        "may_decide": row.may_decide,
    }


@command("access:request")
@app_option
@click.option("--permissions", "-p", "permissions", metavar="LIST", required=True,
              help="Comma-separated: what you need, e.g. deploy or deploy,operate (view is "
                   "always included).")
@click.option("--expires-in", "expires_in", metavar="DURATION", callback=_expires_in,
              help="How long the access should last once approved: 30m, 8h, 7d (at most 90d). "
                   "Default: no end.")
@click.option("--reason", "-r", metavar="TEXT", required=True,
              help="Why you need it (required; shown to whoever approves).")
def access_request(app: str, permissions: str, expires_in: timedelta | None, reason: str) -> None:
    """Ask for access to an app; a team admin or manage holder approves or denies it.

    The request waits 7 days for a decision, then lapses. See it with access:requests; take
    it back with access:withdraw ID.
    """
    s = _state()
    change = ops.request_access(s.db(), s.actor(), app, permissions, reason, expires_in=expires_in)
    click.echo(f"Requesting {_asked_text(change.permissions)} on {shown(change.app)}... done, "
               f"request {change.id}", err=True)


@command("access:requests")
@click.option("--app", "-a", "app", metavar="APP", shell_complete=_completer("app"),
              help="Only the requests for this app.")
@click.option("--team", "-t", metavar="TEAM", shell_complete=_completer("team"),
              help="Only the requests for this team's apps.")
@click.option("--pending", is_flag=True, help="Only the requests still waiting for a decision.")
@json_option
def access_requests(app: str | None, team: str | None, pending: bool, as_json: bool) -> None:
    """List the access requests you may decide, and your own, newest first.

    A pending request you may decide is approved with access:approve ID or denied with
    access:deny ID; your own pending one you may withdraw with access:withdraw ID.
    """
    if app is not None and team is not None:
        raise click.UsageError("Give --app or --team, not both.")
    s = _state()
    db = s.db()
    rows = queries.access_requests(db, s.actor().email, app=app, team=team, pending_only=pending)
    if as_json:
        print_json([request_json(r) for r in rows])
        return
    if not rows:
        say("No access requests." if not pending else "No pending access requests.")
        return
    now = db.now()
    table(
        ("ID", "App", "Requester", "Permissions", "Expires in", "Status", "Age", "Reason"),
        ((r.id, r.app, r.requester, _asked_text(r.permissions),
          validate.duration_text(r.expires_in) if r.expires_in else "never",
          r.status + (" (yours to decide)" if r.may_decide else ""),
          _age(r.created_at, now), _cut(plain(r.reason, one_line=True), REQUEST_REASON_CELL))
         for r in rows),
    )


@command("access:approve")
@click.argument("request_id", metavar="ID")
@click.option("--expires-in", "expires_in", metavar="DURATION", callback=_expires_in,
              help="How long the granted access lasts: 30m, 8h, 7d (at most 90d). Default: what "
                   "the request asked for.")
@click.option("--permanent", is_flag=True,
              help="Grant it with no end, whatever the request asked for.")
def access_approve(request_id: str, expires_in: timedelta | None, permanent: bool) -> None:
    """Approve a pending access request: the requester gets the access at once.

    Team admins and accounts with manage on the app decide, never the requester. An existing
    temporary grant widens to the union and the later end; temporary access is never made
    permanent by an approval, nor a permanent grant shortened.
    """
    s = _state()
    change = ops.approve_request(s.db(), s.actor(), _request_id(request_id), expires_in=expires_in,
                                 permanent=permanent)
    until = f" until {utc_text(change.expires_at)}" if change.expires_at is not None else ""
    progress(f"Approving request {change.id}: {_asked_text(change.permissions)} on "
             f"{shown(change.app)} for {shown(change.requester)}{until}")


@command("access:deny")
@click.argument("request_id", metavar="ID")
@click.option("--reason", "-r", metavar="TEXT", help="Why (optional; the requester sees it).")
def access_deny(request_id: str, reason: str | None) -> None:
    """Deny a pending access request (team admins and manage holders, never the requester)."""
    s = _state()
    change = ops.deny_request(s.db(), s.actor(), _request_id(request_id), reason=reason)
    progress(f"Denying request {change.id}: {_asked_text(change.permissions)} on "
             f"{shown(change.app)} for {shown(change.requester)}")


@command("access:withdraw")
@click.argument("request_id", metavar="ID")
def access_withdraw(request_id: str) -> None:
    """Withdraw your own pending access request (you may then ask again)."""
    s = _state()
    change = ops.withdraw_request(s.db(), s.actor(), _request_id(request_id))
    progress(f"Withdrawing request {change.id}: {_asked_text(change.permissions)} on "
             f"{shown(change.app)}")


# -- apps ------------------------------------------------------------------------------------


def app_json(row: queries.AppRow) -> dict[str, Any]:
    """An app row with the Platform API's field names, plus the actor's own permissions.

    A team app's ``owner`` is the team's address, as Heroku reports it
    (``{"email": "TEAM@herokumanager.com"}``), never null. ``updated_at`` is the latest change
    the store keeps a time of: the creation, or the lock.
    """
    changed = max((t for t in (row.created_at, row.locked_at) if t is not None), default=None)
    return {
        "id": row_id("app", row.app_id, row.created_at),
        **portable.app_row(row.name, row.team, row.owner, row.locked, row.locked_at),
        "owner": {"email": row.owner if row.team is None else f"{row.team}@{TEAM_OWNER_DOMAIN}"},
        "created_at": iso(row.created_at),
        "updated_at": iso(changed),
        "permissions": sorted(row.permissions),
    }


def _app_line(row: queries.AppRow) -> str:
    return shown(row.name) + (" (locked)" if row.locked else "")


@command("apps")
@team_option
@json_option
def apps_cmd(team: str | None, as_json: bool) -> None:
    """List your apps, or a team's.

    With --team, the team's apps with the locked ones marked, as Heroku prints them.
    """
    s = _state()
    team = team or os.environ.get("TEAMACCESS_TEAM") or None
    me = s.actor().email
    rows = queries.apps(s.db(), me, team)
    if as_json:
        print_json([app_json(r) for r in rows])
        return
    if team is not None:
        if not rows:
            say(f"There are no apps in team {shown(team)}.")
            return
        say(f"=== Apps in team {shown(team)}")
        for r in rows:
            say(_app_line(r))
        return
    personal = [r for r in rows if r.team is None and r.owner == me]
    others = [r for r in rows if r not in personal]
    if not rows:
        say("You have no apps.")
        return
    if personal:
        say(f"=== {shown(me)} Apps")
        for r in personal:
            say(_app_line(r))
    teams = sorted({r.team or "" for r in others})
    for t in teams:
        if personal or t != teams[0]:
            say()
        if t:
            say(f"=== Apps in team {shown(t)}")
        else:
            say("=== Collaborated Apps")
        for r in others:
            if (r.team or "") == t:
                say(_app_line(r))


@command("apps:create")
@click.argument("name")
@team_option
@click.option("--locked", is_flag=True, help="Lock the new team app at once.")
def apps_create(name: str, team: str | None, locked: bool) -> None:
    """Create a personal or team app.

    In a team, you get an all-four grant on it (unless you are the team's admin).
    """
    s = _state()
    team = team or os.environ.get("TEAMACCESS_TEAM") or None
    change = ops.create_app(s.db(), s.actor(), name, team, locked=locked)
    where = f" in team {shown(change.team)}" if change.team else ""
    done(f"Creating {shown(change.app)}{where}{' (locked)' if change.locked else ''}")


def app_named(given: str | None, option: str | None, param: str = "app") -> str:
    """The app a command is about: APP as an argument, else --app, else TEAMACCESS_APP.

    Heroku's ``apps:destroy myapp`` and ``apps:destroy --app myapp`` both work; when an argument
    and an --app typed on the command line disagree, nothing is guessed.
    """
    ctx = click.get_current_context()
    typed = ctx.get_parameter_source(param) is click.core.ParameterSource.COMMANDLINE
    if given is not None and option is not None and typed and given != option:
        raise click.UsageError(
            f"Two apps given: {shown(given)} and --app {shown(option)}; give one."
        )
    app = given or option
    if not app:
        raise click.UsageError(f"No app specified: pass APP or --app APP (or set {APP_ENV}).")
    return app


@command("apps:transfer")
@click.argument("recipient")
@click.option("--app", "-a", "app", metavar="APP", envvar=APP_ENV,
              shell_complete=_completer("app"),
              help=f"App name (default: {APP_ENV}); not with --bulk.")
@click.option("--locked", "-l", is_flag=True, help="Lock the app as it arrives in the team.")
@click.option("--confirm", "-c", metavar="APP",
              help="The app's name (with --bulk: RECIPIENT), to skip the prompt.")
@click.option("--bulk", is_flag=True,
              help="Choose among every app you may transfer, and transfer them all.")
def apps_transfer(recipient: str, app: str | None, locked: bool, confirm: str | None,
                  bulk: bool) -> None:
    """Transfer an app to a team or an account.

    RECIPIENT is a team name or an account's email. Leaving a team removes every grant on the
    app, so that asks for confirmation (--confirm APP). With --locked the app is locked as it
    arrives, in the same step.

    With --bulk, you choose among the apps you may transfer (your personal apps and the apps of
    teams you are an admin of), as Heroku's --bulk does: on a terminal always; without one,
    --confirm RECIPIENT transfers all of them. Each app is transferred on its own: a refused one is reported and
    the rest go on (exit status 1 if any was refused).
    """
    s = _state()
    if bulk:
        source = click.get_current_context().get_parameter_source("app")
        if app is not None and source is click.core.ParameterSource.COMMANDLINE:
            raise click.UsageError("--bulk chooses the apps itself: drop --app.")
        _transfer_bulk(s, recipient, locked, confirm)
        return
    if not app:
        raise click.UsageError(f"Missing option '--app' / '-a' (or set {APP_ENV}).")
    try:
        team = queries.app_access(s.db(), s.actor().email, app, limit=1).app.team
    except StoreError:
        team = None  # the store will refuse the transfer itself, with its reason
    if (team is not None and recipient.strip() != team
            and queries.relation_to(s.db(), s.actor().email, team) is Relation.ADMIN):
        # Leaving a team (for an account or another team) drops every grant on the app.
        confirm_app(
            app, confirm,
            f"This moves {shown(app)} out of team {shown(team)} to {shown(recipient)} "
            "and removes every grant on it.",
        )
    _transfer_one(s, app, recipient, locked, bulk=False)


def _transfer_one(s: State, app: str, recipient: str, locked: bool, *, bulk: bool) -> None:
    """One transfer through the store, with Heroku's progress lines (and its lock line).

    In a bulk transfer Heroku names the recipient once, above the list, not on each line.
    """
    change = ops.transfer_app(s.db(), s.actor(), app, recipient, locked=locked)
    to = "" if bulk else f" to {shown(change.team or change.owner)}"
    done(f"Transferring {shown(change.app)}{to}")
    if locked and change.locked:
        # Heroku runs apps:lock after the transfer; here the lock is set in the same step.
        done(f"Locking {shown(change.app)}")
    if change.removed_grants:
        note(f"Removed the grants of: {', '.join(shown(e) for e in change.removed_grants)}")


def _transfer_bulk(s: State, recipient: str, locked: bool, confirm: str | None) -> None:
    """apps:transfer --bulk: pick among the apps the actor may let go, then move each."""
    me = s.actor().email
    to = recipient.strip()
    to_key = to.lower() if "@" in to else to
    letting_go = {
        t.name for t in queries.teams(s.db(), me)
        if decide_team(TeamAction.TRANSFER_OUT, t.name, queries.relation_to(s.db(), me, t.name))
    }
    candidates = [
        r for r in queries.apps(s.db(), me)
        if ((r.team is None and r.owner == me) or r.team in letting_go)
        and to_key not in (r.team, r.owner)
    ]
    if not candidates:
        raise click.ClickException(
            f"You have no apps you may transfer to {shown(to)}: 'teamaccess apps' lists yours."
        )
    if confirm is not None and confirm.strip() != to:
        raise click.ClickException(
            f"Confirmation {shown(confirm)} did not match {shown(to)}. Aborted."
        )
    if confirm is not None and not stdin_is_terminal():
        chosen = candidates  # a script said whom, and that it means every app
    elif not stdin_is_terminal():
        raise click.ClickException(
            f"--bulk asks which apps to transfer: run it on a terminal, or pass --confirm "
            f"{shown(to)} to transfer all {len(candidates)} of them."
        )
    else:
        chosen = _choose_apps(candidates)
        if not chosen:
            raise click.ClickException("No apps chosen. Aborted.")
    note(f"Transferring applications to {shown(to)}...")
    refused = 0
    for row in chosen:
        try:
            _transfer_one(s, row.name, recipient, locked, bulk=True)
        except StoreError as err:
            # Heroku's failed step: the app's line ends in "!", then why, so a reader of a long
            # list knows which apps moved and which did not.
            refused += 1
            note(f"Transferring {shown(row.name)}... !")
            _error(str(err))
    if refused:
        raise click.exceptions.Exit(1)


def _choose_apps(rows: Sequence[queries.AppRow]) -> list[queries.AppRow]:
    """Ask on the terminal which of ``rows`` to transfer: numbers, ranges (2-4), or all."""
    note("Select applications you would like to transfer:")
    width = len(str(len(rows)))
    for n, row in enumerate(rows, 1):
        note(f"  {n:>{width}}  {shown(row.name)} ({shown(row.team or row.owner)})")
    while True:
        answer = click.prompt("Numbers (e.g. 1 3-5), 'all', or nothing to stop", default="",
                              show_default=False, err=True).strip().lower()
        if not answer:
            return []
        if answer == "all":
            return list(rows)
        picked = _parse_choice(answer, len(rows))
        if picked is not None:
            return [rows[i - 1] for i in picked]
        note(f"Give numbers from 1 to {len(rows)}, like '1 3-5', or 'all'.")


def _parse_choice(answer: str, count: int) -> list[int] | None:
    """``"1 3-5,7"`` as sorted 1-based numbers, or None if any part isn't one in 1..count."""
    picked: set[int] = set()
    for part in answer.replace(",", " ").split():
        low, _, high = part.partition("-")
        if not low.isdigit() or (high and not high.isdigit()):
            return None
        first, last = int(low), int(high or low)
        if not 1 <= first <= last <= count:
            return None
        picked.update(range(first, last + 1))
    return sorted(picked)


@command("apps:join")
@app_option
def apps_join(app: str) -> None:
    """Give yourself view access to an unlocked app of your team."""
    s = _state()
    change = ops.join_app(s.db(), s.actor(), app)
    done(f"Joining {shown(change.app)}")


@command("apps:leave")
@app_option
def apps_leave(app: str) -> None:
    """Drop your own grant on an app."""
    s = _state()
    change = ops.leave_app(s.db(), s.actor(), app)
    done(f"Leaving {shown(change.app)}")


@command("apps:destroy")
@click.argument("app_arg", metavar="[APP]", required=False, shell_complete=_completer("app"))
@click.option("--app", "-a", "app", metavar="APP", envvar=APP_ENV,
              shell_complete=_completer("app"), help=f"App name (default: {APP_ENV}).")
@click.option("--confirm", "-c", metavar="APP", help="The app's name, to skip the prompt.")
def apps_destroy(app_arg: str | None, app: str | None, confirm: str | None) -> None:
    """Destroy an app with its grants and resources.

    The app is APP or --app; 'teamaccess apps:destroy myapp --confirm myapp' skips the prompt.
    """
    s = _state()
    app = app_named(app_arg, app)
    # Ask only someone the store would let through: anyone else gets (and the log records)
    # the store's refusal rather than a confirmation prompt.
    if queries.may(s.db(), s.actor().email, app, AppAction.DESTROY):
        confirm_app(app, confirm, f"This will destroy {shown(app)} with every grant and resource on it.")
    change = ops.destroy_app(s.db(), s.actor(), app)
    done(f"Destroying {shown(change.app)} (including all add-ons)")


@command("apps:lock")
@app_option
def apps_lock(app: str) -> None:
    """Lock a team app.

    Team users added from now on must be granted access to it explicitly.
    """
    s = _state()
    change = ops.lock_app(s.db(), s.actor(), app)
    done(f"Locking {shown(change.app)}")


@command("apps:unlock")
@app_option
def apps_unlock(app: str) -> None:
    """Unlock a team app."""
    s = _state()
    change = ops.unlock_app(s.db(), s.actor(), app)
    done(f"Unlocking {shown(change.app)}")


# -- teams and accounts ----------------------------------------------------------------------


@command("teams")
@json_option
def teams_cmd(as_json: bool) -> None:
    """List the teams you belong to, with your role in each."""
    s = _state()
    rows = queries.teams(s.db(), s.actor().email)
    if as_json:
        default = default_team(s)
        keys = queries.team_keys(s.db(), (r.name for r in rows))
        print_json([
            {"id": row_id("team", *keys[r.name]), "name": r.name, "role": r.role,
             "type": "enterprise", "default": r.name == default,
             "created_at": iso(keys[r.name][1]), "updated_at": iso(keys[r.name][1])}
            for r in rows
        ])
        return
    if not rows:
        say("You are not a member of any team.")
        return
    table(("Team", "Role"), ((r.name, r.role) for r in rows))


@command("teams:create")
@click.argument("name")
def teams_create(name: str) -> None:
    """Create a team; you become its first admin."""
    s = _state()
    created = ops.create_team(s.db(), s.actor(), name)
    done(f"Creating {shown(created)}")


@command("teams:rename")
@click.argument("new_name", metavar="NEW")
@team_option
def teams_rename(new_name: str, team: str | None) -> None:
    """Rename a team (admins only)."""
    s = _state()
    old = resolve_team(s, team)
    new = ops.rename_team(s.db(), s.actor(), old, new_name)
    done(f"Renaming {shown(old)} to {shown(new)}")


@command("account:mfa")
@click.option("--enable/--disable", "enable", default=None,
              help="Turn your MFA on or off; without either, show its status.")
def account_mfa(enable: bool | None) -> None:
    """Show or change your own MFA status."""
    s = _state()
    actor = s.actor()
    if enable is None:
        account = queries.account(s.db(), actor.email)
        if account is None:
            raise NotFound(f"No account {shown(actor.email)}: ask a team admin to add you.")
        say(f"MFA is {'enabled' if account.mfa_enabled else 'disabled'} for {shown(actor.email)}.")
        return
    ops.set_mfa(s.db(), actor, enable)
    done(f"{'Enabling' if enable else 'Disabling'} MFA for {shown(actor.email)}")


@command("auth:whoami")
def auth_whoami() -> None:
    """Show the account you act as (from --as, TEAMACCESS_AS or your bound login)."""
    say(shown(_state().actor().email))


@command("auth:2fa")
def auth_2fa() -> None:
    """Check your two-factor authentication (MFA) status, as Heroku's auth:2fa does."""
    s = _state()
    me = s.actor().email
    account = queries.account(s.db(), me)
    if account is None:
        raise NotFound(f"No account {shown(me)}: ask a team admin to add you.")
    say(f"Two-factor authentication is {'enabled' if account.mfa_enabled else 'not enabled'}")


@command("accounts:bind")
@click.argument("login")
@click.argument("email")
def accounts_bind(login: str, email: str) -> None:
    """Bind an OS login to an account.

    Whoever runs teamaccess under that login then acts as the account (without --as).
    It takes both sides: an admin of every team the account reaches (any role, or a grant
    on one of its apps) offers "LOGIN may act as EMAIL" by running this;
    the OS user LOGIN then confirms by running the same command themselves (teamaccess
    reads the login from the uid). An admin binding their own login needs no offer.
    The database file's owner binds directly. Offers last 7 days; every step is audited.
    """
    s = _state()
    db = s.db()
    binding = ops.bind_login(db, _binding_actor(s, db, login, email), login, email)
    if binding.offered:
        progress(f"Offering login {shown(binding.login)} to act as {shown(binding.email)}")
        note(f"{shown(binding.login)} confirms by running: teamaccess accounts:bind "
             f"{shown(binding.login)} {shown(binding.email)}")
        return
    progress(f"Binding login {shown(binding.login)} to {shown(binding.email)}")


def _binding_actor(s: State, db: Database, login: str, email: str) -> Actor:
    """Who runs accounts:bind: as usual, or the login's holder confirming an offer.

    A login nobody has bound yet has no account to act as; confirming an offer made to it is
    the one thing it may do, and it does so as the account offered (the store checks the offer).
    """
    try:
        return s.actor()
    except NotFound:
        if s.as_email is not None or os.environ.get("TEAMACCESS_AS"):
            raise
        me = acting_login(db)
        if login.strip() != me:
            raise
        return Actor(validate.email(email), me)


# -- SSH keys (for teamaccess serve) -----------------------------------------------------------


def _key_json(row: queries.KeyRow) -> dict[str, Any]:
    """A key with the Platform API's key field names (plus its type and who added it)."""
    public_key = row.public_key + (f" {row.comment}" if row.comment else "")
    return {"id": row_id("key", row.id, row.created_at), "email": row.email, "fingerprint": row.fingerprint,
            "key_type": row.key_type, "public_key": public_key, "comment": row.comment,
            "created_at": iso(row.created_at), "updated_at": iso(row.created_at),
            "created_by": row.created_by, "suspended": row.suspended}


@command("keys")
@click.option("--account", metavar="EMAIL",
              help="Another account's keys (an admin of every team it is in).")
@json_option
def keys_cmd(account: str | None, as_json: bool) -> None:
    """Your SSH public keys (the keys 'teamaccess serve' lets in as you)."""
    s = _state()
    rows = queries.keys(s.db(), s.actor().email, account)
    if as_json:
        print_json([_key_json(r) for r in rows])
        return
    owner = account.strip().lower() if account else s.actor().email
    if not rows:
        say(f"{'You have' if account is None else shown(owner) + ' has'} no SSH keys.")
        return
    say(f"=== {shown(owner)} keys")
    table(("Fingerprint", "Type", "Added", "Comment"),
          ((r.fingerprint, r.key_type, iso(r.created_at.replace(microsecond=0)), _key_note(r))
           for r in rows))


def _key_note(row: queries.KeyRow) -> str:
    """The comment, after why the key can't log in now (its creator lost authority), if so."""
    if row.suspended is None:
        return row.comment or ""
    return row.suspended + (f" ({row.comment})" if row.comment else "")


def _read_key_argument(key: str, served: bool) -> str:
    """The key text that KEY|FILE|- stands for."""
    if key == "-":
        return sys.stdin.read(sshkeys.MAX_TEXT + 1)
    looks_like_key = any(ch.isspace() for ch in key.strip()) or key.startswith(sshkeys.KEY_TYPES)
    if looks_like_key or served:
        # Over SSH a path would name the server's files, never the client's: only the key text
        # itself (or '-') is taken, so no server file is ever read for a client.
        return key
    path = Path(key).expanduser()
    try:
        with path.open(encoding="utf-8") as f:
            return f.read(sshkeys.MAX_TEXT + 1)
    except FileNotFoundError:
        raise click.ClickException(
            f"No file {shown(key)}: give a public key file (e.g. ~/.ssh/id_ed25519.pub), "
            "the key itself in quotes, or '-' to read it from standard input."
        ) from None
    except UnicodeDecodeError:
        raise click.ClickException(
            f"{shown(key)} is not a public key file (not text): give the .pub file."
        ) from None
    except OSError as err:
        raise click.ClickException(f"Can't read {shown(key)}: {err.strerror or err}.") from None


@command("keys:add")
@click.argument("key", metavar="KEY|FILE", nargs=-1, required=True)
@click.option("--account", metavar="EMAIL",
              help="Add it to another account (an admin of every team it is in).")
def keys_add(key: tuple[str, ...], account: str | None) -> None:
    """Add an SSH public key: a .pub FILE, the KEY text, or '-' for standard input.

    Whoever holds the private half then reaches 'teamaccess serve' as the account.
    """
    s = _state()
    actor = s.actor()
    # The key's words may come unquoted (ssh host keys:add ssh-ed25519 AAAA... me@laptop).
    text = _read_key_argument(" ".join(key), served=actor.key_fingerprint is not None)
    change = ops.add_key(s.db(), actor, text, account)
    progress(f"Adding key {change.fingerprint} to {shown(change.email)}")


@command("keys:remove")
@click.argument("fingerprint", metavar="FINGERPRINT")
def keys_remove(fingerprint: str) -> None:
    """Remove an SSH key, by its fingerprint as 'teamaccess keys' lists it."""
    s = _state()
    change = ops.remove_key(s.db(), s.actor(), fingerprint)
    progress(f"Removing key {change.fingerprint} from {shown(change.email)}")


# -- team views ------------------------------------------------------------------------------


AUDIT_CELL = 60  # the widest an audit table's actor, app or target cell gets (Via is bounded)


def _audit_detail(row: queries.AuditRow) -> str:
    if row.outcome != "ok":
        return row.reason or ""
    parts = []
    if row.before is not None:
        parts.append(json.dumps(row.before, sort_keys=True, ensure_ascii=True))
    if row.after is not None:
        parts.append(json.dumps(row.after, sort_keys=True, ensure_ascii=True))
    detail = " -> ".join(parts)
    # A change with a reason of its own (an ended grant removed: "expired") says it first.
    return f"{row.reason}: {detail}" if row.reason else detail


def _audit_via(row: queries.AuditRow) -> str:
    """How the actor came: an SSH key and the client's address when served, else the OS login."""
    if row.actor_key:
        return f"{row.actor_key} from {row.actor_peer}" if row.actor_peer else row.actor_key
    return row.actor_login or ""


@command("audit")
@team_option
@click.option("--limit", "-n", type=click.IntRange(min=1, max=1_000_000), default=100, show_default=True,
              help="Newest events to show.")
@json_option
def audit_cmd(team: str | None, limit: int, as_json: bool) -> None:
    """The team's audit log, newest first (admins only)."""
    s = _state()
    name = resolve_team(s, team)
    rows = queries.audit(s.db(), s.actor().email, name, limit=limit)
    if as_json:
        print_json([
            {"id": r.id, "created_at": iso(r.at), "action": r.action,
             "actor": {"email": r.actor_email, "login": r.actor_login,
                       "key_fingerprint": r.actor_key, "peer": r.actor_peer},
             "team": {"name": r.team} if r.team else None,
             "app": {"name": r.app} if r.app else None,
             "target": {"email": r.target} if r.target else None,
             "before": r.before, "after": r.after, "outcome": r.outcome, "reason": r.reason}
            for r in rows
        ])
        return
    if not rows:
        say(f"No audit events for {shown(name)}.")
        return
    # A refused attempt may name a 300-character target: cut the free-text columns, so one such
    # row doesn't push Outcome and Detail off every screen (--json keeps them whole).
    table(
        ("When", "Actor", "Via", "Action", "App", "Target", "Outcome", "Detail"),
        ((iso(r.at.replace(microsecond=0)), _cut(r.actor_email), _audit_via(r), r.action,
          _cut(r.app or ""), _cut(r.target or ""), r.outcome, _audit_detail(r)) for r in rows),
    )


def _cut(value: str, width: int = AUDIT_CELL) -> str:
    """``value`` cut to ``width`` characters, ending in an ellipsis when it was longer."""
    return value if len(value) <= width else value[: width - 1] + "\u2026"


@command("resources")
@team_option
@json_option
def resources_cmd(team: str | None, as_json: bool) -> None:
    """The dynos and add-ons of the team's apps."""
    s = _state()
    name = resolve_team(s, team)
    rows = queries.resources(s.db(), s.actor().email, name)
    if as_json:
        print_json([
            {"id": row_id("resource", r.resource_id, r.app_created_at),
             "app": {"name": r.app}, "kind": r.kind, "name": r.name, "plan": {"name": r.plan},
             "quantity": r.quantity, "monthly_cents": r.monthly_cents}
            for r in rows
        ])
        return
    if not rows:
        say(f"No resources in {shown(name)}.")
        return
    table(("App", "Kind", "Name", "Plan", "Qty", "Monthly"),
          ((r.app, r.kind, r.name, r.plan, r.quantity, money(r.monthly_cents * r.quantity))
           for r in rows))


@command("billing")
@team_option
@json_option
def billing_cmd(team: str | None, as_json: bool) -> None:
    """Monthly cost of the team's apps (admins only)."""
    s = _state()
    name = resolve_team(s, team)
    rows = queries.billing(s.db(), s.actor().email, name)
    total = sum(r.monthly_cents for r in rows)
    if as_json:
        print_json({"team": {"name": name},
                    "apps": [{"app": {"name": r.app}, "monthly_cents": r.monthly_cents}
                             for r in rows],
                    "total_cents": total})
        return
    say(f"=== Billing for {shown(name)}")
    table(("App", "Monthly"), ((r.app, money(r.monthly_cents)) for r in rows))
    say(f"Total: {money(total)} a month")


# -- data ------------------------------------------------------------------------------------


@command("import")
@click.argument("file", metavar="FILE")
def import_cmd(file: str) -> None:
    """Import a team from a JSON document.

    FILE is the output of 'teamaccess export' (or '-' for standard input). A new team makes
    you its admin; an existing one needs you as its admin. All rows are checked first, and
    nothing is written unless all of them can be.
    """
    s = _state()
    what_to_do = "give the output of 'teamaccess export'."
    limit = portable.MAX_DOCUMENT_BYTES
    try:
        # Read at most one byte past the limit: a huge document is refused, not held in memory.
        if file == "-":
            data = sys.stdin.buffer.read(limit + 1)
        else:
            with open(file, "rb") as handle:
                data = handle.read(limit + 1)
        if len(data) > limit:
            raise click.ClickException(
                f"{shown(file)} is larger than one import may bring ({limit // 2**20} MB); "
                "split the team into several documents (imports merge into the team)."
            )
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise click.ClickException(
            f"{shown(file)} is not valid JSON: it is not UTF-8 text (byte "
            f"0x{err.object[err.start]:02x} at offset {err.start}); {what_to_do}"
        ) from None
    except OSError as err:
        reason = getattr(err, "strerror", None) or str(err)
        raise click.ClickException(f"Can't read {shown(file)}: {reason}.") from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as err:
        raise click.ClickException(
            f"{shown(file)} is not JSON (line {err.lineno} column {err.colno}: {err.msg}); "
            f"{what_to_do}"
        ) from None
    except RecursionError:  # thousands of nested [ or {: json gives up, it must not crash us
        raise click.ClickException(
            f"{shown(file)} is not valid JSON: it is nested too deeply to read; {what_to_do}"
        ) from None
    except ValueError as err:  # e.g. a number longer than Python converts (4300 digits)
        reason = str(err).split(":")[0]
        raise click.ClickException(
            f"{shown(file)} is not valid JSON: {shown(reason)}; {what_to_do}"
        ) from None
    result = portable.import_team(s.db(), s.actor(), doc)
    done(f"Importing {shown(result.team)} from {shown(file)}")
    for line in result.summary():
        note(line)


@command("export")
@team_option
@click.option("--output", "-o", metavar="FILE", help="Write to FILE instead of standard output.")
def export_cmd(team: str | None, output: str | None) -> None:
    """Export a team as one JSON document.

    {"team", "members", "apps", "access"}: the rows of members/apps/access --json (explicit
    grants only). Team admins only.
    """
    s = _state()
    doc = portable.export_team(s.db(), s.actor().email, resolve_team(s, team))
    text = json.dumps(doc, indent=2, ensure_ascii=True) + "\n"
    if output is None:
        click.echo(text, nl=False)
        return
    try:
        Path(output).write_text(text, encoding="utf-8")
    except OSError as err:
        raise click.ClickException(f"Can't write {shown(output)}: {err.strerror}.") from None
    done(f"Exporting {shown(doc['team'])} to {shown(output)}")


@command("backup")
@click.argument("path", metavar="PATH")
def backup_cmd(path: str) -> None:
    """Copy the SQLite database to PATH, safely while in use."""
    s = _state()
    dest = s.db().backup(path)
    done(f"Backing up to {shown(dest)}")


def demo_path() -> Path:
    """``demo.db`` beside the database TEAMACCESS_DB names (a file), else beside the default."""
    env = os.environ.get("TEAMACCESS_DB")
    if env and "://" not in env:
        return Path(env).expanduser().absolute().parent / "demo.db"
    return default_path().parent / "demo.db"


@command("demo")
def demo_cmd() -> None:
    """Open the dashboard on the demo team.

    The demo team acme-widgets lives in demo.db beside your database (TEAMACCESS_DB's folder or
    the default one), is built on first use, and you act as its admin ada@acme.com unless --as
    says otherwise. --db may name only a new, empty database: one that holds anything is
    refused, with nothing written.
    """
    from teamaccess.store.demo import build_demo

    s = _state()
    if s.db_where is None:  # the demo's own file; build_demo refuses any database holding data
        where = demo_path()
        where.parent.mkdir(parents=True, exist_ok=True)  # the demo's own folder: safe to make
        s.db_where = str(where)
    db = s.db()
    build_demo(db)
    actor = resolve_actor(db, s.as_email or DEMO_ADMIN)
    open_dashboard(db, actor, DEMO_TEAM)


@command("serve")
@click.option(
    "--listen", metavar="HOST:PORT", default="127.0.0.1:2222", show_default=True,
    help="Address to listen on (0.0.0.0:2222 for every interface; port 0 picks a free one).",
)
@click.option(
    "--host-key", metavar="PATH",
    help="The server's ed25519 host key, made on first start (default: ssh_host_ed25519_key "
    "beside the database, or in your data directory for PostgreSQL).",
)
@click.option(
    "--max-sessions", type=click.IntRange(min=1), default=32, show_default=True,
    help="Most connections (and sessions) open at once.",
)
@click.option(
    "--max-per-account", type=click.IntRange(min=1), metavar="N",
    help="Most connections (and sessions) one account may hold at once [default: a quarter "
    "of --max-sessions, at least 2].",
)
@click.option(
    "--idle-timeout", metavar="SECONDS", type=click.FloatRange(min=0), default=3600,
    show_default=True, help="Close a session after this long without input (0: never).",
)
@click.option(
    "--login-grace", metavar="SECONDS", type=click.FloatRange(min=0.1), default=20, hidden=True,
    help="Drop a connection that hasn't authenticated after this long.",
)
def serve_cmd(
    listen: str, host_key: str | None, max_sessions: int, max_per_account: int | None,
    idle_timeout: float, login_grace: float,
) -> None:
    """Serve the dashboard and every command over SSH, to people known by their keys.

    Run it as the service account that alone owns the database (it refuses a database or folder
    others may write, and creates a new one 0600). 'ssh -p PORT HOST' opens the dashboard as the
    account of your key; 'ssh -p PORT HOST COMMAND ARGS...' runs a command. Add a key with
    '--as EMAIL keys:add FILE' on the server first.
    """
    from teamaccess.tui.serve import ServeOptions, run_server

    s = _state()
    if s.as_email is not None:
        raise click.UsageError("serve acts as nobody: each session acts as the account of its key.")
    if max_per_account is not None and max_per_account > max_sessions:
        raise click.UsageError(f"--max-per-account {max_per_account} is more than --max-sessions "
                               f"{max_sessions}: give at most {max_sessions}, or raise --max-sessions.")
    run_server(
        ServeOptions(
            db_where=s.db_where, listen=listen, host_key=host_key, max_sessions=max_sessions,
            max_per_account=max_per_account, idle_timeout=idle_timeout, login_grace=login_grace,
        )
    )


def main(argv: Sequence[str] | None = None) -> NoReturn:
    """The ``teamaccess`` console script."""
    cli.main(args=argv, prog_name=PROG)
