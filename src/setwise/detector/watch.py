"""``setwise.watch``: find the loops that update or delete rows one at a time.

    with setwise.watch(engine) as seen:
        run_the_program()
    print(seen.report())

The watch listens to the statements SQLAlchemy sends (``before_cursor_execute`` and
``after_cursor_execute`` on the engine, or the connection, behind what it was given;
every engine when given nothing) and counts the ones that write one row: an UPDATE or
DELETE whose WHERE clause pins a primary or unique key by equality. How it counts:

- Statements of the same shape (the SQL with every value a placeholder) on the same
  engine form one group, across the whole watched block. Grouping per transaction would
  miss the most common slow loop, the one that commits after every row, so a group spans
  transactions and its finding says how many (commits and rollbacks seen between its
  statements; with several connections at once that number is approximate).
- An ``executemany`` call counts once per parameter set: the server still runs one
  UPDATE per row, which is how the ORM flushes many changed objects.
- A group of ``threshold`` rows or more is a ``Finding``. Below ten rows a set-based
  replacement saves little: it sends a few statements of its own (``setwise.update``
  two, ``setwise.apply`` stages its rows first), so ``DEFAULT_THRESHOLD`` is 10.
- Statements sent from inside setwise (a setwise frame between SQLAlchemy and the
  caller) are never counted: they are setwise's own, already as set-based as they get.
  This includes a caller's pending changes that setwise flushes before it starts.
  The exception is ``setwise.patch``, which writes one record per call by design: a
  loop of calls is the caller's row-by-row loop, counted where the caller calls it.
- For ``text()`` and driver SQL the table's keys are unknown in the hook; they are
  reflected once per table when findings are computed, at the end of the block.

- A finding's time is the loop's: from the start of its first statement to the end of
  its last, so it covers the round trips and commits between them (a commit per row
  often costs more than the UPDATE), and whatever else the loop did per row.

The hook does little for an ordinary statement: one dictionary lookup keyed by the SQL
string, whose analysis is cached. ``benchmarks/bench_watch.py`` measures the overhead.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import time
from collections.abc import Sequence
from types import FrameType, TracebackType
from typing import TYPE_CHECKING, Any

import sqlalchemy
from sqlalchemy import Connection, Engine, event, inspect
from sqlalchemy.engine import ExecutionContext
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from setwise.detector.findings import Finding, format_report

if TYPE_CHECKING:
    from setwise.detector.rowshape import RowShape

# setwise.detector.rowshape reads statements with sqlglot, imported (0.05 s) when a watch reads
# its first statement rather than by every program that imports setwise.

DEFAULT_THRESHOLD = 10
"""Rows of one shape at which a loop is reported; see the module docstring for why 10."""

#: Distinct SQL strings whose analysis is kept. A program has far fewer distinct
#: statements than this; SQL with values written inline makes a new string per row,
#: and the cache then starts over rather than grow without end.
SHAPE_CACHE_SIZE = 4096

# The logger keeps the public function's name, wherever the module lives.
logger = logging.getLogger("setwise.watch")

_DETECTOR = os.path.dirname(os.path.abspath(__file__))
_SETWISE = os.path.dirname(_DETECTOR) + os.sep
_HOOKS = frozenset({os.path.abspath(__file__), os.path.join(_DETECTOR, "pytest_plugin.py")})
# setwise's entry points that write one row per call: their statements belong to the caller.
_ONE_ROW_ENTRY_POINTS = frozenset({(os.path.join(_SETWISE, "api", "patch.py"), "patch")})
# SQLAlchemy's own files, the functions it generates at run time, and contextlib.
_PLUMBING = (os.path.dirname(sqlalchemy.__file__) + os.sep, "<sqlalchemy", contextlib.__file__)

Origin = tuple[str, int, str]
"""file, line, function: where a statement came from in the program."""


def watch(
    bind: Session | Engine | Connection | None = None,
    threshold: int = DEFAULT_THRESHOLD,
    *,
    log: bool = True,
) -> Watch:
    """Watch the statements sent through ``bind`` (every engine when None) for loops that
    write one row per statement; use as ``with setwise.watch(engine) as seen: ...``.

    ``threshold`` is the number of rows of one shape that makes a finding. With ``log``
    the report is logged (logger ``setwise.watch``, WARNING) at the end of the block when
    there are findings and the program has configured logging; a program that has not
    prints ``seen.report()`` itself, and Python's fallback would print it a second time.
    """
    if threshold < 1:
        raise ValueError(f"threshold must be at least 1, got {threshold}")
    target: Engine | Connection | type[Engine]
    if bind is None:
        target = Engine
    elif isinstance(bind, Session):
        target = bind.get_bind()
    else:
        target = bind
    return Watch(target, threshold, log=log)


class Watch:
    """The statements seen in a watched block, and the loops among them."""

    def __init__(
        self, target: Engine | Connection | type[Engine], threshold: int, *, log: bool
    ) -> None:
        self.threshold = threshold
        self._target = target
        self._log = log
        self._shapes: dict[str, RowShape | None] = {}
        self._groups: dict[tuple[Engine, str], _Group] = {}
        self._pending: dict[ExecutionContext, tuple[RowShape, Origin, float]] = {}
        self._keys: dict[tuple[Engine, str | None, str], list[tuple[str, ...]]] = {}
        self._epoch = 0
        self._final: list[Finding] | None = None
        self._listening = False
        # Kept so that event.remove gets the very objects event.listen got.
        self._hooks: list[tuple[str, Any, dict[str, bool]]] = [
            ("before_cursor_execute", self._before, {"retval": True}),
            ("after_cursor_execute", self._after, {}),
            ("commit", self._transaction_ended, {}),
            ("rollback", self._transaction_ended, {}),
        ]

    def __enter__(self) -> Watch:
        if self._listening or self._final is not None:
            raise RuntimeError("a Watch can be used for one block only")
        for name, hook, options in self._hooks:
            event.listen(self._target, name, hook, **options)
        self._listening = True
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        for name, hook, _ in self._hooks:
            event.remove(self._target, name, hook)
        self._listening = False
        self._pending.clear()
        self._final = self._collect()
        if self._log and self._final and logger.hasHandlers():
            logger.warning("%s", self.report())

    @property
    def findings(self) -> list[Finding]:
        """The loops found so far (final once the block ends), worst first: most time spent."""
        return list(self._final) if self._final is not None else self._collect()

    def report(self) -> str:
        """The findings as a short text table, worst first, with the replacement for each."""
        return format_report(self.findings, threshold=self.threshold)

    # -- the hooks: cheap for ordinary statements ----------------------------------------

    def _before(
        self,
        connection: Connection,
        cursor: Any,
        statement: str,
        parameters: Any,
        context: ExecutionContext,
        executemany: bool,
    ) -> tuple[str, Any]:
        try:
            shape = self._shapes[statement]
        except KeyError:
            shape = self._learn(statement, connection, context)
        else:
            compiled = shape.compiled if shape is not None else None
            if compiled is not None and compiled is not context.compiled:
                shape = self._learn(statement, connection, context)
        if shape is not None:
            origin = _origin()
            if origin is not None:
                self._pending[context] = (shape, origin, time.perf_counter())
        return statement, parameters

    def _after(
        self,
        connection: Connection,
        cursor: Any,
        statement: str,
        parameters: Any,
        context: ExecutionContext,
        executemany: bool,
    ) -> None:
        pending = self._pending.pop(context, None)
        if pending is None:
            return
        shape, origin, started = pending
        ended = time.perf_counter()
        if shape.compiled is not None:
            rows = context.compiled_parameters  # type: ignore[attr-defined]
        else:
            rows = parameters if executemany else [parameters]
        try:
            key = (connection.engine, shape.shape)
            group = self._groups.get(key)
            if group is None:
                group = self._groups[key] = _Group(
                    shape, connection.engine, statement, rows[0], connection.dialect.paramstyle
                )
            group.add(shape, rows, started, ended, origin, self._epoch)
        except Exception:  # a detector must never break the program it watches
            logger.debug("setwise.watch could not read %r", statement, exc_info=True)

    def _transaction_ended(self, connection: Connection) -> None:
        self._epoch += 1

    def _learn(
        self, statement: str, connection: Connection, context: ExecutionContext
    ) -> RowShape | None:
        compiled = context.compiled
        parameters = getattr(context, "compiled_parameters", None)
        names = list(parameters[0]) if compiled is not None and parameters else []
        from setwise.detector import rowshape

        try:
            shape = rowshape.learn(statement, compiled, names, connection.dialect.paramstyle)
        except Exception:  # a detector must never break the program it watches
            logger.debug("setwise.watch could not read %r", statement, exc_info=True)
            shape = None
        if len(self._shapes) >= SHAPE_CACHE_SIZE:
            self._shapes.clear()
        self._shapes[statement] = shape
        return shape

    # -- findings ------------------------------------------------------------------------

    def _collect(self) -> list[Finding]:
        found = []
        for group in list(self._groups.values()):
            if group.count < self.threshold:
                continue
            key = group.shape.key or self._reflected_key(group)
            if key is not None:
                found.append(group.finding(key))
        return sorted(found, key=lambda f: (f.elapsed_s, f.count), reverse=True)

    def _reflected_key(self, group: _Group) -> tuple[str, ...] | None:
        """The database's key among the columns a text statement pins, if there is one."""
        shape = group.shape
        cache = (group.engine, shape.schema, shape.table)
        if cache not in self._keys:
            self._keys[cache] = _reflect_keys(group.engine, shape.schema, shape.table)
        spelled = {column.lower(): column for column in shape.pinned}
        for key in self._keys[cache]:
            if all(column.lower() in spelled for column in key):
                return tuple(spelled[column.lower()] for column in key)
        return None


class _Group:
    """Statements of one shape on one engine: counts, time, where from, a sample."""

    def __init__(self, shape: RowShape, engine: Engine, sql: str, first: Any, style: str) -> None:
        self.shape = shape
        self.engine = engine
        self.sql = sql
        self.values = shape.named_values(first)
        self.paramstyle = style
        self.first_set = shape.set_values(first)
        self.same = True
        self.count = 0
        self.executions = 0
        self.transactions = 0
        self.epoch = -1
        self.started: float | None = None
        self.ended = 0.0
        self.origins: dict[Origin, int] = {}
        self.sample: list[tuple[Any, ...]] = []

    def add(
        self,
        shape: RowShape,
        rows: Sequence[Any],
        started: float,
        ended: float,
        origin: Origin,
        epoch: int,
    ) -> None:
        self.count += len(rows)
        self.executions += 1
        if self.started is None:
            self.started = started
        self.ended = ended
        if epoch != self.epoch:
            self.transactions += 1
            self.epoch = epoch
        self.origins[origin] = self.origins.get(origin, 0) + len(rows)
        from setwise.detector.rowshape import SHOWN_KEYS

        if len(self.sample) < SHOWN_KEYS:
            for row in rows:
                pinned = shape.pinned_values(row)
                if pinned not in self.sample:
                    self.sample.append(pinned)
                if len(self.sample) == SHOWN_KEYS:
                    break
        if self.same:
            pick, first = shape.set_values, self.first_set
            self.same = all(pick(row) == first for row in rows)

    def finding(self, key: tuple[str, ...]) -> Finding:
        shape = self.shape
        origins = sorted(self.origins.items(), key=lambda item: item[1], reverse=True)
        return Finding(
            table=f"{shape.schema}.{shape.table}" if shape.schema else shape.table,
            kind=shape.kind,
            statement=shape.shape,
            count=self.count,
            executions=self.executions,
            transactions=self.transactions,
            elapsed_s=self.ended - (self.started or self.ended),
            locations=tuple(_where(origin) for origin, _ in origins),
            same_values=self.same,
            suggestion=self._suggestion(key),
        )

    def _suggestion(self, key: tuple[str, ...]) -> str:
        try:
            from setwise.detector import rowshape

            return rowshape.suggest(
                self.shape,
                key,
                sql=self.sql,
                values=self.values,
                sample=self.sample,
                rows=self.count,
                same_values=self.same,
                paramstyle=self.paramstyle,
            )
        except Exception:  # a detector must never break the program it watches
            logger.debug("setwise.watch could not write a suggestion", exc_info=True)
            if self.shape.kind == "DELETE":
                call = "setwise.delete(bind, delete(...))"
            else:
                call = "setwise.update(bind, ...)" if self.same else "setwise.apply(bind, ...)"
            return f"{call}  # keyed by {', '.join(key)}"


def _origin() -> Origin | None:
    """The first frame outside SQLAlchemy and setwise; None when setwise sent the statement."""
    frame = sys._getframe(2)
    while frame is not None:
        code = frame.f_code
        kind = _kind(code.co_filename)
        if kind is _PROGRAM:
            return (code.co_filename, frame.f_lineno or 0, code.co_name)
        if kind is _SETWISE_OWN:
            entry = _entry_point(frame)
            if (entry.f_code.co_filename, entry.f_code.co_name) not in _ONE_ROW_ENTRY_POINTS:
                return None
            frame = entry
        frame = frame.f_back  # type: ignore[assignment]
    return ("<unknown>", 0, "<unknown>")


def _entry_point(frame: FrameType) -> FrameType:
    """The outermost of the setwise frames from ``frame`` up: what the program called."""
    while frame.f_back is not None and _kind(frame.f_back.f_code.co_filename) is _SETWISE_OWN:
        frame = frame.f_back
    return frame


def _kind(filename: str) -> str:
    return _FILES.get(filename) or _classify(filename)


_PROGRAM, _SETWISE_OWN, _PASSED = "program", "setwise", "passed"
# What each source file is, asked once per file: the walk runs for every single-row
# statement, and a dictionary lookup per frame is several times cheaper than the tests.
_FILES: dict[str, str] = {}


def _classify(filename: str) -> str:
    if filename.startswith(_SETWISE):
        kind = _PASSED if filename in _HOOKS else _SETWISE_OWN
    else:
        kind = _PASSED if filename.startswith(_PLUMBING) else _PROGRAM
    _FILES[filename] = kind
    return kind


def _where(origin: Origin) -> str:
    filename, line, function = origin
    here = os.getcwd() + os.sep
    shown = filename[len(here) :] if filename.startswith(here) else filename
    return f"{shown}:{line} in {function}"


def _reflect_keys(engine: Engine, schema: str | None, table: str) -> list[tuple[str, ...]]:
    """The primary key, unique constraints and unique indexes of ``table``, as reflected."""
    try:
        inspector = inspect(engine)
        for name in dict.fromkeys((table, table.lower())):
            if not inspector.has_table(name, schema=schema):
                continue
            keys = [tuple(inspector.get_pk_constraint(name, schema)["constrained_columns"])]
            keys += [
                tuple(u["column_names"]) for u in inspector.get_unique_constraints(name, schema)
            ]
            keys += [
                tuple(c for c in i["column_names"] if c is not None)
                for i in inspector.get_indexes(name, schema)
                if i["unique"]
            ]
            return [key for key in keys if key]
    except SQLAlchemyError:
        logger.debug("setwise.watch could not reflect %r", table, exc_info=True)
    return []
