"""The ``setwise`` command: the Typer app, its global options, and ``main``.

Every decision lives in the library; a command parses its options (``options``), makes
one library call (``job``), renders the result (``render``), and turns any error into an
exit code in one place (``exits.guard``). The commands are grouped by what they work
on: ``commands_change`` (plan, apply), ``commands_runs`` (runs, show, revert, abandon,
init), ``commands_tools`` (bench, demo).

A command is a function whose body runs inside ``with guard(ctx, debug, db) as
database:``; it is registered below with ``cls=Command`` (``help``). ``--db`` is taken
before the command too (``setwise --db URL runs``).
"""

from __future__ import annotations

import importlib.metadata
import sys
from typing import Annotated

import typer

from setwise.cli import commands_change, commands_delete, commands_runs, commands_tools
from setwise.cli.help import Command, Group
from setwise.cli.options import Db
from setwise.cli.render import err, print_json

app = typer.Typer(
    name="setwise",
    cls=Group,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"setwise {importlib.metadata.version('setwise')}")
        raise typer.Exit()


@app.callback()
def _setwise(
    db: Db = None,
    version: Annotated[
        bool,
        typer.Option(
            "--version", is_eager=True, callback=_show_version, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Fast, safe UPDATEs: see what a change would do, then do it, and undo it.

    Every command takes --db URL, before or after it; -h on a command shows its options
    and examples.
    """


for _command in (
    commands_change.plan,
    commands_change.apply,
    commands_delete.delete,
    commands_runs.runs,
    commands_runs.show,
    commands_runs.revert,
    commands_runs.abandon,
    commands_runs.init,
    commands_tools.bench,
    commands_tools.demo,
):
    app.command(cls=Command)(_command)


def main() -> None:
    """The console script's entry point."""
    if "--json" not in sys.argv[1:]:
        app()
        return
    # A command line Typer refuses (an unknown option, a value of the wrong kind) never
    # reaches a command's ``guard``: with --json it is a JSON document all the same.
    try:
        code = app(standalone_mode=False)
    except Exception as exc:
        if not hasattr(exc, "format_message"):  # not one of the parser's usage errors
            raise
        message, code = exc.format_message(), getattr(exc, "exit_code", 2)
        print_json({"error": {"type": "UsageError", "exit_code": code, "message": message}})
        err.print(f"error: {message}", markup=False, soft_wrap=True)
    sys.exit(code or 0)
