"""The command line's contract and conventions, through the real ``setwise`` executable:
``--db`` before the command, ``--version``, ``-h``, help that shows flags as flags and
examples, JSON for every outcome, hints that work when pasted, and no database created
by a command that needs one."""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import json
import os
import re
import shlex
import signal
import subprocess
import time
import uuid
from pathlib import Path

import pytest
import typer
from sqlalchemy import (
    Column,
    DateTime,
    Engine,
    MetaData,
    Numeric,
    String,
    Table,
    insert,
    make_url,
    select,
    text,
)

from setwise.cli.app import app
from tests import backends
from tests.models import create_books, snapshot
from tests.test_cli import COMMANDS, RAISE_FICTION, SETWISE, cli_url, setwise
from tests.test_planner import write_changes

#: The command line's page of the docs, with every option by command.
CLI_DOCS = Path(__file__).parents[1] / "docs" / "cli.md"
#: Options every command takes, listed once in the docs rather than per command.
COMMON = {"--db", "--debug", "--help"}
#: Widest example line: with the help's indent it fits an 80-column terminal unbroken.
EXAMPLE_WIDTH = 76


@pytest.fixture
def books(engine: Engine) -> Engine:
    create_books(engine, 20)
    return engine


def pasteable(engine: Engine, tmp_path: Path) -> str:
    """A URL for ``engine`` that a pasted command line can use as printed: a password
    moves to an option file the driver reads (``read_default_file``, MariaDB's way)."""
    url = make_url(cli_url(engine))
    if url.password is None:
        return cli_url(engine)
    options = tmp_path / f"{uuid.uuid4().hex}.cnf"
    options.write_text(f"[client]\npassword={url.password}\n")
    bare = url._replace(password=None).update_query_dict({"read_default_file": str(options)})
    return bare.render_as_string(hide_password=False)


def shell(command: str) -> subprocess.CompletedProcess[str]:
    """``command`` as a shell runs it when pasted, with ``setwise`` on PATH."""
    path = f"{SETWISE.parent}{os.pathsep}{os.environ.get('PATH', '')}"
    return subprocess.run(
        command,
        shell=True,
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": path, "HOME": os.environ.get("HOME", "/")},
        timeout=120,
    )


# -- 1. the contract and the conventions ------------------------------------------------


def test_db_before_the_command_works_as_after_it(books: Engine) -> None:
    db = cli_url(books)
    applied = setwise("--db", db, "apply", "books", *RAISE_FICTION, "--yes", "--json")
    assert applied.returncode == 0, applied.stderr
    run_id = json.loads(applied.stdout)["run_id"]
    for args in (["--db", db, "runs"], [f"--db={db}", "runs"], ["runs", "--db", db]):
        listed = setwise(*args, "--json")
        assert listed.returncode == 0, listed.stderr
        assert [run["run_id"] for run in json.loads(listed.stdout)] == [run_id]
    # After the command it wins, as the nearer word does; SETWISE_DB comes last.
    nowhere = "sqlite:////nonexistent/setwise.db"
    assert setwise("--db", nowhere, "runs", "--db", db).returncode == 0
    assert setwise("--db", db, "runs", env={"SETWISE_DB": nowhere}).returncode == 0


def test_version_prints_the_installed_version() -> None:
    done = setwise("--version")
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"setwise {importlib.metadata.version('setwise')}\n"


def test_h_is_help_for_setwise_and_for_each_command() -> None:
    assert setwise("-h").stdout == setwise("--help").stdout
    for command in COMMANDS:
        short, long = setwise(command, "-h"), setwise(command, "--help")
        assert short.returncode == long.returncode == 0, short.stderr
        assert short.stdout == long.stdout
        assert f"Usage: setwise {command} " in short.stdout


def test_every_command_has_help_with_examples_and_its_options_in_the_docs() -> None:
    commands = typer.main.get_command(app).commands  # type: ignore[attr-defined]
    assert set(commands) == set(COMMANDS)
    synopsis = CLI_DOCS.read_text().split("Every option, by command")[1].split("```")[1]
    for name, command in commands.items():
        shown = setwise(name, "-h").stdout
        assert not re.search(r"<(bool|str|int|float|path|list)|\{[a-z]", shown), shown
        # The summary is one unbroken sentence, in the command list as in the help.
        summary = command.help.split("\n\n")[0]
        assert "\n" not in summary and summary.endswith("."), name
        examples = command.help.split("Examples:\n\n")[1].splitlines()
        assert examples and all(line.startswith("  setwise ") for line in examples), name
        assert all(f" {name}" in line for line in examples), name
        assert all(len(line.strip()) <= EXAMPLE_WIDTH for line in examples), name
        for line in examples:
            assert line.strip() in " ".join(shown.split("\n")), line
        # The docs list exactly the command's options.
        listed = re.search(rf"^setwise {name}\b.*?(?=^setwise |\Z)", synopsis, re.M | re.S)
        assert listed, name
        options = {o for p in command.params for o in p.opts if o.startswith("--")}
        assert set(re.findall(r"--[a-z-]+", listed.group(0))) == options - COMMON, name
        assert f"`setwise {name}" in CLI_DOCS.read_text(), name


def test_flags_show_as_flags() -> None:
    shown = setwise("apply", "-h").stdout
    for flag in ("--yes", "--all-rows", "--no-journal", "--json", "--debug", "--help"):
        (line,) = [line for line in shown.splitlines() if re.match(rf"│ {flag} ", line)]
        assert re.match(rf"│ {flag} +(-\w)? +[A-Z][a-z]", line), line  # its help, no value
    assert re.search(r"--where +EXPR ", shown) and re.search(r"--from +FILE ", shown)
    assert "Usage: setwise apply [OPTIONS] TABLE" in shown


# -- 6. scripts read everything -----------------------------------------------------------


def test_a_refused_changeset_under_json_is_one_document_with_each_problem(
    books: Engine, tmp_path: Path
) -> None:
    changes = tmp_path / "bad.csv"
    changes.write_text("id,price,stock\n1,\\N,3\n2,3.905,4\n3,4.00,many\n")
    before = snapshot(books)
    for command in (["plan"], ["apply", "--yes"]):
        args = ["--from", str(changes), "--json", "--db", cli_url(books)]
        done = setwise(*command, "books", *args)
        assert done.returncode == 1, done.stdout + done.stderr
        error = json.loads(done.stdout)["error"]
        assert (error["type"], error["exit_code"], error["total"]) == ("ValidationError", 1, 3)
        found = [(p["row"], p["column"], p["value"]) for p in error["problems"]]
        assert found == [(2, "price", "\\N"), (3, "price", "3.905"), (4, "stock", "many")]
        assert all(p["reason"] for p in error["problems"])
        # People read the same values as they are written in the file.
        assert "row 2, column 'price', value '\\N':" in done.stderr
        assert "'\\\\N'" not in done.stderr
    assert snapshot(books) == before


def test_refused_sql_text_under_json_gives_its_position(books: Engine) -> None:
    where = "genre = 'fiction'; DROP TABLE books"
    args = ["--set", "stock = 0", "--where", where, "--json", "--db", cli_url(books)]
    done = setwise("plan", "books", *args)
    assert done.returncode == 2
    error = json.loads(done.stdout)["error"]
    assert (error["type"], error["exit_code"], error["label"]) == ("SQLTextError", 2, "--where")
    assert (error["text"], error["position"]) == (where, where.index(";"))
    assert "second statement" in error["reason"]


def test_usage_errors_and_unknown_names_under_json(books: Engine, tmp_path: Path) -> None:
    db = ["--json", "--db", cli_url(books)]
    unknown = setwise("plan", "bookz", "--set", "stock = 0", "--all-rows", *db)
    assert unknown.returncode == 2
    error = json.loads(unknown.stdout)["error"]
    assert (error["type"], error["name"], error["suggestion"]) == ("SchemaError", "bookz", "books")
    refused = setwise("plan", "books", "--set", "stock = 0", *db)
    assert refused.returncode == 2
    assert json.loads(refused.stdout)["error"]["type"] == "UsageError"
    parsed = setwise("runs", "--limit", "many", *db)  # refused by the parser itself
    assert parsed.returncode == 2
    error = json.loads(parsed.stdout)["error"]
    assert error["type"] == "UsageError" and "--limit" in error["message"]
    missing = setwise("runs", "--json", "--db", f"sqlite:///{tmp_path / 'nowhere.db'}")
    assert missing.returncode == 2
    assert str(tmp_path / "nowhere.db") in json.loads(missing.stdout)["error"]["message"]


FLIGHTS = Table(
    "flights",
    MetaData(),
    Column("origin", String(3), primary_key=True),
    Column("departs", DateTime, primary_key=True),
    Column("fare", Numeric(8, 2)),
)


def test_keys_and_values_are_written_as_a_person_writes_them(
    engine: Engine, tmp_path: Path
) -> None:
    FLIGHTS.create(engine)
    six = dt.datetime(2013, 1, 1, 6, 0)
    with engine.begin() as connection:
        connection.execute(insert(FLIGHTS), [{"origin": "JFK", "departs": six, "fare": "3.90"}])
    changes = tmp_path / "fares.csv"
    changes.write_text(
        "origin,departs,fare\nJFK,2013-01-01 06:00:00,4.10\nLGA,2013-01-01 06:00:00,3.90\n"
    )
    args = ["plan", "flights", "--from", str(changes), "--db", cli_url(engine)]
    planned = setwise(*args)
    assert planned.returncode == 0, planned.stderr
    assert "Keys not in 'flights': ('LGA', 2013-01-01 06:00:00)" in planned.stdout
    found = json.loads(setwise(*args, "--json").stdout)
    assert found["missing_keys"] == [["LGA", "2013-01-01 06:00:00"]]
    applied = json.loads(setwise("apply", *args[1:], "--yes", "--json").stdout)
    assert (applied["changed"], applied["missing_keys"]) == (1, [["LGA", "2013-01-01 06:00:00"]])
    undone = setwise("show", applied["run_id"], "--json", "--db", cli_url(engine))
    assert json.loads(undone.stdout)["run"]["run_id"] == applied["run_id"]
    with engine.connect() as connection:
        assert str(connection.scalar(select(FLIGHTS.c.fare))) == "4.10"


# -- 5. hints that work when pasted ------------------------------------------------------


def test_the_resume_hint_of_an_interrupted_run_pasted_into_a_shell_finishes_it(
    backend: str, books: Engine, tmp_path: Path
) -> None:
    rows = [{"id": i, "stock": 500 + i, "price": f"{i}.75"} for i in range(1, 21)]
    changes = write_changes(tmp_path, "csv", rows)
    args = ["apply", "books", "--from", str(changes), "--chunk-rows", "2", "--throttle", "0.3"]
    process = subprocess.Popen(
        [str(SETWISE), "--db", pasteable(books, tmp_path), *args, "--yes"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    with books.connect() as connection:  # until the first chunk is in
        while not connection.scalar(text("SELECT COUNT(*) FROM books WHERE stock > 500")):
            connection.rollback()
            assert process.poll() is None, process.communicate()
            time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert "resume=" not in stderr and "Traceback" not in stderr
    (resume,) = re.findall(r"Resume with:\n  (.+)", stderr)
    (undo,) = re.findall(r"or undo them with:\n  (.+)", stderr)
    assert shlex.split(resume)[:3] == ["setwise", "apply", "books"]
    assert "--db" in shlex.split(resume) and "--db" in shlex.split(undo)
    with books.connect() as connection:
        written = connection.scalar(text("SELECT COUNT(*) FROM books WHERE stock > 500"))
    assert 0 < written < 20
    pasted = shell(resume)
    assert pasted.returncode == 0, pasted.stderr
    assert "Changed" in pasted.stdout
    (tmp_path / "whole").mkdir()
    with backends.fresh_database(backend, tmp_path / "whole") as whole:
        create_books(whole, 20)
        straight = setwise(*args, "--yes", "--db", pasteable(whole, tmp_path))
        assert straight.returncode == 0, straight.stderr
        assert snapshot(books) == snapshot(whole)


def test_a_failed_chunk_under_json_gives_the_run_and_its_commands(
    books: Engine, tmp_path: Path
) -> None:
    rows = [{"id": i, "price": f"{i}.50"} for i in range(1, 7)]
    rows[4]["price"] = "-1.00"  # chunk 3 breaks ck_books_price_positive
    changes = write_changes(tmp_path, "csv", rows)
    db = pasteable(books, tmp_path)
    args = ["apply", "books", "--from", str(changes), "--chunk-rows", "2", "-y", "--json"]
    failed = setwise(*args, "--db", db)
    assert failed.returncode == 1
    error = json.loads(failed.stdout)["error"]
    assert (error["type"], error["chunk"]) == ("RunError", 3)
    run_id = error["run_id"]
    assert error["revert"] == shlex.join(["setwise", "revert", run_id, "--db", db])
    assert shlex.split(error["resume"]) == [
        "setwise",
        *args[:6],
        "--json",
        "--resume",
        run_id,
        "--yes",
        "--db",
        db,
    ]
    assert "resume=" not in failed.stdout + failed.stderr
    assert "revert(" not in failed.stdout + failed.stderr


def test_messages_name_options_not_python_arguments(engine: Engine, tmp_path: Path) -> None:
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE prices (sku VARCHAR(10), price INTEGER)"))
        connection.execute(text("INSERT INTO prices VALUES ('a', 1)"))
    changes = tmp_path / "prices.csv"
    changes.write_text("sku,price\na,2\n")
    done = setwise("apply", "prices", "--from", str(changes), "-y", "--db", cli_url(engine))
    assert done.returncode == 2
    assert "'prices' has no primary key: pass --key COLUMN" in done.stderr
    assert "key=" not in done.stderr


@pytest.mark.requires("packed_journal")
def test_a_command_a_library_message_names_runs_on_the_same_database(books: Engine) -> None:
    db = ["--db", cli_url(books)]
    with books.begin() as connection:  # a journal an earlier setwise kept a row per change
        connection.execute(
            text(
                "CREATE TABLE setwise_journal_books (run_id varchar(40) NOT NULL,"
                " chunk integer NOT NULL, k_id integer NOT NULL, o_stock integer,"
                " n_stock integer, PRIMARY KEY (run_id, k_id))"
            )
        )
    change = ["apply", "books", "--set", "stock = 0", "--where", "id < 3", "--yes", *db]
    refused = setwise(*change)
    assert refused.returncode == 1
    (command,) = re.findall(r"`(setwise init [^`]+)`", refused.stderr)
    assert shlex.split(command) == ["setwise", "init", "books", *db]
    assert "setwise.init(" not in refused.stderr
    assert shell(command).returncode == 0
    assert setwise(*change).returncode == 0


# -- 7. no surprises about the database --------------------------------------------------

#: A command that needs an existing database, with the arguments it needs.
NEEDS_A_DATABASE = [
    ["plan", "books", "--set", "stock = 0", "--all-rows"],
    ["apply", "books", "--set", "stock = 0", "--all-rows", "--yes"],
    ["runs"],
    ["show", "20260101-000000-abcdef12"],
    ["revert", "20260101-000000-abcdef12", "--yes"],
    ["abandon", "20260101-000000-abcdef12", "--yes"],
    ["init", "books"],
]


@pytest.mark.parametrize("args", NEEDS_A_DATABASE, ids=[a[0] for a in NEEDS_A_DATABASE])
def test_a_missing_sqlite_file_is_named_and_not_created(tmp_path: Path, args: list[str]) -> None:
    default = setwise(*args, cwd=tmp_path)
    assert default.returncode == 2, default.stderr
    assert f"no database at {tmp_path / 'setwise.db'}:" in default.stderr
    assert "--db URL" in default.stderr and "SETWISE_DB" in default.stderr
    named = tmp_path / "typo.db"
    given = setwise(*args, "--db", f"sqlite:///{named}", cwd=tmp_path)
    assert given.returncode == 2, given.stderr
    assert f"no database at {named} (the --db URL sqlite:///{named})" in given.stderr
    relative = setwise(*args, env={"SETWISE_DB": "sqlite:///typo.db"}, cwd=tmp_path)
    assert relative.returncode == 2, relative.stderr
    assert f"no database at {named} (the SETWISE_DB URL" in relative.stderr
    assert list(tmp_path.iterdir()) == []


# -- 10. the demo --------------------------------------------------------------------------


def test_the_demo_writes_outside_the_working_directory_and_says_how_to_go_on(
    tmp_path: Path,
) -> None:
    (tmp_path / "here").mkdir()
    (tmp_path / "tmp").mkdir()
    done = setwise("demo", cwd=tmp_path / "here", env={"TMPDIR": str(tmp_path / "tmp")})
    assert done.returncode == 0, done.stderr
    assert list((tmp_path / "here").iterdir()) == []
    folder = tmp_path / "tmp" / "setwise-demo"
    assert {p.name for p in folder.iterdir()} == {"setwise.db", "corrections.csv"}
    by_hand = done.stdout.split("Try it by hand")[1].splitlines()[1:]
    steps = [line.strip() for line in by_hand if line.startswith("  ")]
    # This Python's setwise is not on the test's PATH: the demo says how to get it there.
    activate = SETWISE.parent / "activate"
    assert steps[0].startswith(f"source {activate}")
    assert steps[1] == f"cd {folder}"
    assert steps[-1] == "setwise --help"
    # Pasted in order, the steps run as the demo ran them (the last one already undone).
    replay = shell(" && ".join(steps[1:3]))
    assert replay.returncode == 0, replay.stderr
    assert "Would change" in replay.stdout
