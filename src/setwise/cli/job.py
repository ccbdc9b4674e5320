"""From options to a library call: the engine a command opens, the change it plans or
runs, and the confirmation asked before a run is reverted or abandoned."""

from __future__ import annotations

import shlex
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import typer
from sqlalchemy import ColumnElement, Delete, Engine, Update

import setwise
from setwise.api.plan import DEFAULT_SAMPLE
from setwise.cli.dburl import DatabaseURL
from setwise.cli.options import DEFAULT_DB, UsageError
from setwise.cli.render import err, show_run
from setwise.extras import engine_for


@contextmanager
def connect(database: DatabaseURL, *, exists: bool = True) -> Iterator[Engine]:
    """An engine on the database; with ``exists``, refused when connecting would create
    it (a SQLite file not there: a mistyped path, or no --db where one was meant)."""
    assert database.url is not None  # ``guard`` refused a URL it could not read
    if exists and database.missing is not None:
        if database.origin == "default":
            raise UsageError(
                f"no database at {database.missing}: with no --db and no SETWISE_DB, "
                f"setwise looks for {DEFAULT_DB} in the working directory. Name the "
                "database with --db URL (before or after the command) or SETWISE_DB, or "
                "build the demo's with `setwise demo`"
            )
        raise UsageError(
            f"no database at {database.missing} (the {database.origin} URL "
            f"{database.shown}): check the path, or name another with --db URL"
        )
    engine = engine_for(database.url)
    try:
        yield engine
    finally:
        engine.dispose()


@dataclass
class Job:
    """One change, as the arguments of ``plan`` and of ``update`` or ``apply``."""

    statement: Update | Delete | None = None
    all_rows: bool = False
    table: str = ""
    source: str = ""
    keys: list[str] = field(default_factory=list)
    reading: dict[str, Any] = field(default_factory=dict)
    """How the file is read: ``csv_null``, ``format``... (``options.reading_options``)."""
    where: ColumnElement[bool] | None = None
    """Which of the rows the changeset finds it may write (--from with --where)."""
    text: str | None = None
    """The --set/--where options as given, kept with an update's run."""

    def plan(
        self,
        engine: Engine,
        options: dict[str, Any],
        timeout: float | None,
        sample: int = DEFAULT_SAMPLE,
    ) -> setwise.Plan:
        planned = {"timeout_seconds": timeout, "sample": sample, **options}
        if self.statement is not None:
            return setwise.plan(engine, self.statement, all_rows=self.all_rows, **planned)
        return setwise.plan(engine, self.table, self.source, **self._changeset(planned))

    def run(self, engine: Engine, options: dict[str, Any]) -> setwise.Report:
        if isinstance(self.statement, Delete):
            return setwise.delete(
                engine, self.statement, all_rows=self.all_rows, source=self.text, **options
            )
        if self.statement is not None:
            return setwise.update(
                engine, self.statement, all_rows=self.all_rows, source=self.text, **options
            )
        return setwise.apply(engine, self.table, self.source, **self._changeset(options))

    def _changeset(self, options: dict[str, Any]) -> dict[str, Any]:
        """The keyword arguments ``plan`` and ``apply`` take for this changeset."""
        return {"key": self.keys or None, "where": self.where, **self.reading, **options}


def job_for(
    engine: Engine,
    table: str,
    sets: Sequence[str] | None,
    where: str | None,
    all_rows: bool,
    source: str | None,
    keys: Sequence[str] | None,
    reading: dict[str, Any],
) -> Job:
    """The change the options ask for; ``reading``: how --from is read."""
    if source is not None:
        if sets:
            raise UsageError("give --from FILE, or --set with --where/--all-rows, not both")
        if all_rows:
            raise UsageError(
                "--all-rows goes with --set; --from FILE changes the rows its keys find "
                "(--where EXPR narrows them)"
            )
        if source != "-" and not Path(source).is_file():
            raise UsageError(f"--from {source}: no such file")
        condition = None
        if where is not None:  # the file's rows are written only where it holds
            from setwise.sqltext import parse_filter

            condition = parse_filter(engine, table, where)
        job = Job(table=table, source=source, keys=list(keys or ()), reading=reading)
        job.where = condition
        return job
    if keys:
        raise UsageError("--key goes with --from FILE; --where says which rows --set changes")
    if not sets:
        raise UsageError('say what to change: --set "col = expr", or --from FILE')
    if where is not None and all_rows:
        raise UsageError("give --where or --all-rows, not both")
    if where is None and not all_rows:
        raise UsageError("say which rows: --where EXPR, or --all-rows for every row")
    from setwise.sqltext import parse_update  # sqlglot loads only for --set

    written = [*(f"--set {_quoted(s)}" for s in sets)]
    written.append(f"--where {_quoted(where)}" if where is not None else "--all-rows")
    statement = parse_update(engine, table, sets, where)
    return Job(statement=statement, all_rows=all_rows, text=" ".join(written))


def delete_job(engine: Engine, table: str, where: str | None, all_rows: bool) -> Job:
    """The DELETE the options ask for: of the rows ``where`` finds, or of every row."""
    if where is not None and all_rows:
        raise UsageError("give --where or --all-rows, not both")
    if where is None and not all_rows:
        raise UsageError("say which rows to delete: --where EXPR, or --all-rows for every row")
    from setwise.sqltext import parse_delete  # sqlglot loads only for --where

    written = f"--where {_quoted(where)}" if where is not None else "--all-rows"
    statement = parse_delete(engine, table, where)
    return Job(statement=statement, all_rows=all_rows, text=written)


def _quoted(text: str) -> str:
    """``text`` as a shell word, as a person types it: in double quotes when it holds a
    single quote (an SQL string) and nothing a shell reads inside double quotes."""
    if "'" in text and not any(c in text for c in '"$`\\!'):
        return f'"{text}"'
    return shlex.quote(text)


def confirm_run(engine: Engine, run_id: str, verb: str, yes: bool) -> None:
    """Unless ``yes``, show run ``run_id`` and ask before the ``verb`` goes on."""
    if yes:
        return
    if not sys.stdin.isatty():
        raise UsageError(f"no terminal to confirm on: pass --yes to {verb} without asking")
    info, chunks = setwise.run_details(engine, run_id)
    show_run(info, chunks)
    confirm(f"{verb.capitalize()} run {run_id}?")


def confirm(question: str) -> None:
    """Ask on the terminal; a no ends the command with exit code 1, nothing changed."""
    if not typer.confirm(question, default=False):
        err.print("Cancelled; nothing was changed.")
        raise typer.Exit(1)
