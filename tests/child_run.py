"""A setwise run in a process of its own, for tests that kill, interrupt or race it.

    python -m tests.child_run URL SCHEMA KIND SOURCE [RESUME]
    python -m tests.child_run cli SETWISE-ARGUMENTS...

KIND is ``apply`` or ``upsert`` (``missing="insert"``) (SOURCE: a file of changes),
``update`` or ``delete`` (SOURCE unused: every book) or ``revert`` (SOURCE: the run to
revert), in chunks of 5 rows
0.25 s apart; RESUME resumes that run instead. ``cli`` runs the ``setwise`` command itself.

Two holds stop the process at a chosen statement, so that a test can act at that very
moment (each writes the file ``SETWISE_TEST_READY`` names when it is reached):

- ``SETWISE_TEST_HOLD_CHUNK=N``: inside chunk N, right after its first read of the
  table (a statement still open, as when a Ctrl-C lands in one), sleep until a signal
  comes;
- ``SETWISE_TEST_HOLD_RUN_UPDATE=1``: before the process first changes its run's
  record, wait until the file ``SETWISE_TEST_GO`` names exists.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, delete, event, update

import setwise
from setwise.cli.app import main as cli_main
from tests.models import Book

#: How long a hold waits for its signal or its go file before giving up.
HOLD_SECONDS = 120


def install_holds() -> None:
    """Listen on every engine for the statement the environment says to hold at."""
    ready = Path(os.environ.get("SETWISE_TEST_READY", "ready"))
    if "SETWISE_TEST_HOLD_CHUNK" in os.environ:
        chunk = int(os.environ["SETWISE_TEST_HOLD_CHUNK"])
        recorded = 0

        def in_chunk(*args: Any) -> None:
            nonlocal recorded
            statement = str(args[2])
            if statement.startswith("INSERT INTO setwise_chunks"):
                recorded += 1
            elif recorded == chunk - 1 and _reads_the_table(statement):
                ready.touch()
                time.sleep(HOLD_SECONDS)  # a SIGINT ends it with KeyboardInterrupt

        event.listen(Engine, "after_cursor_execute", in_chunk)
    if "SETWISE_TEST_HOLD_RUN_UPDATE" in os.environ:
        go = Path(os.environ["SETWISE_TEST_GO"])
        held = False

        def before_run_update(*args: Any) -> None:
            nonlocal held
            if not held and str(args[2]).startswith("UPDATE setwise_runs"):
                held = True
                ready.touch()
                deadline = time.monotonic() + HOLD_SECONDS
                while not go.exists() and time.monotonic() < deadline:
                    time.sleep(0.02)

        event.listen(Engine, "before_cursor_execute", before_run_update)


def _reads_the_table(statement: str) -> bool:
    """A chunk's read, not one of its run record's."""
    journal = ("setwise_runs", "setwise_chunks", "setwise_control")
    return statement.startswith("SELECT") and not any(name in statement for name in journal)


def main() -> None:
    install_holds()
    if sys.argv[1] == "cli":
        sys.argv = ["setwise", *sys.argv[2:]]
        cli_main()
        return
    url, schema, kind, source = sys.argv[1:5]
    resume = sys.argv[5] if len(sys.argv) > 5 else None
    options = {"connect_args": {"options": f"-csearch_path={schema}"}} if schema else {}
    engine = create_engine(url, **options)  # type: ignore[arg-type]
    chunked: dict[str, Any] = {"chunk_rows": 5, "throttle_seconds": 0.25}
    if resume is not None:
        chunked["resume"] = resume
    if kind == "apply":
        setwise.apply(engine, Book, source, **chunked)
    elif kind == "upsert":
        setwise.apply(engine, Book, source, missing="insert", **chunked)
    elif kind == "revert":
        setwise.revert(engine, source, **chunked)
    elif kind == "delete":
        setwise.delete(engine, delete(Book).where(Book.id > 0), **chunked)
    else:
        statement = update(Book).where(Book.id > 0).values(stock=Book.stock + 1)
        setwise.update(engine, statement, **chunked)


if __name__ == "__main__":
    main()
