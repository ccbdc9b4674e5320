"""The ``setwise`` command: parse the options, call one library function, render.

Every decision lives in the library. This module turns options into arguments,
results into Rich tables (or JSON with ``--json``), and errors into exit codes, in
one place (``_errors``): 0 done, 1 failed, 2 usage. A traceback shows only with
``--debug``; a password in a database URL never shows.

A command is a function decorated with ``@app.command()`` whose body runs inside
``with _errors(debug, db):``; options shared by several commands are the
``Annotated`` aliases below.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table as RichTable
from sqlalchemy import Engine, Update, create_engine, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, SQLAlchemyError

import setwise
from setwise.errors import SchemaError, SetwiseError, SQLTextError
from setwise.sqltext import parse_update

DEFAULT_DB = "sqlite:///setwise.db"

app = typer.Typer(
    name="setwise",
    help="Fast, safe UPDATEs: see what a change would do, then do it.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

out = Console(highlight=False)
err = Console(stderr=True, highlight=False)

Db = Annotated[
    str,
    typer.Option(
        "--db",
        envvar="SETWISE_DB",
        help="Database URL, e.g. postgresql+psycopg://user@host/name (or SETWISE_DB).",
    ),
]
Debug = Annotated[bool, typer.Option("--debug", help="Show the full traceback of an error.")]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON for programs, not tables.")]
TableName = Annotated[str, typer.Argument(help="The table, as the database names it.")]
Sets = Annotated[
    list[str],
    typer.Option("--set", help='An assignment, "price = price * 1.10"; repeat for more columns.'),
]
Where = Annotated[
    str | None,
    typer.Option(
        "--where", help="""Which rows, as SQL on the table's columns: "genre = 'fiction'"."""
    ),
]
AllRows = Annotated[bool, typer.Option("--all-rows", help="Every row of the table (no --where).")]
Yes = Annotated[
    bool, typer.Option("--yes", "-y", help="Apply without showing the plan and asking.")
]


class UsageError(Exception):
    """Options that do not make sense together; exit code 2."""


# -- commands -------------------------------------------------------------------------


@app.command()
def plan(
    table: TableName,
    *,
    sets: Sets,
    where: Where = None,
    all_rows: AllRows = False,
    as_json: AsJson = False,
    db: Db = DEFAULT_DB,
    debug: Debug = False,
) -> None:
    """Show what an update would change, its SQL and the database's plan; writes nothing."""
    with _errors(debug, db), _engine(db) as engine:
        statement = _set_based(engine, table, sets, where, all_rows)
        _show_plan(setwise.plan(engine, statement, all_rows=all_rows), db, as_json)


@app.command()
def apply(
    table: TableName,
    *,
    sets: Sets,
    where: Where = None,
    all_rows: AllRows = False,
    yes: Yes = False,
    as_json: AsJson = False,
    db: Db = DEFAULT_DB,
    debug: Debug = False,
) -> None:
    """Apply an update. Without --yes, shows the plan and asks first."""
    with _errors(debug, db):
        if not yes and not sys.stdin.isatty():
            raise UsageError("no terminal to confirm on: pass --yes to apply without asking")
        with _engine(db) as engine:
            statement = _set_based(engine, table, sets, where, all_rows)
            if not yes:
                _show_plan(setwise.plan(engine, statement, all_rows=all_rows), db, as_json=False)
                if not typer.confirm("Apply this change?", default=False):
                    err.print("Cancelled; nothing was changed.")
                    raise typer.Exit(1)
            _show_report(setwise.update(engine, statement, all_rows=all_rows), as_json)


@app.command()
def demo() -> None:
    """Build a demo database (setwise.db, SQLite) and walk through setwise on it."""
    from setwise import demo as walkthrough

    walkthrough.main()


def main() -> None:
    """The console script's entry point."""
    app()


# -- options to arguments -------------------------------------------------------------


@contextmanager
def _engine(db: str) -> Iterator[Engine]:
    engine = create_engine(db)
    try:
        yield engine
    finally:
        engine.dispose()


def _set_based(
    engine: Engine, table: str, sets: Sequence[str], where: str | None, all_rows: bool
) -> Update:
    if where is not None and all_rows:
        raise UsageError("give --where or --all-rows, not both")
    if where is None and not all_rows:
        raise UsageError("say which rows: --where EXPR, or --all-rows for every row")
    return parse_update(engine, table, sets, where)


# -- results to output ----------------------------------------------------------------


def _show_plan(found: setwise.Plan, db: str, as_json: bool) -> None:
    if as_json:
        _print_json(found)
        return
    out.print(f"Plan for {found.table!r} on {_safe_url(db)}", markup=False, soft_wrap=True)
    counts = _table("matched", "would change", "unchanged", "strategy", "chunks")
    counts.add_row(
        f"{found.matched:,}",
        f"{found.would_change:,}",
        f"{found.unchanged:,}",
        found.strategy,
        f"{found.chunks:,}",
    )
    out.print(counts)
    _section("SQL, each chunk", found.sql)
    _section("EXPLAIN", found.explain)
    _section("Warnings", [f"! {warning.message}" for warning in found.warnings], style="yellow")
    out.print(
        f"Would change {_count(found.would_change, 'row')} in {_count(found.chunks, 'chunk')}."
    )


def _show_report(report: setwise.Report, as_json: bool) -> None:
    if as_json:
        _print_json(report)
        return
    counts = _table("matched", "changed", "unchanged", "strategy")
    counts.add_row(
        f"{report.matched:,}", f"{report.changed:,}", f"{report.unchanged:,}", report.strategy
    )
    out.print(counts)
    if report.run_id is not None:
        out.print(f"Run {report.run_id}", markup=False)
    out.print(
        f"Changed {_count(report.changed, 'row')} in {_count(report.chunks, 'chunk')} "
        f"({report.elapsed_s:.2f} s)."
    )


def _table(*headers: str) -> RichTable:
    table = RichTable()
    for header in headers:
        if header == "strategy":
            table.add_column(header, no_wrap=True)
        else:
            table.add_column(header, justify="right")
    return table


def _section(title: str, entries: Sequence[str], style: str | None = None) -> None:
    """A titled list; an entry of several lines (a SQL statement) is set off by a blank line."""
    if not entries:
        return
    out.print(f"{title}:", style="bold")
    spaced = any("\n" in entry for entry in entries)
    for number, entry in enumerate(entries):
        if spaced and number:
            out.print()
        for line in entry.splitlines():
            out.print(f"  {line.rstrip()}", markup=False, style=style, soft_wrap=True)


def _print_json(result: Any) -> None:
    typer.echo(json.dumps(dataclasses.asdict(result), indent=2, default=str))


def _count(number: int, noun: str) -> str:
    return f"{number:,} {noun}{'' if number == 1 else 's'}"


def _safe_url(db: str) -> str:
    try:
        return make_url(db).render_as_string(hide_password=True)
    except ArgumentError:
        return "the --db URL"


# -- errors to exit codes: the one place ----------------------------------------------


@contextmanager
def _errors(debug: bool, db: str) -> Iterator[None]:
    """Turn any error into one message on stderr and an exit code (2 usage, 1 failed)."""
    try:
        yield
    except (typer.Exit, typer.Abort):
        raise
    except KeyboardInterrupt:
        if debug:
            raise
        err.print("Interrupted; the transaction in progress was rolled back.")
        raise typer.Exit(130) from None
    except Exception as exc:
        if debug:
            raise
        code, message = _explain(exc, db)
        err.print(f"error: {_without_password(message, db)}", markup=False, soft_wrap=True)
        raise typer.Exit(code) from None


def _explain(exc: Exception, db: str) -> tuple[int, str]:
    """The exit code and the message for ``exc``."""
    if isinstance(exc, UsageError | SQLTextError | SchemaError):
        return 2, str(exc)
    if isinstance(exc, SetwiseError):
        return 1, str(exc)
    if isinstance(exc, ArgumentError):
        return 2, f"cannot use the database URL {_safe_url(db)}: {exc}"
    if isinstance(exc, DBAPIError):
        reason = str(exc.orig).strip() if exc.orig is not None else str(exc)
        return 1, f"the database ({_safe_url(db)}) said: {reason}"
    if isinstance(exc, SQLAlchemyError):
        return 1, str(exc)
    return 1, f"unexpected {type(exc).__name__}: {exc} (run again with --debug for details)"


def _without_password(message: str, db: str) -> str:
    try:
        password = make_url(db).password
    except ArgumentError:
        return message
    return message.replace(str(password), "***") if password else message
