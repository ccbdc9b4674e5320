"""The command line's health options: a run that waits past --max-wait stops with the
command that resumes it, and that command finishes the run."""

from __future__ import annotations

import shlex
from decimal import Decimal
from pathlib import Path

from sqlalchemy import Engine

from tests.models import create_books, snapshot
from tests.test_cli import FICTION, RAISE_FICTION, cli_url, prices, setwise


def test_max_wait_stops_with_the_resume_command_which_finishes(
    engine: Engine, tmp_path: Path
) -> None:
    create_books(engine, 20)
    flag = tmp_path / "hold"
    flag.touch()
    url = cli_url(engine)
    before = prices(engine)
    args = [*RAISE_FICTION, "--chunk-rows", "2", "--throttle-file", str(flag)]
    done = setwise("apply", "books", *args, "--max-wait", "0.3", "--yes", "--db", url)

    assert done.returncode == 1, done.stderr
    assert f"while throttle file {flag} exists" in done.stderr
    assert "resume it with --resume " in done.stderr
    lines = [line.strip() for line in done.stderr.splitlines()]
    resume = next(line for line in lines if line.startswith("setwise apply books"))
    assert " --resume " in resume

    flag.unlink()
    argv = shlex.split(resume)[1:]
    if "--db" in argv:  # the printed command leaves a password out (Galera's user has one)
        argv[argv.index("--db") + 1] = url
    finished = setwise(*argv)
    assert finished.returncode == 0, finished.stderr
    assert "Changed 5 rows in 3 chunks" in finished.stdout

    after = prices(engine)
    for key, price in before.items():
        raised = (price * Decimal("1.10")).quantize(Decimal("0.01"))
        assert after[key] == (raised if key in FICTION else price)


def test_a_signal_the_database_lacks_is_refused_with_its_option(engine: Engine) -> None:
    create_books(engine, 4)
    before = snapshot(engine)
    args = [*RAISE_FICTION, "--chunk-rows", "2", "--max-lag", "1", "--yes"]
    done = setwise("apply", "books", *args, "--db", cli_url(engine))
    if engine.dialect.name == "postgresql":
        assert done.returncode == 0, done.stderr  # no replica streams from it: no lag
        return
    assert done.returncode == 1
    assert "--replica" in done.stderr or "not available" in done.stderr
    assert snapshot(engine) == before
