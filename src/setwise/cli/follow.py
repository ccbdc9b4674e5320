"""``setwise show RUN --follow``: another process's run, redrawn from its records.

Every ``REFRESH_SECONDS`` the run's record, chunks and control row are read again
(``setwise.run_details``, ``setwise.run_control``): on a terminal a Rich Live view is
redrawn (progress, rate, ETA, state, the last chunks); elsewhere one line is printed
whenever what it says changes, for a log or a test. Following ends when the run ends,
with the exit code of its status; Ctrl-C ends the following and leaves the run alone.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Sequence

import typer
from rich.console import Group
from rich.live import Live
from rich.text import Text
from sqlalchemy import Engine

import setwise
from setwise.cli.render import counted, out, rich_table
from setwise.journal.states import DONE, FAILED, INTERRUPTED, PARTLY_REVERTED, REVERTED, RUNNING

#: How often the records are read again: often enough for a chunk of the default 0.5 s
#: target to show as it commits, and two reads by key a second cost the database nothing.
REFRESH_SECONDS = 0.5

#: Chunks the view lists, newest last.
LAST_CHUNKS = 5

#: The exit code once the run ends with each status: 0 done (or reverted since), 1 failed
#: or abandoned, 130 interrupted (Ctrl-C or `setwise stop`: it resumes).
EXIT_CODES = {DONE: 0, REVERTED: 0, PARTLY_REVERTED: 0, FAILED: 1, INTERRUPTED: 130}


def follow(engine: Engine, run_id: str) -> None:
    """Follow run ``run_id`` until it ends; exit with the code of how it ended."""
    live = Live(console=out, auto_refresh=False) if out.is_terminal else None
    said = ""
    try:
        if live is not None:
            live.start()
        while True:
            info, chunks = setwise.run_details(engine, run_id)
            control = setwise.run_control(engine, run_id)
            if live is not None:
                live.update(view(info, chunks, control), refresh=True)
            else:  # a line when the state or the chunks move, not for each new rate
                seen = summary(info, control, rate=False)
                if seen != said:
                    out.print(summary(info, control), markup=False, soft_wrap=True)
                    out.file.flush()  # a pipe or a log sees each line as it is said
                    said = seen
            if info.status != RUNNING:
                break
            time.sleep(REFRESH_SECONDS)
    except KeyboardInterrupt:
        if live is not None:
            live.stop()
        out.print(f"Stopped following; run {run_id} goes on as it was.", markup=False)
        raise typer.Exit(130) from None
    if live is not None:
        live.stop()
    raise typer.Exit(EXIT_CODES.get(info.status, 1))


def summary(info: setwise.RunInfo, control: setwise.RunControl | None, *, rate: bool = True) -> str:
    """One line: the run's state, chunks, rows, and with ``rate`` its rate and ETA."""
    done = info.matched + info.missing
    total = control.rows_total if control is not None else None
    rows = f"{done:,}/{total:,} rows" if total else f"{counted(done, 'row')}"
    line = f"run {info.run_id}: {state(info, control)}, {counted(info.chunks, 'chunk')}, {rows}"
    if info.status == RUNNING and rate:
        elapsed = (_now() - info.started_at).total_seconds()
        if done and elapsed > 0:
            per_second = done / elapsed
            line += f", {per_second:,.0f} rows/s"
            if total and total > done:
                line += f", about {(total - done) / per_second:,.0f} s to go"
    return line


def state(info: setwise.RunInfo, control: setwise.RunControl | None) -> str:
    """What the run is doing: its status, or while running: paused and why, pausing,
    stopping; and the values it was tuned to."""
    if info.status != RUNNING or control is None:
        return info.status
    if control.command == "stop":
        said = "stopping after its current chunk"
    elif control.paused is not None:
        said = f"paused: {control.paused}"
    elif control.command == "pause":
        said = "pausing after its current chunk"
    else:
        said = RUNNING
    tuned = ", ".join(f"{name} {value:g}" for name, value in control.tuned().items())
    return f"{said} (tuned: {tuned})" if tuned else said


def view(
    info: setwise.RunInfo,
    chunks: Sequence[setwise.ChunkInfo],
    control: setwise.RunControl | None,
) -> Group:
    """The live view: the summary line, and the last chunks with their times."""
    listing = rich_table("chunk", "rows", "changed", "seconds", "retries")
    for chunk in chunks[-LAST_CHUNKS:]:
        listing.add_row(
            f"{chunk.chunk:,}",
            f"{chunk.rows:,}",
            f"{chunk.changed:,}",
            f"{chunk.seconds:.3f}",
            f"{chunk.retries:,}",
        )
    head = Text(f"{info.kind} of {info.table!r}: {summary(info, control)}")
    return Group(head, listing) if chunks else Group(head)


def verified_fact(control: setwise.RunControl | None) -> tuple[str, str] | None:
    """The line of ``show`` that says what verifying the run found, if it was verified."""
    if control is None or control.verified is None:
        return None
    found = control.verified
    rows, mismatched = int(found.get("rows", 0)), int(found.get("mismatched", 0))
    at = found.get("at", "")
    if mismatched == 0:
        return "verified", f"clean: {counted(rows, 'row')} hold what the run wrote ({at})"
    return "verified", f"FAILED: {mismatched:,} of {counted(rows, 'row')} differ ({at})"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)
