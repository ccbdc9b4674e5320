"""Errors to exit codes, in one place (``guard``): 0 done, 1 failed, 2 usage, 130
interrupted; with ``--json`` an error is a JSON document on stdout too.

A traceback shows only with ``--debug``; a password in a database URL never shows: the
URL is read once (``dburl.DatabaseURL``), output shows it masked, and a command printed
for pasting leaves the password out and says where it will be read from.
"""

from __future__ import annotations

import os
import re
import shlex
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import typer
from sqlalchemy.exc import ArgumentError, DBAPIError, SQLAlchemyError

from setwise.cli.dburl import DatabaseURL
from setwise.cli.options import DEFAULT_DB, UsageError
from setwise.cli.render import err, print_json, say_left_out
from setwise.errors import (
    PausedTooLongError,
    RunError,
    RunInterrupted,
    SchemaError,
    SetwiseError,
    SQLTextError,
)
from setwise.shown import plain

#: Options a resumed run is not given again: the command adds its own.
_NOT_AGAIN = frozenset({"resume", "yes", "db", "debug"})


def _again(ctx: typer.Context, run_id: str, database: DatabaseURL) -> str:
    """This very command, resuming ``run_id``: its arguments and every option given, as
    parsed (``--db`` before the command and ``--db=URL`` alike), then ``--resume RUN
    --yes`` and the database as ``DatabaseURL.command`` gives it."""
    words, options = [ctx.info_name or ""], []
    for param in ctx.command.params:
        value = ctx.params.get(param.name or "")
        if param.name in _NOT_AGAIN or value is None or value == param.default:
            continue
        values = list(value) if isinstance(value, list | tuple) else [value]
        if param.param_type_name == "argument":
            words += [str(v) for v in values]
        elif getattr(param, "is_flag", False):
            options.append(max(param.opts, key=len))
        else:
            for one in values:
                options += [max(param.opts, key=len), str(one)]
    return database.command([*words, *options, "--resume", run_id, "--yes"])


def _database(ctx: typer.Context, db: str | None) -> DatabaseURL:
    """The database URL: --db after the command, or before it, else SETWISE_DB, else the
    default; with where it came from."""
    given = db if db is not None else ctx.find_root().params.get("db")
    if given is not None:
        return DatabaseURL.read(given, "--db")
    if os.environ.get("SETWISE_DB"):
        return DatabaseURL.read(os.environ["SETWISE_DB"], "SETWISE_DB")
    return DatabaseURL.read(DEFAULT_DB, "default")


#: The option that stands for each argument a library message asks for, with its metavar.
OPTIONS = {
    "all_rows": ("--all-rows", ""),
    "chunk_rows": ("--chunk-rows", "N"),
    "csv_delimiter": ("--delimiter", "CHAR"),
    "date_format": ("--date-format", "FORMAT"),
    "encoding": ("--encoding", "NAME"),
    "format": ("--format", "FORMAT"),
    "force": ("--force", ""),
    "journal": ("--no-journal", ""),
    "key": ("--key", "COLUMN"),
    "max_lag_seconds": ("--max-lag", "SECONDS"),
    "max_rows": ("--max-rows", "N"),
    "replica_urls": ("--replica", "URL"),
    "resume": ("--resume", "RUN"),
    "timeout_seconds": ("--plan-timeout", "SECONDS"),
}


def as_option(name: str, *value: Any) -> str:
    """An argument as the command line passes it: ``--chunk-rows 300``, ``--force``,
    ``--key COLUMN`` (the spelling ``SetwiseError.explain`` takes)."""
    option, metavar = OPTIONS.get(name, (f"--{name.replace('_', '-')}", name.upper()))
    if not metavar or (value and value[0] is True):
        return option
    return f"{option} {shlex.quote(str(value[0])) if value else metavar}"


@contextmanager
def guard(
    ctx: typer.Context, debug: bool, db: str | None, as_json: bool = False
) -> Iterator[DatabaseURL]:
    """Read the database URL (``db``, see ``_database``), and turn any error into one
    message on stderr (and with ``as_json`` one JSON document on stdout) and an exit code
    (2 usage, 1 failed, 130 interrupted); with ``debug``, the traceback first. No
    password of the URL reaches the output."""
    database = _database(ctx, db)
    try:
        if database.problem is not None:
            raise UsageError(
                f"cannot use the database URL from {database.origin}: {database.problem}"
            )
        yield database
    except (typer.Exit, typer.Abort):
        raise
    except KeyboardInterrupt as exc:
        if debug:
            _traceback(exc, database)
        message = "Interrupted; the transaction in progress was rolled back."
        commands: dict[str, str] = {}
        if isinstance(exc, RunInterrupted) and exc.by is not None:
            message = f"Stopped by `{exc.by} {exc.run_id}` after chunk {exc.chunks}."
        if isinstance(exc, RunInterrupted):
            if exc.unmarked is not None:
                message += f" The journal could not record it: {exc.unmarked}."
            commands = _commands(ctx, exc.run_id, database)
            message += (
                " The chunks before it are committed. Resume with:\n"
                f"  {commands['resume']}\nor undo them with:\n  {commands['revert']}"
            )
        _fail(130, message, {"type": "Interrupted"}, commands, database, as_json, prefix="")
    except Exception as exc:
        if debug:
            _traceback(exc, database)
        code, message = _explain(ctx, exc, database)
        commands = {}
        if isinstance(exc, RunError | PausedTooLongError) and exc.run_id is not None:
            commands = _commands(ctx, exc.run_id, database)
        _fail(code, message, _details(exc), commands, database, as_json)


def _fail(
    code: int,
    message: str,
    details: dict[str, Any],
    commands: dict[str, str],
    database: DatabaseURL,
    as_json: bool,
    prefix: str = "error: ",
) -> None:
    """Say ``message`` (with ``as_json``, print the error as JSON too: its ``details``,
    with the passwords hidden, and the ``commands`` that resume or revert its run) and
    exit with ``code``. ``message`` and ``commands`` come without passwords already."""
    if as_json:
        found = {"type": details["type"], "exit_code": code, "message": message}
        found |= _hidden(plain(details), database) | commands
        if commands and database.left_out:
            found["password"] = database.left_out
        print_json({"error": found})
    err.print(f"{prefix}{message}", markup=False, soft_wrap=True)
    if commands or _COMMAND.search(message):  # a command to paste is in the message
        say_left_out(database, err)
    raise typer.Exit(code) from None


def _details(exc: Exception) -> dict[str, Any]:
    """An error's name and the data it carries (a setwise error's attributes: problems,
    position, key, ...), but not the exception behind it, which ``message`` sums up."""
    details: dict[str, Any] = {"type": type(exc).__name__}
    if isinstance(exc, SetwiseError):
        details |= {
            name: value
            for name, value in vars(exc).items()
            if not name.startswith("_") and not isinstance(value, BaseException)
        }
    return details


def _commands(ctx: typer.Context, run_id: str, database: DatabaseURL) -> dict[str, str]:
    """The run and the commands that resume or revert it, as printed for pasting."""
    return {
        "run_id": run_id,
        "resume": _again(ctx, run_id, database),
        "revert": database.command(["revert", run_id]),
    }


def _hidden(value: Any, database: DatabaseURL) -> Any:
    """``value`` (as ``plain`` gives it) with the URL's passwords hidden in its text."""
    if isinstance(value, str):
        return database.hide(value)
    if isinstance(value, list):
        return [_hidden(v, database) for v in value]
    if isinstance(value, dict):
        return {k: _hidden(v, database) for k, v in value.items()}
    return value


#: A command a library message names, in backquotes, and the Python call beside it.
_COMMAND = re.compile(r"`(setwise [^`]+)`")
_PYTHON_CALL = re.compile(r" \(setwise\.\w+\([^()]*\)\)")


def _on_the_command_line(message: str, database: DatabaseURL) -> str:
    """A library message as the command line says it: a command it names runs on this
    database (``DatabaseURL.command``), and the Python call beside it is left out."""
    message = _PYTHON_CALL.sub("", message)
    return _COMMAND.sub(lambda m: f"`{database.command(shlex.split(m[1])[1:])}`", message)


def _traceback(exc: BaseException, database: DatabaseURL) -> None:
    """The traceback ``--debug`` asks for, without the URL's passwords."""
    text = "".join(traceback.format_exception(exc))
    err.print(database.hide(text).rstrip(), markup=False, soft_wrap=True)


def _explain(ctx: typer.Context, exc: Exception, database: DatabaseURL) -> tuple[int, str]:
    """The exit code and the message for ``exc``, naming options as the command line
    spells them. Text from the exception (a driver's message may quote the URL) has the
    URL's passwords hidden; the URL and the commands setwise adds are its own
    renderings, already without them."""
    said = database.hide(exc.explain(as_option) if isinstance(exc, SetwiseError) else str(exc))
    if isinstance(exc, SetwiseError):
        said = _on_the_command_line(said, database)
    if isinstance(exc, UsageError | SQLTextError | SchemaError):
        return 2, said
    if isinstance(exc, RunError) and exc.run_id is not None:
        said = f"chunk {exc.chunk} failed and was rolled back: {database.hide(exc.reason)}"
        if exc.chunk > 1:
            said += f"; chunks 1 to {exc.chunk - 1} of run {exc.run_id} are committed"
        return 1, (
            f"{said}.\nResume with:\n  {_again(ctx, exc.run_id, database)}\n"
            f"or undo the committed chunks with:\n  {database.command(['revert', exc.run_id])}"
        )
    if isinstance(exc, PausedTooLongError):
        return 1, f"{said}:\n  {_again(ctx, exc.run_id, database)}"
    if isinstance(exc, SetwiseError):
        return 1, said
    if isinstance(exc, ArgumentError):
        return 2, f"cannot use the database URL {database.shown}: {said}"
    if isinstance(exc, DBAPIError):
        if exc.orig is not None:
            said = database.hide(str(exc.orig).strip())
        return 1, f"the database ({database.shown}) said: {said}"
    if isinstance(exc, SQLAlchemyError):
        return 1, said
    return 1, f"unexpected {type(exc).__name__}: {said} (run again with --debug for details)"
