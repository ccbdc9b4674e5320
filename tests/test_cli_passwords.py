"""No password of the database URL reaches the output of the ``setwise`` command, on any
path that prints the URL or a command, however the password is written and however the
URL is given; a command printed for pasting leaves the password out, says where it will
be read from, and still works when pasted.

PostgreSQL here trusts local clients, so a URL carrying any password connects and every
path can be walked with one; MariaDB's test user has no password and refuses one.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import Engine, make_url, text

from setwise import Progress
from setwise import apply as library_apply
from setwise.cli.dburl import DatabaseURL
from tests.backends import server_url
from tests.models import Book, create_books
from tests.test_cli import RAISE_FICTION, SETWISE, cli_url, prices
from tests.test_planner import write_changes

#: Every password below starts so: none of the output may hold it.
SECRET = "s3cr"

#: How the URL carries the password: in its user part, in its query, percent-encoded.
FORMS = ("user", "query", "encoded")
#: How the command is given the URL.
GIVEN = ("--db URL", "--db=URL", "SETWISE_DB")
CASES = [(form, given) for form in FORMS for given in GIVEN]
IDS = [f"{form}-{given}" for form, given in CASES]
#: Each form once and each way of giving once, for the slower paths: every case goes
#: through the same two helpers (``DatabaseURL.shown`` and ``DatabaseURL.command``),
#: which the full product checks on the plan header and the undo hint.
SQUARE = [("user", "SETWISE_DB"), ("query", "--db URL"), ("encoded", "--db=URL")]
SQUARE_IDS = [f"{form}-{given}" for form, given in SQUARE]
#: The PostgreSQL server the tests run on, as a printed URL names it: host:port.
SERVER = f"{make_url(server_url('postgresql')).host}:{make_url(server_url('postgresql')).port}"


def with_password(url: str, form: str) -> str:
    """``url`` carrying a password, written as ``form`` says."""
    parsed = make_url(url)
    if form == "query":
        parsed = parsed.update_query_dict({"password": "s3cr3t-pw"})
    else:  # an "@" is written %40 in a URL's user part
        parsed = parsed.set(password="s3cr3t-pw" if form == "user" else "s3cr@t-pw")
    written = parsed.render_as_string(hide_password=False)
    assert ("%40" in written) == (form == "encoded")
    return written


def giving(given: str, db: str, *args: str) -> tuple[list[str], dict[str, str]]:
    """The command line ``setwise args`` and its environment, with the URL given as
    ``given`` says."""
    environment = {k: v for k, v in os.environ.items() if k != "SETWISE_DB"}
    if given == "SETWISE_DB":
        environment["SETWISE_DB"] = db
    else:
        args = (*args, *(["--db", db] if given == "--db URL" else [f"--db={db}"]))
    return [str(SETWISE), *args], environment


def run(given: str, db: str, *args: str) -> subprocess.CompletedProcess[str]:
    """``setwise args`` with the URL given as ``given`` says, no terminal attached."""
    command, environment = giving(given, db, *args)
    return subprocess.run(
        command,
        capture_output=True,
        text=True,
        env=environment,
        stdin=subprocess.DEVNULL,
        timeout=120,
        check=False,
    )


def shown(done: subprocess.CompletedProcess[str]) -> str:
    """All the command printed, with the check that no password is in it."""
    output = done.stdout + done.stderr
    assert SECRET not in output, output
    return output


def paste(command: str, given: str, db: str) -> subprocess.CompletedProcess[str]:
    """Run a printed command line as a shell would, in a shell that has what the
    user's had: PATH, and SETWISE_DB when the URL came from it."""
    env = {"PATH": f"{SETWISE.parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    if given == "SETWISE_DB":
        env["SETWISE_DB"] = db
    return subprocess.run(
        command, shell=True, capture_output=True, text=True, check=False, env=env, timeout=120
    )


def check_command(command: str, given: str, output: str) -> None:
    """A printed command names the database as it was given, without the password, and
    says where the password will be read from."""
    if given == "SETWISE_DB":  # found there again
        assert "--db" not in command
        assert "password is left out" not in output
    else:
        assert re.search(rf"--db '?postgresql\+psycopg://root@{re.escape(SERVER)}/", command)
        assert "(The password is left out of the command: put it in PGPASSWORD or ~/.pgpass" in (
            output
        )
        assert "set SETWISE_DB to the whole URL and leave out --db.)" in output


@pytest.fixture
def books(engine: Engine) -> Engine:
    create_books(engine, 20)
    return engine


@pytest.mark.backends("postgresql")
@pytest.mark.parametrize(("form", "given"), CASES, ids=IDS)
def test_the_plan_header_and_the_undo_hint_print_no_password_and_the_hint_pastes(
    books: Engine, form: str, given: str
) -> None:
    db = with_password(cli_url(books), form)
    planned = run(given, db, "plan", "books", *RAISE_FICTION)
    assert planned.returncode == 0, planned.stderr
    (header,) = re.findall(r"Plan for 'books' on (\S+)", shown(planned))
    masked = f"root@{SERVER}/test?" if form == "query" else f"root:***@{SERVER}/test?"
    assert header.startswith(f"postgresql+psycopg://{masked}")
    assert ("password=***" in header) == (form == "query")
    before = prices(books)
    applied = run(given, db, "apply", "books", *RAISE_FICTION, "--chunk-rows", "2", "--yes")
    assert applied.returncode == 0, applied.stderr
    (undo,) = re.findall(r"undo it with `(.+)`", shown(applied))
    check_command(undo, given, applied.stdout)
    assert prices(books) != before
    pasted = paste(f"{undo} --yes", given, db)
    assert pasted.returncode == 0, pasted.stderr
    assert prices(books) == before  # the pasted revert reached the same database


@pytest.mark.backends("postgresql")
@pytest.mark.parametrize(("form", "given"), SQUARE, ids=SQUARE_IDS)
def test_runs_show_init_abandon_and_json_print_no_password(
    books: Engine, form: str, given: str
) -> None:
    db = with_password(cli_url(books), form)
    assert json.loads(shown(run(given, db, "plan", "books", *RAISE_FICTION, "--json")))
    applied = run(given, db, "apply", "books", *RAISE_FICTION, "-y", "--json")
    run_id = json.loads(shown(applied))["run_id"]
    for args in (["runs"], ["runs", "--json"], ["show", run_id], ["show", run_id, "--json"]):
        listed = run(given, db, *args)
        assert listed.returncode == 0, listed.stderr
        assert run_id in shown(listed)
    ready = run(given, db, "init")
    assert re.search(r"Journal tables ready on postgresql\+psycopg://root\S*\*\*\*", shown(ready))

    def interrupt(progress: Progress) -> None:
        if progress.chunk:  # after the first chunk, not while staging
            raise KeyboardInterrupt

    stock = [{"id": i, "stock": 0} for i in (1, 2, 3)]
    with pytest.raises(KeyboardInterrupt):
        library_apply(books, Book, stock, chunk_rows=2, progress=interrupt)
    interrupted = json.loads(run(given, db, "runs", "--json").stdout)[0]["run_id"]
    abandoned = run(given, db, "abandon", interrupted, "--yes")
    assert abandoned.returncode == 0, abandoned.stderr
    (undo,) = re.findall(r"undo them with `(.+)`", shown(abandoned))
    check_command(undo, given, abandoned.stdout)


@pytest.mark.backends("postgresql")
@pytest.mark.parametrize(("form", "given"), SQUARE, ids=SQUARE_IDS)
def test_a_failed_chunk_hint_leaves_the_password_out_and_resumes_when_pasted(
    books: Engine, tmp_path: Path, form: str, given: str
) -> None:
    db = with_password(cli_url(books), form)
    rows = [{"id": i, "price": f"{i}.50"} for i in range(1, 7)]
    rows[4]["price"] = "-1.00"  # chunk 3 breaks ck_books_price_positive
    changes = write_changes(tmp_path, "csv", rows)
    failed = run(given, db, "apply", "books", "--from", str(changes), "--chunk-rows", "2", "-y")
    assert failed.returncode == 1
    output = shown(failed)
    assert "chunk 3 failed and was rolled back" in output
    (resume,) = re.findall(r"Resume with:\n  (.+)", failed.stderr)
    (undo,) = re.findall(r"or undo the committed chunks with:\n  (.+)", failed.stderr)
    check_command(resume, given, failed.stderr)
    check_command(undo, given, failed.stderr)
    with books.begin() as connection:  # what stopped the run (it resumes what it staged)
        connection.execute(text("ALTER TABLE books DROP CONSTRAINT ck_books_price_positive"))
    resumed = paste(resume, given, db)
    assert resumed.returncode == 0, resumed.stderr
    assert (prices(books)[5], prices(books)[6]) == (Decimal("-1.00"), Decimal("6.50"))


@pytest.mark.backends("postgresql")
@pytest.mark.parametrize(("form", "given"), SQUARE, ids=SQUARE_IDS)
def test_ctrl_c_hint_leaves_the_password_out_and_resumes_when_pasted(
    books: Engine, tmp_path: Path, form: str, given: str
) -> None:
    db = with_password(cli_url(books), form)
    changes = write_changes(tmp_path, "csv", [{"id": i, "stock": 500 + i} for i in range(1, 21)])
    args = ["apply", "books", "--from", str(changes), "--chunk-rows", "2", "--throttle", "0.3"]
    command, environment = giving(given, db, *args, "-y")
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        env=environment,
    )
    with books.connect() as connection:  # until the first chunk is in
        while not connection.scalar(text("SELECT COUNT(*) FROM books WHERE stock > 500")):
            connection.rollback()
            assert process.poll() is None
            time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    output = shown(subprocess.CompletedProcess(command, 130, stdout, stderr))
    assert "Interrupted" in output and "Traceback" not in output
    (resume,) = re.findall(r"Resume with:\n  (.+)", stderr)
    (undo,) = re.findall(r"or undo them with:\n  (.+)", stderr)
    check_command(resume, given, stderr)
    check_command(undo, given, stderr)
    resumed = paste(resume, given, db)
    assert resumed.returncode == 0, resumed.stderr
    with books.connect() as connection:
        assert connection.scalar(text("SELECT COUNT(*) FROM books WHERE stock > 500")) == 20


@pytest.mark.parametrize(("form", "given"), CASES, ids=IDS)
def test_a_connection_error_and_its_traceback_print_no_password(form: str, given: str) -> None:
    db = with_password("postgresql+psycopg://root@127.0.0.1:1/nowhere", form)
    failed = run(given, db, "runs")
    assert failed.returncode == 1
    output = shown(failed)
    masked = "root:***@127.0.0.1:1/nowhere"
    if form == "query":
        masked = "root@127.0.0.1:1/nowhere?password=***"
    assert f"the database (postgresql+psycopg://{masked}) said:" in output
    assert "Traceback" not in output
    debugged = run(given, db, "runs", "--debug")
    assert debugged.returncode == 1
    assert "Traceback" in shown(debugged) and "OperationalError" in debugged.stderr


@pytest.mark.parametrize("given", GIVEN)
def test_a_port_that_is_not_a_number_is_a_usage_error(given: str) -> None:
    db = "postgresql+psycopg://root:s3cr3t-pw@127.0.0.1:54x2/test"
    for args in (["runs"], ["plan", "books", "--set", "stock = 1", "--all-rows"]):
        done = run(given, db, *args)
        assert done.returncode == 2, done.stderr
        origin = "SETWISE_DB" if given == "SETWISE_DB" else "--db"
        assert f"cannot use the database URL from {origin}: its port is not a number" in (
            shown(done)
        )
        assert "Traceback" not in done.stderr


# -- the URL itself, without a database ----------------------------------------------


def test_every_written_form_of_a_password_is_hidden() -> None:
    for written, secret in [
        ("postgresql://u:s3cr%40t@h/d", "s3cr@t"),
        ("postgresql://u@h/d?sslmode=disable&password=s3cr%26t", "s3cr&t"),
        ("mysql+pymysql://u@h/d?passwd=s3cret", "s3cret"),
    ]:
        url = DatabaseURL.read(written, "--db")
        message = f"failed for {written} with {secret}"
        assert SECRET not in url.hide(message) and SECRET not in url.shown
        assert SECRET not in url.command(["runs"])
        assert url.problem is None


def test_a_password_that_is_also_the_user_name_hides_only_the_password() -> None:
    url = DatabaseURL.read("mariadb+pymysql://galera:galera@127.0.0.1:4306/test", "--db")
    assert url.shown == "mariadb+pymysql://galera:***@127.0.0.1:4306/test"
    assert url.command(["runs"]) == "setwise runs --db mariadb+pymysql://galera@127.0.0.1:4306/test"
    assert "read_default_file=~/.my.cnf" in url.left_out


def test_a_url_that_cannot_be_read_is_never_shown_and_its_password_still_hidden() -> None:
    url = DatabaseURL.read("postgresql://u:s3cret@h:port/d", "SETWISE_DB")
    assert url.problem == "its port is not a number"
    assert url.shown == "the SETWISE_DB URL"
    assert url.hide("postgresql://u:s3cret@h:port/d") == "postgresql://u:***@h:port/d"
    nonsense = DatabaseURL.read("not a url", "--db")
    assert nonsense.problem is not None and nonsense.url is None


def test_a_url_without_a_password_is_given_again_as_it_was() -> None:
    url = DatabaseURL.read("sqlite:///my data.db", "--db")
    assert url.command(["revert", "R1"]) == "setwise revert R1 --db 'sqlite:///my data.db'"
    assert url.left_out == ""
    assert DatabaseURL.read("sqlite:///x.db", "default").command(["runs"]) == "setwise runs"
