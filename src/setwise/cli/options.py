"""The command line's options: each declared once (an ``Annotated`` alias, its value
named by a metavar, see ``help``), and read into the arguments the library takes.

Options that do not make sense together raise ``UsageError`` (exit code 2).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import typer

DEFAULT_DB = "sqlite:///setwise.db"

DB_HELP = (
    "The database, e.g. postgresql+psycopg://user@host/name; before or after the command "
    f"(default: SETWISE_DB, else {DEFAULT_DB} in the working directory)."
)
Db = Annotated[str | None, typer.Option("--db", metavar="URL", help=DB_HELP)]
Debug = Annotated[bool, typer.Option("--debug", help="Show the full traceback of an error.")]
AsJson = Annotated[
    bool, typer.Option("--json", help="Print JSON for programs, errors included, not tables.")
]
TableName = Annotated[
    str, typer.Argument(metavar="TABLE", help="The table, as the database names it.")
]
RunId = Annotated[
    str, typer.Argument(metavar="RUN", help="A run id, as `setwise runs` lists them.")
]
Sets = Annotated[
    list[str] | None,
    typer.Option(
        "--set",
        metavar="EXPR",
        help='An assignment, "price = price * 1.10"; repeat it for more columns.',
    ),
]
Where = Annotated[
    str | None,
    typer.Option(
        "--where",
        metavar="EXPR",
        help="""Which rows, as SQL on the table's columns: "genre = 'fiction'".""",
    ),
]
AllRows = Annotated[bool, typer.Option("--all-rows", help="Every row of the table (no --where).")]
DeleteRows = Annotated[
    bool,
    typer.Option("--delete", help="Plan the DELETE of the rows --where finds (or --all-rows)."),
]
From = Annotated[
    str | None,
    typer.Option(
        "--from",
        metavar="FILE",
        help="A file of changes, one row per key: .csv, .tsv, .jsonl or .parquet; - reads "
        "standard input (CSV unless --format says otherwise).",
    ),
]
Keys = Annotated[
    list[str] | None,
    typer.Option(
        "--key",
        metavar="COLUMN",
        help="The column that finds each row (default: the primary key); repeat it "
        "for a composite key.",
    ),
]
CsvNull = Annotated[
    str,
    typer.Option(
        "--csv-null", metavar="TEXT", help="The CSV cell text that means NULL (default: empty)."
    ),
]
Format = Annotated[
    str | None,
    typer.Option(
        "--format",
        metavar="csv|tsv|jsonl|parquet",
        help="How --from is written (default: told by the file's name; CSV for -).",
    ),
]
MissingKeys = Annotated[
    str,
    typer.Option(
        "--missing",
        metavar="insert|error|report",
        help="What rows of --from whose keys have no row do: insert them, fail before "
        "writing anything (listing them), or report them (the default).",
    ),
]
Delimiter = Annotated[
    str | None,
    typer.Option(
        "--delimiter",
        metavar="CHAR",
        help="The character between CSV fields (default: a comma; tab for .tsv; \\t or tab "
        "for a tab).",
    ),
]
Encoding = Annotated[
    str,
    typer.Option(
        "--encoding", metavar="NAME", help="The text encoding of --from: latin-1, cp1252..."
    ),
]
DateFormat = Annotated[
    str | None,
    typer.Option(
        "--date-format",
        metavar="FORMAT",
        help="How --from writes dates, in strptime codes (%d/%m/%Y), when not ISO 8601.",
    ),
]
ChunkRows = Annotated[
    str | None,
    typer.Option(
        "--chunk-rows",
        metavar="N|auto",
        help="Write in chunks of N rows, each its own short transaction; auto sizes them "
        "to --chunk-seconds.",
    ),
]
ChunkSeconds = Annotated[
    float,
    typer.Option("--chunk-seconds", metavar="SECONDS", help="The time an auto chunk aims at."),
]
Throttle = Annotated[
    float,
    typer.Option("--throttle", metavar="SECONDS", help="Seconds to pause between chunks."),
]
Verify = Annotated[
    bool,
    typer.Option(
        "--verify",
        help="After the run, read the rows it wrote again and compare them with what it "
        "wrote; exit 1 when one differs.",
    ),
]
NoJournal = Annotated[
    bool,
    typer.Option(
        "--no-journal", help="Keep no old values: faster, but the run cannot be reverted."
    ),
]
Resume = Annotated[
    str | None,
    typer.Option("--resume", metavar="RUN", help="Go on with an interrupted or failed run."),
]
Actor = Annotated[
    str | None,
    typer.Option("--actor", metavar="NAME", help="Who runs this, for the journal (default: you)."),
]
PlanTimeout = Annotated[
    float,
    typer.Option(
        "--plan-timeout",
        metavar="SECONDS",
        help="How long each statement of the plan may count rows before it is stopped; "
        "0 for no limit.",
    ),
]
Yes = Annotated[
    bool, typer.Option("--yes", "-y", help="Go ahead without showing the plan and asking.")
]

# -- guards, stamps and the review of a plan (issue 21, items 3 and 4) -----------------
MaxRows = Annotated[
    int | None,
    typer.Option(
        "--max-rows",
        metavar="N",
        min=0,
        help="Refuse the change, writing nothing, if it would change more than N rows.",
    ),
]
ExpectRows = Annotated[
    int | None,
    typer.Option(
        "--expect-rows",
        metavar="N",
        min=0,
        help="Refuse the change, writing nothing, if it matches fewer than N rows.",
    ),
]
StampColumn = Annotated[
    str | None,
    typer.Option(
        "--stamp-column",
        metavar="COLUMN",
        help="A column every changed row gets the run's start time in.",
    ),
]
ActorColumn = Annotated[
    str | None,
    typer.Option(
        "--actor-column",
        metavar="COLUMN",
        help="A column every changed row gets --actor in (default: you).",
    ),
]
Sample = Annotated[
    int,
    typer.Option(
        "--sample",
        metavar="N",
        min=0,
        help="How many of the rows that would change the plan shows, old -> new (0: none).",
    ),
]
ShowSql = Annotated[
    bool,
    typer.Option("--sql", help="Show the plan's SQL of a chunk and the database's EXPLAIN too."),
]
DryRun = Annotated[
    bool,
    typer.Option("--dry-run", help="Show the plan (as `setwise plan` does) and write nothing."),
]

# -- health signals, read between chunks (issue 25) ------------------------------------
MaxLag = Annotated[
    float | None,
    typer.Option(
        "--max-lag",
        metavar="SECONDS",
        help="Wait before a chunk while a replica lags more than this: as the primary "
        "reports it (PostgreSQL), or read on each --replica.",
    ),
]
Replicas = Annotated[
    list[str] | None,
    typer.Option(
        "--replica",
        metavar="URL",
        help="A replica to read --max-lag on (repeat it for more); MariaDB needs it.",
    ),
]
MaxActiveSessions = Annotated[
    int | None,
    typer.Option(
        "--max-active-sessions",
        metavar="N",
        min=0,
        help="Wait while more than N other sessions are running a statement.",
    ),
]
MaxFlowControl = Annotated[
    float | None,
    typer.Option(
        "--max-flow-control",
        metavar="SHARE",
        help="Galera: wait while flow control paused replication more than this share "
        "(0 to 1) of the time since the last check.",
    ),
]
WaitForAutovacuum = Annotated[
    bool,
    typer.Option(
        "--wait-for-autovacuum", help="PostgreSQL: wait while autovacuum works on the table."
    ),
]
ThrottleQuery = Annotated[
    str | None,
    typer.Option(
        "--throttle-query",
        metavar="SQL",
        help="Wait while this query's first value is not 0 (nor NULL, nor empty).",
    ),
]
ThrottleFile = Annotated[
    str | None,
    typer.Option("--throttle-file", metavar="FILE", help="Wait while this file exists."),
]
MaxWait = Annotated[
    float | None,
    typer.Option(
        "--max-wait",
        metavar="SECONDS",
        help="Stop the run (interrupted, resumable) when one wait lasts this long.",
    ),
]
CheckInterval = Annotated[
    float | None,
    typer.Option(
        "--check-interval",
        metavar="SECONDS",
        help="Read the signals at most this often, and this often while waiting (default 1).",
    ),
]


def health_options(params: dict[str, Any]) -> dict[str, Any]:
    """The health signals a chunked run waits on (``setwise.update``'s ``**health``),
    from a command's parsed ``params`` (the options above, under their names there)."""
    given = {
        "max_lag_seconds": params["max_lag"],
        "replica_urls": params["replicas"] or None,
        "max_active_sessions": params["max_active_sessions"],
        "max_flow_control": params["max_flow_control"],
        "wait_for_autovacuum": params["wait_for_autovacuum"],
        "throttle_query": params["throttle_query"],
        "throttle_file": params["throttle_file"],
        "max_wait": params["max_wait"],
        "check_interval": params["check_interval"],
    }
    return {k: v for k, v in given.items() if v is not None and v is not False}


def guard_options(
    max_rows: int | None,
    expect_rows: int | None,
    stamp_column: str | None,
    actor_column: str | None,
) -> dict[str, Any]:
    """The guards and audit stamps of a run, from their options."""
    options: dict[str, Any] = {"max_rows": max_rows, "expect_rows": expect_rows}
    return options | {"stamp_column": stamp_column, "actor_column": actor_column}


def missing_options(missing: str, source: str | None) -> dict[str, Any]:
    """``missing`` for a changeset's run (--missing goes with --from)."""
    if missing not in ("insert", "error", "report"):
        raise UsageError(f"--missing {missing}: say insert, error or report")
    if missing == "report":
        return {}
    if source is None:
        raise UsageError("--missing goes with --from FILE: --set changes rows that exist")
    return {"missing": missing}


class UsageError(Exception):
    """Options that do not make sense together; exit code 2."""


def run_options(
    chunk_rows: str | None,
    chunk_seconds: float,
    throttle: float,
    no_journal: bool,
    resume: str | None,
    actor: str | None,
) -> dict[str, Any]:
    """The keyword arguments every run takes, from their options."""
    options = chunk_options(chunk_rows, chunk_seconds, throttle)
    options["journal"] = not no_journal
    if resume is not None:
        options["resume"] = resume
    if actor is not None:
        options["actor"] = actor
    return options


#: How --delimiter names a tab, which a shell makes hard to type.
TAB_NAMES = ("\\t", "tab", "\t")


def reading_options(
    csv_null: str,
    format: str | None,
    delimiter: str | None,
    encoding: str,
    date_format: str | None,
) -> dict[str, Any]:
    """How ``plan`` and ``apply`` read --from, as their library arguments."""
    if format is not None and format.lower() not in ("csv", "tsv", "jsonl", "parquet"):
        raise UsageError(f"--format takes csv, tsv, jsonl or parquet, not {format!r}")
    if delimiter is not None and delimiter.lower() in TAB_NAMES:
        delimiter = "\t"
    if delimiter is not None and len(delimiter) != 1:
        raise UsageError(f"--delimiter takes one character (or tab), not {delimiter!r}")
    return {
        "csv_null": csv_null,
        "format": format,
        "csv_delimiter": delimiter,
        "encoding": encoding,
        "date_format": date_format,
    }


def chunk_options(chunk_rows: str | None, chunk_seconds: float, throttle: float) -> dict[str, Any]:
    """How a run is cut into transactions, from --chunk-rows, --chunk-seconds, --throttle."""
    rows: int | Literal["auto"] | None = None
    if chunk_rows is not None:
        if chunk_rows.strip().lower() == "auto":
            rows = "auto"
        elif chunk_rows.strip().isdigit() and int(chunk_rows) > 0:
            rows = int(chunk_rows)
        else:
            raise UsageError(f"--chunk-rows takes a positive number or auto, not {chunk_rows!r}")
    if chunk_seconds <= 0:
        raise UsageError(f"--chunk-seconds must be more than 0, not {chunk_seconds:g}")
    if throttle < 0:
        raise UsageError(f"--throttle must be 0 or more, not {throttle:g}")
    return {"chunk_rows": rows, "chunk_seconds": chunk_seconds, "throttle_seconds": throttle}


def timeout_of(seconds: float) -> float | None:
    """``--plan-timeout`` as ``plan`` takes it: 0 is no limit."""
    if seconds < 0:
        raise UsageError(f"--plan-timeout must be 0 (no limit) or more, not {seconds:g}")
    return seconds or None
