"""Commands to a running run from another process, and what the run says back.

A chunked run has a row in ``{prefix}control`` (``RunTables.control``) from its start
(and again from each resume, cleared): another process writes a ``command`` there
(``pause``, ``stop``) or tuned chunk sizes and throttle; the run reads its row between
chunks (``setwise.engine.control``), writes ``paused`` while it waits, and a verify
writes what it found (``verified``). No socket, nothing but the database both reach.

Each command is a compare-and-set: one UPDATE whose WHERE names the command it starts
from and that the run is ``running`` (an EXISTS on its record), so a command never lands
on a run that has ended, and two commands at once never both take. What each state
allows is ``setwise.journal.states``'s (``control_refusal``).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, exists, insert, or_, select, update

from setwise.journal import states
from setwise.journal.runtables import RunTables
from setwise.journal.states import CONTINUE, PAUSE, RUNNING, STOP, TUNE

#: The longest ``paused`` reason kept (its column's width).
REASON_CHARS = 255


@dataclass(frozen=True)
class RunControl:
    """A run's control row as read: the command given to it, what it was tuned to, why
    it waits now, and what its verify found."""

    run_id: str
    command: str | None
    """``"pause"``, ``"stop"``, or None: go on."""
    chunk_rows: int | None
    chunk_seconds: float | None
    throttle_seconds: float | None
    """Tuned values (``setwise tune``); None: as the run was started."""
    paused: str | None
    """Why the run waits now, as the run itself wrote it; None while it writes."""
    rows_total: int | None
    """The rows the run goes through in all, when it counted them (for an ETA)."""
    verified: dict[str, Any] | None
    """What verifying the run found: ``rows`` compared, ``mismatched`` rows, ``at``."""
    changed_at: dt.datetime | None

    def tuned(self) -> dict[str, float | int]:
        """The tuned values that are set, by option name."""
        found = {
            "chunk_rows": self.chunk_rows,
            "chunk_seconds": self.chunk_seconds,
            "throttle_seconds": self.throttle_seconds,
        }
        return {name: value for name, value in found.items() if value is not None}


def opened(connection: Connection, tables: RunTables, run_id: str) -> None:
    """Give run ``run_id`` a control row with no command and nothing tuned: when it
    starts, and when a process takes it up again (a command or a tuning was for the
    process that ran it before)."""
    control = tables.control
    blank: dict[str, Any] = dict.fromkeys(
        ("command", "chunk_rows", "chunk_seconds", "throttle_seconds", "paused"), None
    )
    blank["changed_at"] = _now()
    result = connection.execute(update(control).where(control.c.run_id == run_id).values(blank))
    if result.rowcount != 1 and read(connection, tables, run_id) is None:
        connection.execute(insert(control).values(run_id=run_id, **blank))


def read(connection: Connection, tables: RunTables, run_id: str) -> RunControl | None:
    """Run ``run_id``'s control row, or None when it has none."""
    control = tables.control
    row = connection.execute(select(control).where(control.c.run_id == run_id)).first()
    if row is None:
        return None
    found = row._mapping
    return RunControl(
        run_id=found["run_id"],
        command=found["command"],
        chunk_rows=None if found["chunk_rows"] is None else int(found["chunk_rows"]),
        chunk_seconds=found["chunk_seconds"],
        throttle_seconds=found["throttle_seconds"],
        paused=found["paused"],
        rows_total=None if found["rows_total"] is None else int(found["rows_total"]),
        verified=json.loads(found["verified"]) if found["verified"] else None,
        changed_at=found["changed_at"],
    )


def send(
    connection: Connection, tables: RunTables, run_id: str, action: str, **tuned: Any
) -> RunControl:
    """Give running run ``run_id`` the command ``action`` (``PAUSE``, ``CONTINUE``,
    ``STOP``, or ``TUNE`` with ``tuned`` values), as a compare-and-set; the control row
    as it is after. ``RunStateError`` when the run's state refuses it."""
    control, runs = tables.control, tables.runs
    starts_from = {
        PAUSE: (None, PAUSE),
        CONTINUE: (PAUSE,),
        STOP: (None, PAUSE, STOP),
        TUNE: (None, PAUSE),
    }[action]
    values: dict[str, Any] = {"changed_at": _now()}
    if action == TUNE:
        values |= {name: value for name, value in tuned.items() if value is not None}
    else:
        values["command"] = {PAUSE: PAUSE, CONTINUE: None, STOP: STOP}[action]
    named = [c for c in starts_from if c is not None]
    command = control.c.command
    allowed = or_(command.in_(named), *([command.is_(None)] if None in starts_from else []))
    running = exists().where(runs.c.run_id == run_id, runs.c.status == RUNNING)
    result = connection.execute(
        update(control).where(control.c.run_id == run_id, allowed, running).values(values)
    )
    found = read(connection, tables, run_id)
    took = result.rowcount == 1 if connection.dialect.supports_sane_rowcount else None
    if took is None:  # no trustworthy count: the command took when the row shows it
        took = found is not None and all(
            getattr(found, name) == value for name, value in values.items() if name != "changed_at"
        )
    if took and found is not None:
        return found
    info = tables.get(connection, run_id)
    raise states.state_error(
        states.control_refusal(info, action, None if found is None else found.command),
        info,
        action,
    )


def note_paused(connection: Connection, tables: RunTables, run_id: str, reason: str | None) -> None:
    """Say why run ``run_id`` waits now (None: it goes on), for ``setwise show``."""
    control = tables.control
    kept = None if reason is None else reason[:REASON_CHARS]
    connection.execute(
        update(control).where(control.c.run_id == run_id).values(paused=kept, changed_at=_now())
    )


def note_total(connection: Connection, tables: RunTables, run_id: str, rows: int) -> None:
    """Say how many rows run ``run_id`` goes through in all, for ``setwise show --follow``."""
    control = tables.control
    connection.execute(update(control).where(control.c.run_id == run_id).values(rows_total=rows))


def note_verified(
    connection: Connection, tables: RunTables, run_id: str, found: dict[str, Any]
) -> None:
    """Keep what verifying run ``run_id`` ``found`` (rows, mismatched), with the time."""
    control = tables.control
    text = json.dumps({**found, "at": f"{_now():%Y-%m-%d %H:%M:%S}"})
    result = connection.execute(
        update(control).where(control.c.run_id == run_id).values(verified=text)
    )
    if result.rowcount != 1 and read(connection, tables, run_id) is None:
        connection.execute(insert(control).values(run_id=run_id, verified=text, changed_at=_now()))


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)
