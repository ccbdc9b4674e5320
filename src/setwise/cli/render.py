"""Results as the terminal shows them: Rich tables, a progress bar, JSON with ``--json``.

Keys and values show as a person writes them (``setwise.shown``); a database shows by
``DatabaseURL.shown``, its password masked.
"""

from __future__ import annotations

import json
import statistics
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table as RichTable
from rich.text import Text

import setwise
from setwise.cli.dburl import DatabaseURL
from setwise.journal.states import PARTLY_REVERTED
from setwise.shown import plain, shown

#: Output width when stdout is not a terminal: wide enough that no table column or SQL
#: line is cut for a script or a log (Rich would assume 80 columns).
PIPE_WIDTH = 200

out = Console(highlight=False, width=None if sys.stdout.isatty() else PIPE_WIDTH)
err = Console(stderr=True, highlight=False)


# -- progress ---------------------------------------------------------------------------


class _RateColumn(ProgressColumn):
    """Rows per second over the recent chunks."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:,.0f} rows/s" if speed else "", style="cyan")


@contextmanager
def progress_bar(
    *, enabled: bool, label: str = "rows"
) -> Iterator[Callable[[setwise.Progress], None] | None]:
    """A ``progress=`` callback drawing a bar with rate and ETA, when stdout is a terminal."""
    if not enabled or not out.is_terminal:
        yield None
        return
    bar = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        _CountColumn(),
        _RateColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=out,
        transient=True,
    )
    task = bar.add_task(label, total=None)
    phase = ""

    def advance(step: setwise.Progress) -> None:
        nonlocal phase
        # A new phase is a new count: its rate and time left start afresh.
        show = bar.reset if step.phase != phase else bar.update
        phase = step.phase
        show(
            task,
            total=step.rows_total,
            completed=step.rows_done,
            description=progress_label(step, label),
        )

    with bar:
        yield advance


def progress_label(step: setwise.Progress, label: str = "rows") -> str:
    """What the bar says the run is doing: its table, its phase, the chunk of about how
    many (``books: merging, chunk 3 of about 40``), and why it waits while it does
    (``, paused: replica lag 4.2 s > 1 s``)."""
    where = f"{step.table}: " if step.table else ""
    paused = f", paused: {step.paused}" if step.paused is not None else ""
    if not step.chunk:
        return f"{where}{step.phase}{paused}"
    about = step.chunks_about
    of = f" of about {about:,}" if about is not None else ""
    return f"{where}{step.phase}, chunk {step.chunk:,}{of}{paused}"


class _CountColumn(ProgressColumn):
    """Rows done of rows total, with thousands separators ("12,500/100,000 rows")."""

    def render(self, task: Task) -> Text:
        done = f"{int(task.completed):,}"
        total = f"/{int(task.total):,}" if task.total is not None else ""
        return Text(f"{done}{total} rows", style="green")


# -- results to output ----------------------------------------------------------------


def show_plan(
    found: setwise.Plan, database: DatabaseURL, as_json: bool, *, sql: bool = False
) -> None:
    """The plan: counts, a sample of the rows that would change, the keys not found,
    warnings; with ``sql``, the SQL of a chunk and the EXPLAIN too (JSON: everything)."""
    if as_json:
        print_json(found)
        return
    out.print(f"Plan for {found.table!r} on {database.shown}", markup=False, soft_wrap=True)
    changing = "would delete" if found.deletes else "would change"
    counts = {"matched": found.matched, changing: found.would_change}
    counts["unchanged"] = found.unchanged
    if found.staged:
        counts |= {"missing": found.missing, "conflicts": len(found.conflicts)}
        counts["rows read"] = found.staged
    if found.outside:
        counts["outside --where"] = found.outside
    if found.would_insert:
        counts["would insert"] = found.would_insert
    listing = rich_table("rows", "count")
    for name, number in counts.items():
        listing.add_row(name, f"{number:,}")
    out.print(listing)
    out.print(f"Strategy: {found.strategy}; {_chunk_count(found)}", markup=False)
    if found.missing_keys:
        keys = ", ".join(shown(k) for k in found.missing_keys[:10])
        more = f" and {found.missing - 10:,} more" if found.missing > 10 else ""
        out.print(f"Keys not in {found.table!r}: {keys}{more}", markup=False, soft_wrap=True)
    _show_sample(found)
    if sql:
        _section("SQL of the first chunk" if found.chunks > 1 else "SQL, each chunk", found.sql)
        _section("EXPLAIN", found.explain)
    _section("Warnings", [f"! {warning.message}" for warning in found.warnings], style="yellow")
    verb = "Would delete" if found.deletes else "Would change"
    inserts = f" and insert {found.would_insert:,}" if found.would_insert else ""
    out.print(f"{verb} {counted(found.would_change, 'row')}{inserts} in {_chunk_count(found)}.")


def _show_sample(found: setwise.Plan) -> None:
    """The sample of rows that would change, one line each: key, then column old -> new."""
    if not found.sample:
        return
    of = f"the first {len(found.sample):,} of {found.would_change:,}, by key"
    if len(found.sample) >= found.would_change:
        of = f"{'all ' if found.would_change > 1 else ''}{counted(found.would_change, 'row')}"
    names = ", ".join(found.sample_key)
    rows = []
    for row in found.sample:
        changes = ", ".join(f"{c.column}: {shown(c.old)} → {shown(c.new)}" for c in row.changes)
        rows.append(f"{names} {shown(row.key)}  {changes}")
    _section(f"Rows that would {'be deleted' if found.deletes else 'change'} ({of})", rows)


def _chunk_count(found: setwise.Plan) -> str:
    return f"{'about ' if found.chunks_estimated else ''}{counted(found.chunks, 'chunk')}"


def show_report(report: setwise.Report, database: DatabaseURL, as_json: bool) -> None:
    if as_json:
        print_json(report)
        return
    numbers = {"matched": report.matched, "changed": report.changed}
    numbers |= {"unchanged": report.unchanged, "missing": report.missing}
    if report.inserted:
        numbers["inserted"] = report.inserted
    counts = rich_table(*numbers, "strategy")
    counts.add_row(*(f"{n:,}" for n in numbers.values()), report.strategy)
    out.print(counts)
    if report.conflicts:
        keys = ", ".join(shown(k) for k in report.conflicts[:10])
        out.print(f"Not written, version moved: {keys}", markup=False, style="yellow")
    if report.run_id is not None:
        undo = database.command(["revert", report.run_id])
        out.print(f"Run {report.run_id}: undo it with `{undo}`", markup=False, soft_wrap=True)
        say_left_out(database)
    verb = "Deleted" if report.deleted else "Changed"
    inserted = f", inserted {report.inserted:,}," if report.inserted else ""
    out.print(
        f"{verb} {counted(report.changed, 'row')}{inserted} in "
        f"{counted(report.chunks, 'chunk')} ({report.elapsed_s:.2f} s)."
    )
    if report.verified is not None and report.verified.clean:
        rows = counted(report.verified.rows, "row")
        out.print(f"Verified: the {rows} it wrote hold what it wrote.")


def show_run(
    info: setwise.RunInfo,
    chunks: Sequence[setwise.ChunkInfo],
    more: Sequence[tuple[str, str]] = (),
) -> None:
    """One run (``setwise show``); ``more``: facts of its control row (state, verify)."""
    out.print(f"Run {info.run_id}: {info.kind} of {info.table!r}, {info.status}", markup=False)
    facts = [
        ("started", f"{info.started_at:%Y-%m-%d %H:%M:%S}"),
        ("finished", f"{info.finished_at:%Y-%m-%d %H:%M:%S}" if info.finished_at else "-"),
        ("actor", info.actor or "-"),
        ("columns", ", ".join(info.columns)),
    ]
    facts += source_facts(info.source)
    if info.reverts:
        facts.append(("reverts", info.reverts))
    if info.reverted_by:
        facts.append(("reverted by", info.reverted_by))
    if info.status == PARTLY_REVERTED:
        left = (
            "rows another writer changed while a revert ran were left as that writer left "
            f"them (the revert's conflicts); `setwise revert {info.run_id} --force` writes them"
        )
        facts.append(("reverted", f"partly: {left}"))
    if info.error:
        facts.append(("error", info.error))
    facts += more
    for name, value in facts:
        out.print(f"  {name:<12} {value}", markup=False, soft_wrap=True)
    numbers = {"matched": info.matched, "changed": info.changed, "unchanged": info.unchanged}
    numbers |= {"missing": info.missing, "conflicts": info.conflicts}
    if info.inserted:
        numbers["inserted"] = info.inserted
    numbers |= {"chunks": info.chunks, "retries": info.retries}
    counts = rich_table(*numbers)
    counts.add_row(*(f"{n:,}" for n in numbers.values()))
    out.print(counts)
    if chunks:
        seconds = [c.seconds for c in chunks]
        rows = sum(c.rows for c in chunks)
        out.print(
            f"Chunks: {len(chunks):,}, {sum(seconds):.2f} s in all, median "
            f"{statistics.median(seconds):.3f} s, slowest {max(seconds):.3f} s "
            f"({rows / sum(seconds):,.0f} rows/s)"
            if sum(seconds)
            else f"Chunks: {len(chunks):,}"
        )
        out.print(f"Seconds per chunk: {sparkline(seconds)}", markup=False)


def source_facts(source: dict[str, Any] | None) -> list[tuple[str, str]]:
    """The lines of ``show`` that say what a run read (``RunInfo.source``)."""
    if source is None:
        return []
    if "path" in source:
        facts = [("source", "standard input" if source["path"] == "-" else source["path"])]
        if "size" in source:
            facts.append(("size", f"{counted(source['size'], 'byte')}"))
        if "sha256" in source:
            facts.append(("sha256", source["sha256"]))
        options = ", ".join(f"{k}={v!r}" for k, v in (source.get("options") or {}).items())
        facts.append(
            ("format", f"{source.get('format') or '-'}{f' ({options})' if options else ''}")
        )
        return facts
    if "rows" in source:
        return [("source", str(source["rows"]))]
    facts = [("source", source["text"])] if "text" in source else []
    if "sql" in source:
        facts.append(("sql", " ".join(str(source["sql"]).split())))
    return facts


#: Block characters of rising height, for a sparkline.
BLOCKS = "▁▂▃▄▅▆▇█"
#: Widest sparkline: more chunks than this are shown as the slowest of each group, so
#: the line fits an 80-column terminal beside its label.
SPARK_WIDTH = 60


def sparkline(values: Sequence[float], width: int = SPARK_WIDTH) -> str:
    """``values`` as block characters, lowest to highest; groups keep their maximum."""
    if not values:
        return ""
    if len(values) > width:
        size = len(values) / width
        values = [
            max(values[int(i * size) : max(int(i * size) + 1, int((i + 1) * size))])
            for i in range(width)
        ]
    top = max(values)
    if top <= 0:
        return BLOCKS[0] * len(values)
    return "".join(BLOCKS[min(len(BLOCKS) - 1, int(v / top * len(BLOCKS)))] for v in values)


def show_bench(results: Sequence[Any], rows: int, database: DatabaseURL, repeats: int) -> None:
    from setwise.cli.bench import baseline

    base = baseline(results)
    listing = rich_table("case", "seconds", "rows/s", f"vs {base.name if base else 'ORM'}")
    listing.title = f"{rows:,} rows changed by key on {database.shown}"
    listing.caption = f"each case's fastest of {counted(repeats, 'run')}, after one untimed"
    for result in results:
        if result.seconds is None:
            listing.add_row(result.name, "-", "-", result.note)
            continue
        listing.add_row(
            result.name,
            f"{result.seconds:.3f}",
            f"{result.rows_per_second:,.0f}",
            f"{result.ratio:.1f}x" if result.ratio else "-",
        )
    out.print(listing)


def rich_table(*headers: str) -> RichTable:
    table = RichTable()
    for header in headers:
        if header in ("strategy", "run", "table", "kind", "status", "started", "case", "rows"):
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


def print_json(result: Any) -> None:
    """``result`` as one JSON document on stdout, values as ``shown`` writes them."""
    typer.echo(json.dumps(plain(result), indent=2))


def counted(number: int, noun: str) -> str:
    return f"{number:,} {noun}{'' if number == 1 else 's'}"


def say_left_out(database: DatabaseURL, console: Console = out) -> None:
    """Under a printed command: where the password left out of it will be read from."""
    if database.left_out:
        console.print(database.left_out, markup=False, soft_wrap=True)
