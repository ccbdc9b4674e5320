"""Data migrations in Alembic: a real ``alembic`` command, run as a process, on every backend.

Each test builds a small Alembic project in its temporary directory: revision
``0001books`` creates and fills a table, revision ``0002prices`` changes it with
``setwise.alembic`` (a set-based update, then a changeset file) and reverts it on
downgrade.
"""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Column, Engine, Integer, MetaData, Numeric, String, Table, select, text

import setwise
from setwise.alembic import key_spans, revision_runs
from setwise.dialects import get_strategy
from setwise.errors import SetwiseError
from setwise.journal.changes import Journal
from setwise.target import resolve_target
from setwise.writers.keys import Span
from tests import backends
from tests.backends import reader
from tests.test_cli import cli_url

BOOKS = Table(
    "books",
    MetaData(),
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("title", String(100), nullable=False),
    Column("price", Numeric(10, 2), nullable=False),
    Column("stock", Integer, nullable=False),
)

ENV_PY = """
import os

from alembic import context
from sqlalchemy import create_engine, pool

url = os.environ["SETWISE_ALEMBIC_URL"]
if context.is_offline_mode():
    context.configure(url=url, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    engine = create_engine(url, poolclass=pool.NullPool)
    with engine.connect() as connection:
        context.configure(connection=connection)
        with context.begin_transaction():
            context.run_migrations()
"""

TABLE = """
books = sa.Table(
    "books",
    sa.MetaData(),
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("title", sa.String(100), nullable=False),
    sa.Column("price", sa.Numeric(10, 2), nullable=False),
    sa.Column("stock", sa.Integer, nullable=False),
)
"""

FIRST = f"""
from decimal import Decimal

import sqlalchemy as sa
from alembic import op

revision = "0001books"
down_revision = None
{TABLE}

def upgrade():
    op.create_table(
        "books",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("title", sa.String(100), nullable=False),
        sa.Column("price", sa.Numeric(10, 2), nullable=False),
        sa.Column("stock", sa.Integer, nullable=False),
    )
    rows = [
        {{"id": i, "title": f"Book {{i}}", "price": Decimal(f"{{i}}.25"), "stock": i % 7}}
        for i in range(1, 41)
    ]
    op.bulk_insert(books, rows)


def downgrade():
    op.drop_table("books")
"""

SECOND = f"""
import os
from decimal import Decimal

import sqlalchemy as sa
from alembic import context

import setwise.alembic

revision = "0002prices"
down_revision = "0001books"
{TABLE}
CHANGES = os.path.join(os.path.dirname(__file__), os.pardir, "changes.csv")
OPTIONS = {{"chunk_rows": 5, "throttle_seconds": float(os.environ.get("THROTTLE", "0"))}}


def upgrade():
    key_range = None if os.environ.get("NO_KEY_RANGE") else (1, 40)
    statement = (
        sa.update(books)
        .where(books.c.stock > 0)
        .values(price=books.c.price * Decimal("1.10"), stock=books.c.stock - 1)
    )
    setwise.alembic.update(statement, key_range=key_range, **OPTIONS)
    setwise.alembic.apply(books, CHANGES, **OPTIONS)


def downgrade():
    force = context.get_x_argument(as_dictionary=True).get("force") == "yes"
    setwise.alembic.revert_revision(force=force, chunk_rows=5)
"""

UPDATE_TAG = "alembic:0002prices:1"
APPLY_TAG = "alembic:0002prices:2"


def make_project(tmp_path: Path) -> Path:
    """An Alembic project: alembic.ini, env.py, two revisions and a file of changes."""
    project = tmp_path / "project"
    versions = project / "migrations" / "versions"
    versions.mkdir(parents=True)
    (project / "alembic.ini").write_text(
        "[alembic]\nscript_location = %(here)s/migrations\n", encoding="utf-8"
    )
    (project / "migrations" / "env.py").write_text(ENV_PY, encoding="utf-8")
    (versions / "0001_books.py").write_text(FIRST, encoding="utf-8")
    (versions / "0002_prices.py").write_text(SECOND, encoding="utf-8")
    with (project / "migrations" / "changes.csv").open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["id", "title", "price"])
        for i in range(1, 41):
            writer.writerow([i, f"Book {i}, 100% revised" if i % 3 else f"Book {i}", f"{i}.99"])
    return project


def alembic_command(project: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "alembic", "-c", str(project / "alembic.ini"), *args]


def alembic_env(url: str, **env: str) -> dict[str, str]:
    return {**os.environ, "SETWISE_ALEMBIC_URL": url, **env}


def alembic(project: Path, url: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Run ``alembic ARGS`` in a process of its own, as a deploy script would."""
    return subprocess.run(
        alembic_command(project, *args),
        capture_output=True,
        text=True,
        env=alembic_env(url, **env),
        stdin=subprocess.DEVNULL,
        timeout=180,
        check=False,
    )


def upgraded(project: Path, url: str, *args: str, **env: str) -> str:
    done = alembic(project, url, *args, **env)
    assert done.returncode == 0, done.stderr
    return done.stdout


@contextmanager
def twin_database(backend: str, tmp_path: Path) -> Iterator[Engine]:
    """A second fresh, empty database, for the migration run another way."""
    (tmp_path / "twin").mkdir()
    with backends.fresh_database(backend, tmp_path / "twin") as engine:
        yield engine


def script_statements(script: str) -> list[str]:
    """The statements of an offline script, without its comments."""
    found = []
    for part in script.split(";\n"):
        lines = [line for line in part.splitlines() if line.strip() and not line.startswith("--")]
        if lines:
            found.append("\n".join(lines).strip())
    return found


def at_first_revision(engine: Engine, tmp_path: Path) -> tuple[Path, str, list[tuple[Any, ...]]]:
    """The project, the URL of ``engine``'s database upgraded to 0001books, its books."""
    project, url = make_project(tmp_path), cli_url(engine)
    upgraded(project, url, "upgrade", "0001books")
    return project, url, books(engine)


def books(engine: Engine) -> list[tuple[Any, ...]]:
    with reader(engine).connect() as connection:
        return [tuple(row) for row in connection.execute(select(BOOKS).order_by(BOOKS.c.id))]


def stamped(engine: Engine) -> str | None:
    with reader(engine).connect() as connection:
        return connection.scalar(text("SELECT version_num FROM alembic_version"))


def journal(engine: Engine, run_id: str) -> list[tuple[Any, ...]]:
    """The run's journal rows without the run id: chunk, key, and every old/new value."""
    stored = Journal().changes_table(resolve_target(BOOKS), get_strategy(engine.dialect))
    table = Journal.changes(stored)
    columns = [c for c in table.columns if c.name != "run_id"]
    with reader(engine).connect() as connection:
        statement = select(*columns).where(table.c.run_id == run_id).order_by(table.c.k_id)
        return [tuple(row) for row in connection.execute(statement)]


def runs_by_tag(engine: Engine) -> dict[str | None, setwise.RunInfo]:
    return {info.tag: info for info in revision_runs(reader(engine), "0002prices")}


def run_facts(info: setwise.RunInfo) -> tuple[Any, ...]:
    return (info.kind, info.status, info.matched, info.changed, info.chunks, info.columns)


def chunks_of(engine: Engine, tag: str) -> int:
    try:
        found = runs_by_tag(engine).get(tag)
    except Exception:  # the runs table may not exist yet
        return 0
    return found.chunks if found is not None else 0


# -- unit: offline chunks -------------------------------------------------------------


def test_offline_chunks_cover_every_key_whatever_the_range() -> None:
    assert key_spans(1, 40, 5) == [
        Span(None, (5,)),
        *(Span((u,), (u + 5,)) for u in range(5, 35, 5)),
        Span((35,), None),
    ]
    assert key_spans(1, 3, 5) == [Span(None, None)]
    assert key_spans(10, 12, 1) == [Span(None, (10,)), Span((10,), (11,)), Span((11,), None)]
    with pytest.raises(SetwiseError, match="lowest key comes first"):
        key_spans(5, 1, 2)
    with pytest.raises(SetwiseError, match="positive"):
        key_spans(1, 5, 0)


def test_outside_a_migration_the_revision_must_be_named() -> None:
    from setwise.alembic import _revision

    assert _revision("abc") == "abc"
    with pytest.raises(SetwiseError, match="revision="):
        _revision(None)


def test_import_setwise_leaves_alembic_out() -> None:
    check = "import sys, setwise; print('alembic' in sys.modules, 'setwise.alembic' in sys.modules)"
    found = subprocess.run(
        [sys.executable, "-c", check], capture_output=True, text=True, check=True, timeout=60
    )
    assert found.stdout.split() == ["False", "False"]


# -- on every backend -------------------------------------------------------------------


def test_upgrade_runs_chunked_tagged_runs_and_skips_them_after(
    engine: Engine, tmp_path: Path
) -> None:
    project, url, before = at_first_revision(engine, tmp_path)
    upgraded(project, url, "upgrade", "head")

    runs = runs_by_tag(engine)
    assert set(runs) == {UPDATE_TAG, APPLY_TAG}
    update_run, apply_run = runs[UPDATE_TAG], runs[APPLY_TAG]
    # 35 books have stock (i % 7 != 0), in chunks of 5 of the rows that change.
    assert run_facts(update_run) == ("update", "done", 35, 35, 7, ("price", "stock"))
    assert run_facts(apply_run) == ("apply", "done", 40, 40, 8, ("title", "price"))
    assert stamped(engine) == "0002prices"
    after = books(engine)
    first = {row[0]: row for row in before}
    for book_id, title, price, stock in after:
        assert price == Decimal(f"{book_id}.99")
        assert title == (f"Book {book_id}, 100% revised" if book_id % 3 else f"Book {book_id}")
        assert stock == max(first[book_id][3] - 1, 0)
    # chunk, key, then old and new title (not written), price and stock; updated
    assert journal(engine, update_run.run_id)[0] == (
        1, 1, None, None, Decimal("1.25"), Decimal("1.38"), 1, 0, "u",
    )  # fmt: skip

    # Stamped at an older revision again, an upgrade skips the steps that finished.
    upgraded(project, url, "stamp", "0001books")
    output = alembic(project, url, "upgrade", "head")
    assert output.returncode == 0, output.stderr
    assert books(engine) == after
    assert len(revision_runs(engine, "0002prices")) == 2


@pytest.mark.parametrize("killed", [UPDATE_TAG, APPLY_TAG])
def test_upgrade_killed_half_way_resumes_to_the_uninterrupted_result(
    engine: Engine, backend: str, tmp_path: Path, killed: str
) -> None:
    project, url, _ = at_first_revision(engine, tmp_path)
    child = subprocess.Popen(
        alembic_command(project, "upgrade", "head"),
        env=alembic_env(url, THROTTLE="0.25"),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while chunks_of(engine, killed) < 3 and child.poll() is None:
            assert time.monotonic() < deadline, "the run never reached its third chunk"
            time.sleep(0.05)
        assert child.poll() is None, "the upgrade finished before it could be killed"
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL
    cut = runs_by_tag(engine)[killed]
    assert cut.status == "running" and 3 <= cut.chunks < 8
    assert stamped(engine) == "0001books"

    upgraded(project, url, "upgrade", "head")

    resumed = runs_by_tag(engine)
    assert resumed[killed].run_id == cut.run_id, "the killed run was resumed, not begun again"
    assert len(revision_runs(engine, "0002prices")) == 2
    with twin_database(backend, tmp_path) as other:
        other_url = cli_url(other)
        upgraded(project, other_url, "upgrade", "head")
        assert books(engine) == books(other)
        assert stamped(engine) == stamped(other) == "0002prices"
        whole = runs_by_tag(other)
        assert set(whole) == set(resumed)
        for tag, info in whole.items():
            assert run_facts(resumed[tag]) == run_facts(info)
            assert journal(engine, resumed[tag].run_id) == journal(other, info.run_id)


def test_downgrade_reverts_the_revision_runs_with_the_conflict_check(
    engine: Engine, tmp_path: Path
) -> None:
    project, url, before = at_first_revision(engine, tmp_path)
    upgraded(project, url, "upgrade", "head")
    after = books(engine)

    upgraded(project, url, "downgrade", "-1")
    assert books(engine) == before
    assert stamped(engine) == "0001books"
    assert all(info.reverted_by for info in revision_runs(engine, "0002prices"))
    reverts = [info for info in setwise.runs(engine) if info.kind == "revert"]
    assert {info.tag for info in reverts} == {"alembic:0002prices:downgrade"}

    # Upgraded again, the revision runs anew; then a row changes under it.
    upgraded(project, url, "upgrade", "head")
    assert books(engine) == after
    assert len(revision_runs(engine, "0002prices")) == 4
    with engine.begin() as connection:
        connection.execute(BOOKS.update().where(BOOKS.c.id == 3).values(price=Decimal("0.50")))
    refused = alembic(project, url, "downgrade", "-1")
    assert refused.returncode != 0
    assert "ConflictError" in refused.stderr and "0.50" in refused.stderr
    assert stamped(engine) == "0002prices"
    assert books(engine)[2][2] == Decimal("0.50")

    upgraded(project, url, "-x", "force=yes", "downgrade", "-1")
    assert books(engine) == before
    assert stamped(engine) == "0001books"


def test_offline_upgrade_prints_the_chunked_sql_a_dba_would_run(
    engine: Engine, backend: str, tmp_path: Path
) -> None:
    project, url = make_project(tmp_path), cli_url(engine)
    script = upgraded(project, url, "upgrade", "0001books:0002prices", "--sql")

    assert "setwise_journal_books" in script and UPDATE_TAG in script and APPLY_TAG in script
    statements = script_statements(script)
    updates = [i for i, s in enumerate(statements) if s.startswith("UPDATE books")]
    assert len(updates) == 8 + 40  # the update's chunks, then a statement per changed row
    for i in updates[:8]:
        assert statements[i - 1].upper().startswith("BEGIN")
        assert statements[i + 1].upper() == "COMMIT"
    assert "books.id <= 5" in statements[updates[0]]
    assert "books.id > 35" in statements[updates[7]]
    assert "1.10" in statements[updates[0]]  # values written out, no placeholders
    assert "?" not in script and "%(" not in script

    # The script, run as a DBA would, gives the table an online upgrade gives.
    upgraded(project, url, "upgrade", "0001books")
    run_script(engine, script)
    assert stamped(engine) == "0002prices"
    with twin_database(backend, tmp_path) as other:
        upgraded(project, cli_url(other), "upgrade", "head")
        assert books(engine) == books(other)

    missing = alembic(project, url, "upgrade", "0001books:0002prices", "--sql", NO_KEY_RANGE="1")
    assert missing.returncode != 0
    assert "key_range=(lowest, highest)" in missing.stderr


def run_script(engine: Engine, script: str) -> None:
    """Run an offline script statement by statement, as text with no parameters (as a
    database's own client sends it), its BEGINs and COMMITs included."""
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        for statement in script_statements(script):
            cursor.execute(statement)
        cursor.close()
