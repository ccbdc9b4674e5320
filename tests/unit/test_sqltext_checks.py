"""--where / --set text checked and rebuilt against the table's metadata, for each
database's real dialect object: what is refused, where the caret goes, what is bound.
No connection: the tables a subquery reads come from the MetaData."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import update
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.engine import Dialect

from setwise import SQLTextError
from setwise.sqltext import parse_assignment, parse_where
from setwise.sqltext.limits import MAX_NESTING
from tests.models import Book

BOOKS = Book.__table__
DIALECTS = {
    # Not the backends' names: the run's summary counts tests per backend by id.
    "PostgreSQL-dialect": postgresql.psycopg.dialect(),
    "MySQL-dialect": mysql.pymysql.dialect(),
    "SQLite-dialect": sqlite.dialect(),
}


@pytest.fixture(params=list(DIALECTS), ids=list(DIALECTS))
def dialect(request: pytest.FixtureRequest) -> Dialect:
    return DIALECTS[request.param]


def refusal(text: str, dialect: Dialect, option: str = "where") -> SQLTextError:
    with pytest.raises(SQLTextError) as caught:
        if option == "where":
            parse_where(text, BOOKS, dialect)
        else:
            parse_assignment(text, BOOKS, dialect)
    return caught.value


REFUSED = [
    ("id = 1; DROP TABLE books", "';' would start a second statement; give one expression", ";"),
    ("id = 1; UPDATE books SET stock = 0", "would start a second statement", ";"),
    ("DROP TABLE books", "DROP is not allowed", "DROP"),
    ("price > ?", "parameters are not allowed: write the value itself", "?"),
    ("SLEEP(1) = 0", "function SLEEP is not allowed; allowed: ABS, CHAR_LENGTH,", "SLEEP"),
    ("pg_sleep(5) IS NULL", "function PG_SLEEP is not allowed", "pg_sleep"),
    ("COUNT(*) > 1", "COUNT is an aggregate: use it in a subquery", "COUNT"),
    ("id = 1 LIMIT 1", "cannot read this", "LIMIT"),
    ("authors.name = 'x'", "column of another table", "authors.name"),
    ("genre = NULL", "comparison with NULL is never true", "genre"),
    ("stock = 'many'", "this is text, met with a number", "'many'"),
    ("(" * (MAX_NESTING + 1) + "id = 1" + ")" * (MAX_NESTING + 1), "nested too deeply", "("),
    ("NOT " * (MAX_NESTING + 1) + "id = 1", "nested too deeply", "NOT"),
    ("price > 1e5-1", "'1e5-1' is not a number: write 1e5 - 1", "1e5-1"),
    ("price > 1e400", "1e400 is out of range: more than 1e308 or less than 1e-308", "1e400"),
    ("price > " + "9" * 1001, "a number of more than 1000 digits", "9999"),
]


@pytest.mark.parametrize(("text", "reason", "token"), REFUSED, ids=[t[:30] for t, _, _ in REFUSED])
def test_text_outside_what_setwise_rebuilds_is_refused_with_a_caret(
    dialect: Dialect, text: str, reason: str, token: str
) -> None:
    error = refusal(text, dialect)
    assert reason in error.reason
    assert error.token.startswith(token)
    assert text[error.position :].startswith(token)
    label, shown, caret = str(error).splitlines()
    assert label.startswith("--where: ") and shown == f"  {text}"
    assert caret.index("^") - 2 == error.position


@pytest.mark.parametrize(
    ("text", "unknown", "suggestion"),
    [
        ("prise > 10", "unknown column 'prise' in table 'books'", "price"),
        ("stok < 3", "unknown column 'stok' in table 'books'", "stock"),
        ("id IN (SELECT id FROM authorz)", "unknown table 'authorz'", "authors"),
    ],
)
def test_an_unknown_name_suggests_the_closest_one(
    dialect: Dialect, text: str, unknown: str, suggestion: str
) -> None:
    error = refusal(text, dialect)
    assert error.reason == unknown
    assert error.suggestion == suggestion
    assert f"{unknown}. Did you mean {suggestion!r}?" in str(error)


@pytest.mark.parametrize(
    ("text", "own"),
    [
        ("title = (SELECT rolpassword FROM pg_authid LIMIT 1)", "PostgreSQL-dialect"),
        ("title = (SELECT authentication_string FROM mysql.user LIMIT 1)", "MySQL-dialect"),
        ("title = (SELECT sql FROM sqlite_master LIMIT 1)", "SQLite-dialect"),
    ],
)
def test_a_subquery_may_not_read_the_databases_own_tables(text: str, own: str) -> None:
    error = refusal(text, DIALECTS[own], option="set")
    assert "own tables, not a user's: a subquery may read user tables only" in error.reason


def test_literals_are_bound_and_decimals_stay_exact(dialect: Dialect) -> None:
    condition = parse_where(
        "genre = 'o''Brien; DROP' AND price * 1.10 > 12.345 AND UPPER(title) LIKE 'A%'",
        BOOKS,
        dialect,
    )
    compiled = condition.compile(dialect=dialect)
    assert "Brien" not in str(compiled) and "12.345" not in str(compiled)
    assert sorted(map(str, compiled.params.values())) == sorted(
        ["o'Brien; DROP", "1.10", "12.345", "A%"]
    )
    assert Decimal("1.10") in compiled.params.values()


def test_a_subquery_reads_another_table_of_the_metadata(dialect: Dialect) -> None:
    condition = parse_where(
        "author_id IN (SELECT id FROM authors WHERE name = 'A')", BOOKS, dialect
    )
    assert "FROM authors" in str(condition.compile(dialect=dialect))


def test_an_assignment_sets_a_column_of_the_table_bound_with_its_type(dialect: Dialect) -> None:
    column, value = parse_assignment("price = price * 1.10", BOOKS, dialect)
    assert column is BOOKS.c.price
    text = str(update(BOOKS).values({column: value}).compile(dialect=dialect))
    assert "price=(books.price *" in text.replace(" = ", "=")
    column, value = parse_assignment("published = '2021-03-04'", BOOKS, dialect)
    assert str(value.compile(dialect=dialect, compile_kwargs={"literal_binds": True})) == (
        "'2021-03-04'"
    )


@pytest.mark.parametrize(
    ("text", "reason", "token"),
    [
        ("price + 1 = 2", "expected an assignment: column = expression", "price"),
        ("price := 2", "cannot read this", ":"),
        ("price = 1; DROP TABLE books", "would start a second statement", ";"),
        ("published = 'last tuesday'", "not an ISO 8601 date", "'last tuesday'"),
    ],
)
def test_a_bad_assignment_is_refused(dialect: Dialect, text: str, reason: str, token: str) -> None:
    error = refusal(text, dialect, option="set")
    assert reason in error.reason
    assert text[error.position :].startswith(token)


@pytest.mark.parametrize("name", ["MySQL-dialect", "SQLite-dialect"])
def test_now_is_allowed_in_every_dialect(name: str) -> None:
    parse_where("published < NOW()", BOOKS, DIALECTS[name])
