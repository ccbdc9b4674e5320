"""Every ``--where`` / ``--set`` text ends in a checked statement or a ``SQLTextError``.

Two ways: the hostile corpus of ``tests/hostile_text.py`` run through ``plan`` and
``update`` on each database, and a hypothesis property over texts made of SQL's
pieces, for which only a statement or a ``SQLTextError`` may come out.
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, Table, Update, inspect, select
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError

import setwise
from setwise.dialects import get_strategy
from setwise.sqltext import parse_assignment, parse_update, parse_where
from tests.hostile_text import CORPUS
from tests.models import Author, Base, create_books, snapshot

#: Texts a database refuses when it runs them, for the values they meet: a division by
#: zero, a result out of the column's range, a subquery that finds several rows where
#: one value goes. The checker cannot know these before the rows are read; the
#: database's own error is the right answer. By backend family (galera is mariadb).
DATABASE_REFUSES = {
    "stock / 0 = 1": {"postgresql", "mariadb"},
    "price = price * 1e300": {"postgresql", "mariadb"},
    "(SELECT id FROM books) = 1": {"postgresql", "mariadb"},
    "stock = (SELECT id FROM authors)": {"postgresql", "mariadb"},
}

#: Seconds a plan of a corpus text may count: enough for any text that is not built
#: to multiply rows (the slowest, 5,000 IN values, plans in about a second).
PLAN_SECONDS = 3.0

#: Files a text would have written had a side effect got through.
WRITTEN = ("/tmp/setwise-out", "/tmp/setwise-pwned", "/tmp/setwise-attached.db")


@pytest.fixture
def books(engine: Engine) -> Engine:
    create_books(engine, 20)
    return engine


def family(engine: Engine) -> str:
    name = get_strategy(engine.dialect).name
    return "mariadb" if name == "mysql" else name


def run_text(engine: Engine, option: str, text: str) -> tuple[str, str]:
    """What the text came to: "refused" (SQLTextError), "checked" (another
    SetwiseError), "ran" (plan and update agreed), "database" (the database refused
    it running) or "crashed"; and a detail for the failure message."""
    sets, where = ([text], "id > 0") if option == "set" else (["stock = stock + 1"], text)
    try:
        statement = parse_update(engine, "books", sets, where)
    except setwise.SQLTextError as error:
        return "refused", error.reason
    except Exception as error:
        return "crashed", f"{type(error).__name__}: {error}"
    try:
        plan = setwise.plan(engine, statement, journal=False, timeout_seconds=PLAN_SECONDS)
        with engine.connect() as connection:
            transaction = connection.begin()
            report = setwise.update(connection, statement, journal=False)
            transaction.rollback()
    except setwise.SetwiseError as error:
        return "checked", type(error).__name__
    except DBAPIError as error:
        return "database", str(error.orig).splitlines()[0]
    except Exception as error:
        return "crashed", f"{type(error).__name__}: {error}"
    if report.changed != plan.would_change:
        return "crashed", f"plan said {plan.would_change} would change, update {report.changed}"
    return "ran", ""


# SQLAlchemy warns of the cartesian product a comma join without a condition asks for.
@pytest.mark.filterwarnings("ignore:SELECT statement has a cartesian product")
# The same checker and the same SQL as mariadb: a Galera cluster adds no case here.
@pytest.mark.backends("sqlite", "postgresql", "mariadb")
def test_the_hostile_corpus_is_refused_checked_or_run_harmlessly(
    books: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    assert len(CORPUS) >= 150
    before = snapshot(books)
    with books.connect() as connection:
        authors = connection.execute(select(Author).order_by(Author.id)).all()
    tables = set(inspect(books).get_table_names())
    outcomes: Counter[str] = Counter()
    wrong = []
    for option, text in CORPUS:
        started = time.monotonic()
        outcome, detail = run_text(books, option, text)
        took = time.monotonic() - started
        outcomes[outcome] += 1
        refusal_expected = family(books) in DATABASE_REFUSES.get(text, set())
        if outcome == "crashed" or (outcome == "database") != refusal_expected:
            wrong.append(f"--{option} {text[:80]!r}: {outcome}: {detail[:300]}")
        # A text that sleeps or reads without end would show here, past the plan's limit.
        assert took < 2 * PLAN_SECONDS + 10, f"{text[:80]!r} took {took:.1f} s"
    with capsys.disabled():
        print(f"\nhostile corpus on {books.dialect.name}: {dict(sorted(outcomes.items()))}")
    assert wrong == []
    assert snapshot(books) == before
    with books.connect() as connection:
        assert connection.execute(select(Author).order_by(Author.id)).all() == authors
    assert set(inspect(books).get_table_names()) == tables
    assert not [path for path in WRITTEN if Path(path).exists()]


# -- property: any text ends in a statement or a SQLTextError ---------------------------

PIECES = [
    *("id", "title", "genre", "price", "stock", "published", "author_id", "nosuch"),
    *("books", "authors", "b", "a", "books.id", "a.id", "pg_catalog.pg_authid", "mysql.user"),
    *("sqlite_master", "information_schema.tables", "nosuchschema.t", "seq_1_to_9"),
    *("SELECT", "FROM", "WHERE", "AND", "OR", "NOT", "IN", "EXISTS", "CASE", "WHEN"),
    *("THEN", "ELSE", "END", "IS", "NULL", "LIKE", "BETWEEN", "LIMIT", "GROUP BY", "ORDER BY"),
    *("JOIN", "LEFT JOIN", "ON", "AS", "UNION", "DISTINCT", "TRUE", "FALSE", "HAVING", "ALL"),
    *("DROP TABLE", "DELETE", "UPDATE", "INSERT INTO", "SET", "WITH", "RETURNING", "INTO"),
    *("COALESCE(", "LOWER(", "SUBSTR(", "ROUND(", "COUNT(", "MAX(", "COUNT(*)", "NOW()"),
    *("pg_sleep(", "SLEEP(", "generate_series(", "json_each(", "CAST(", "ARRAY["),
    *("=", "<>", "!=", "<", ">=", "<=>", "+", "-", "*", "/", "%", "||", "::", ";", ",", "."),
    *("(", "(", ")", ")", "[", "]", "?", ":x", "$1", "@v", "--", "/*", "*/", "#"),
    *("0", "1", "-1", "1.5", "1e5", "1e5-1", "1e400", "1e-400", "0x1F", "99999999999999999999"),
    *("'fiction'", "''", "'it''s'", "'2021-03-04'", "'unterminated", '"id"', '"x', "`id`"),
    *("N'x'", "X'41'", "$$x$$", "E'x'", "'\\'", "'😀'", "\u0661", "\u200b", "\x00", "\n"),
]

# Expressions that parse: they reach the rebuilding, the limits and the compiler.
OPERANDS = st.sampled_from(
    ["id", "stock", "price", "genre", "title", "NULL", "TRUE", "1", "-2", "1.5", "'x'", "1e308"]
)
expressions = st.recursive(
    OPERANDS,
    lambda inner: st.one_of(
        st.tuples(inner, st.sampled_from(["=", "<", "+", "-", "/", "AND", "OR", "||"]), inner).map(
            " ".join
        ),
        inner.map(lambda e: f"({e})"),
        inner.map(lambda e: f"NOT {e}"),
        inner.map(lambda e: f"-{e}"),
        inner.map(lambda e: f"COALESCE({e}, 0)"),
        inner.map(lambda e: f"CASE WHEN {e} THEN 1 ELSE 0 END"),
        inner.map(lambda e: f"id IN (SELECT b.id FROM books b WHERE {e})"),
        st.lists(inner, min_size=1, max_size=5).map(lambda es: f"id IN ({', '.join(es)})"),
    ),
    max_leaves=16,
)

texts = st.one_of(
    st.lists(st.sampled_from(PIECES), max_size=24).map(" ".join),
    st.lists(st.sampled_from(PIECES), max_size=24).map("".join),
    st.text(max_size=40),
    expressions,
    expressions.map(lambda e: f"({e}) IS NULL"),
    expressions.map(lambda e: f"stock = {e}"),
)


UNIT_DIALECTS: list[Dialect] = [sqlite.dialect(), postgresql.dialect(), mysql.dialect()]


def checked_or_refused(text: str, table: Table, dialect: Dialect, option: str) -> None:
    """The property: a compiled statement, or a SQLTextError; nothing else."""
    try:
        if option == "where":
            condition = parse_where(text, table, dialect)
            statement: Update = table.update().values(stock=0).where(condition)
        else:
            column, value = parse_assignment(text, table, dialect)
            statement = table.update().values({column: value})
    except setwise.SQLTextError as error:
        assert 0 <= error.position <= len(text)
        assert "^" in str(error)
        return
    statement.compile(dialect=dialect)


# Derandomized and bounded: the same 600 texts a dialect on every run, in seconds.
@settings(max_examples=600, derandomize=True, deadline=None)
@given(text=texts, option=st.sampled_from(["where", "set"]))
@pytest.mark.parametrize("dialect", UNIT_DIALECTS, ids=lambda d: f"dialect={d.name}")
def test_any_text_compiles_or_is_refused_with_a_caret(
    dialect: Dialect, text: str, option: str
) -> None:
    checked_or_refused(text, Base.metadata.tables["books"], dialect, option)


# On a real database the tables a subquery names are reflected, schemas included.
@settings(
    max_examples=150,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(text=texts, option=st.sampled_from(["where", "set"]))
def test_any_text_on_a_database_becomes_a_statement_or_is_refused(
    books: Engine, text: str, option: str
) -> None:
    sets, where = ([text], "id > 0") if option == "set" else (["stock = 0"], text)
    try:
        statement = parse_update(books, "books", sets, where)
    except setwise.SQLTextError as error:
        assert "^" in str(error)
        return
    statement.compile(dialect=books.dialect)
