"""setwise.patch on every backend: partial updates, validation, not found, optimistic locks."""

from __future__ import annotations

import threading
import uuid
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import (
    Column,
    Engine,
    ForeignKey,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    delete,
    event,
    insert,
    select,
    update,
)
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, registry
from sqlalchemy.orm.exc import StaleDataError

import setwise
from tests.backends import reader
from tests.models import Book, create_books, snapshot

pytestmark = pytest.mark.async_twin

#: The isolation levels SQLAlchemy offers a server's transactions (each server's default
#: among them: READ COMMITTED on PostgreSQL, REPEATABLE READ on MariaDB).
SERVER_LEVELS = ("READ COMMITTED", "REPEATABLE READ", "SERIALIZABLE")
#: SQLite's: SERIALIZABLE is its default; AUTOCOMMIT leaves the driver no transaction of
#: its own. (READ UNCOMMITTED differs only between connections sharing a cache.)
SQLITE_LEVELS = ("SERIALIZABLE", "AUTOCOMMIT")


def keyed_by_id(name: str, *columns: Column[Any]) -> Table:
    """A table of its own metadata, keyed by an integer ``id``, with ``columns``."""
    key = Column("id", Integer, primary_key=True, autoincrement=False)
    return Table(name, MetaData(), key, *columns)


#: Versioned by a UUID the mapper's generator gives, as SQLAlchemy's docs show.
notes = keyed_by_id("notes", Column("body", String(50)), Column("rev", String(32)))


class Note:
    id: int
    body: str
    rev: str


registry().map_imperatively(
    Note, notes, version_id_col=notes.c.rev, version_id_generator=lambda _: uuid.uuid4().hex
)


#: Staff of two kinds in one table (single-table inheritance).
staff = keyed_by_id("staff", Column("name", String(50)), Column("kind", String(10)))


class Person:
    name: str


class Manager(Person):
    pass


class Clerk(Person):
    pass


staff_registry = registry()
staff_registry.map_imperatively(Person, staff, polymorphic_on=staff.c.kind)
staff_registry.map_imperatively(Manager, inherits=Person, polymorphic_identity="manager")
staff_registry.map_imperatively(Clerk, inherits=Person, polymorphic_identity="clerk")


#: Engineers are employees (joined-table inheritance); the version is the employee's.
employees = keyed_by_id(
    "employees",
    Column("kind", String(10)),
    Column("version", Integer, nullable=False),
)
engineers = Table(
    "engineers",
    employees.metadata,
    Column("id", Integer, ForeignKey("employees.id"), primary_key=True),
    Column("language", String(20)),
)


class Employee:
    version: int


class Engineer(Employee):
    language: str


staff_registry.map_imperatively(
    Employee,
    employees,
    polymorphic_on=employees.c.kind,
    polymorphic_identity="employee",
    version_id_col=employees.c.version,
)
staff_registry.map_imperatively(
    Engineer, engineers, inherits=Employee, polymorphic_identity="engineer"
)


#: Contractors are employees too, keyed by a column of another name than the parent's.
contractors = Table(
    "contractors",
    employees.metadata,
    Column("contractor_id", Integer, ForeignKey("employees.id"), primary_key=True),
    Column("firm", String(20)),
)


class Contractor(Employee):
    firm: str


staff_registry.map_imperatively(
    Contractor, contractors, inherits=Employee, polymorphic_identity="contractor"
)


#: A column whose key (the attribute) is not its name in the database.
priced = keyed_by_id("priced", Column("price", Numeric(10, 2), key="cost"))


class Priced:
    cost: Decimal


registry().map_imperatively(Priced, priced)


@pytest.fixture
def books(engine: Engine) -> Engine:
    create_books(engine, 5)
    return engine


def test_only_the_given_fields_change_and_the_version_moves(books: Engine) -> None:
    before = snapshot(books)
    with Session(books) as session:
        book = setwise.patch(session, Book, 2, {"price": Decimal("9.99")}, expected_version=1)
        assert book.price == Decimal("9.99")
        assert book.version == 2
        assert book.title == "Book 2"
    after = snapshot(books)
    assert after[1][4] == Decimal("9.99") and after[1][8] == 2
    assert [row for i, row in enumerate(after) if i != 1] == [
        row for i, row in enumerate(before) if i != 1
    ]


def test_the_returned_object_is_the_one_the_session_already_had(books: Engine) -> None:
    with Session(books) as session:
        loaded = session.get(Book, 3)
        patched = setwise.patch(session, Book, {"id": 3}, {"stock": 0})
        assert patched is loaded
        assert loaded is not None and loaded.stock == 0 and loaded.version == 2
        session.commit()


def test_none_clears_a_nullable_column(books: Engine) -> None:
    with Session(books) as session:
        book = setwise.patch(session, Book, 1, {"genre": None, "published": None})
        assert book.genre is None and book.published is None


def test_none_on_a_not_null_column_and_other_bad_values_are_refused_together(
    books: Engine,
) -> None:
    before = snapshot(books)
    with Session(books) as session, pytest.raises(setwise.ValidationError) as caught:
        setwise.patch(
            session,
            Book,
            1,
            {"title": None, "price": "cheap", "id": 7, "pricee": 1, "version": 9},
        )
    reasons = {problem.column: problem.reason for problem in caught.value.problems}
    assert "NOT NULL" in reasons["title"]
    assert "expected a number" in reasons["price"]
    assert "primary key" in reasons["id"]
    assert "did you mean 'price'" in reasons["pricee"]
    assert "version column" in reasons["version"]
    assert snapshot(books) == before


@pytest.mark.parametrize("key", ["2", True, 10**30])
def test_a_key_of_another_type_than_its_column_is_refused(books: Engine, key: object) -> None:
    # Unchecked, "2" and True patched a row on SQLite and MariaDB and failed in
    # PostgreSQL's driver; 10**30 overflowed SQLite's driver.
    before = snapshot(books)
    with Session(books) as session, pytest.raises(setwise.ValidationError) as caught:
        setwise.patch(session, Book, key, {"stock": 0})
    problem = caught.value.problems[0]
    assert (problem.column, problem.value) == ("id", key)
    assert problem.reason.startswith("the key given: ")
    assert snapshot(books) == before


@pytest.mark.parametrize("expected", ["1", True])
def test_an_expected_version_of_another_type_is_refused(books: Engine, expected: object) -> None:
    before = snapshot(books)
    with Session(books) as session, pytest.raises(setwise.ValidationError) as caught:
        setwise.patch(session, Book, 1, {"stock": 0}, expected_version=expected)
    problem = caught.value.problems[0]
    assert (problem.column, problem.value) == ("version", expected)
    assert problem.reason.startswith("expected_version: ")
    assert snapshot(books) == before


@pytest.mark.lacks("nul_in_text")
def test_text_the_database_cannot_hold_is_refused_before_anything_is_sent(
    books: Engine,
) -> None:
    before = snapshot(books)
    with Session(books) as session, pytest.raises(setwise.ValidationError) as caught:
        setwise.patch(session, Book, 1, {"title": "a\0b"})
    assert (caught.value.problems[0].column, caught.value.problems[0].value) == ("title", "a\0b")
    assert "NUL character" in caught.value.problems[0].reason
    assert snapshot(books) == before


def test_a_validate_callable_rejects_before_anything_is_sent(books: Engine) -> None:
    def positive_price(changes: Any) -> dict[str, str] | None:
        if changes.get("price", 1) <= 0:
            return {"price": "price must be positive"}
        return None

    before = snapshot(books)
    with Session(books) as session, pytest.raises(setwise.ValidationError) as caught:
        setwise.patch(session, Book, 1, {"price": Decimal("0")}, validate=positive_price)
    assert caught.value.problems[0].reason == "price must be positive"
    assert caught.value.problems[0].value == Decimal("0")
    assert snapshot(books) == before


def test_the_returned_object_holds_what_the_patch_stored(books: Engine) -> None:
    def another_session_deletes_it(_: Session) -> None:
        with books.begin() as connection:
            connection.execute(delete(Book).where(Book.id == 2))

    with Session(books) as session:  # idle: the patch commits a transaction of its own
        event.listen(session, "after_commit", another_session_deletes_it, once=True)
        book = setwise.patch(session, Book, 2, {"stock": 5}, expected_version=1)
        assert (book.stock, book.version, book.title) == (5, 2, "Book 2")
    assert [row[0] for row in snapshot(books)] == [1, 3, 4, 5]


def test_a_missing_row_is_not_found(books: Engine) -> None:
    with Session(books) as session, pytest.raises(setwise.NotFoundError, match="key 404"):
        setwise.patch(session, Book, 404, {"stock": 1})


def test_a_stale_version_is_a_conflict_carrying_the_current_version(books: Engine) -> None:
    with Session(books) as session:
        setwise.patch(session, Book, 1, {"stock": 1}, expected_version=1)
        with pytest.raises(setwise.ConflictError) as caught:
            setwise.patch(session, Book, 1, {"stock": 2}, expected_version=1)
    assert caught.value.current_version == 2
    assert caught.value.expected_version == 1
    assert snapshot(books)[0][5] == 1


def test_a_version_the_mappers_generator_gives_moves_and_is_checked(engine: Engine) -> None:
    notes.create(engine)
    with engine.begin() as connection:
        connection.execute(insert(notes), [{"id": 1, "body": "first", "rev": "r1"}])
    with Session(engine) as session:
        note = setwise.patch(session, Note, 1, {"body": "second"}, expected_version="r1")
        moved = note.rev
    assert moved != "r1" and len(moved) == 32
    with Session(engine) as session, pytest.raises(setwise.ConflictError) as caught:
        setwise.patch(session, Note, 1, {"body": "lost"}, expected_version="r1")
    assert (caught.value.expected_version, caught.value.current_version) == ("r1", moved)
    # An object loaded before a patch cannot write over it.
    with Session(engine, expire_on_commit=False) as session:
        loaded = session.get(Note, 1)
        assert loaded is not None
        session.commit()
        setwise.patch(Session(engine), Note, 1, {"body": "third"})
        loaded.body = "stale"
        with pytest.raises(StaleDataError):
            session.commit()
    with engine.connect() as connection:
        assert connection.execute(select(notes.c.body)).scalar_one() == "third"


def test_a_row_of_another_class_in_the_same_table_is_not_found(engine: Engine) -> None:
    staff.create(engine)
    with engine.begin() as connection:
        connection.execute(insert(staff), [{"id": 1, "name": "Ann", "kind": "clerk"}])
    with Session(engine) as session, pytest.raises(setwise.NotFoundError, match="key 1"):
        setwise.patch(session, Manager, 1, {"name": "Boss"})
    with Session(engine) as session:
        clerk = setwise.patch(session, Clerk, 1, {"name": "Anne"})
        assert isinstance(clerk, Clerk) and clerk.name == "Anne"
    with engine.connect() as connection:
        assert connection.execute(select(staff.c.name)).scalar_one() == "Anne"


def test_a_subclass_in_a_table_of_its_own_moves_the_version_its_parent_keeps(
    engine: Engine,
) -> None:
    # The ORM keeps the version in the employees row and moves it whichever table a
    # flush writes: a patch of the engineers row alone must move it as well.
    employees.metadata.create_all(engine)
    with engine.begin() as connection:
        connection.execute(
            insert(employees),
            [
                {"id": 1, "kind": "engineer", "version": 1},
                {"id": 2, "kind": "employee", "version": 1},
            ],
        )
        connection.execute(insert(engineers), [{"id": 1, "language": "py"}])
    with Session(engine, expire_on_commit=False) as holder:
        held = holder.get(Engineer, 1)
        assert held is not None
        holder.commit()
        with Session(engine) as session:
            patched = setwise.patch(session, Engineer, 1, {"language": "go"}, expected_version=1)
            assert (patched.language, patched.version) == ("go", 2)
        with Session(engine) as session, pytest.raises(setwise.ConflictError) as caught:
            setwise.patch(session, Engineer, 1, {"language": "rs"}, expected_version=1)
        assert (caught.value.expected_version, caught.value.current_version) == (1, 2)
        held.language = "stale"  # loaded before the patch: its flush must not win
        with pytest.raises(StaleDataError):
            holder.commit()
    with Session(engine) as session, pytest.raises(setwise.NotFoundError, match="key 2"):
        setwise.patch(session, Engineer, 2, {"language": "go"})  # an employee, no engineer
    with Session(engine) as session, pytest.raises(setwise.ValidationError, match="employees"):
        setwise.patch(session, Engineer, 1, {"kind": "boss"})  # a column of the parent table
    with engine.connect() as connection:
        assert connection.execute(select(engineers.c.language)).scalar_one() == "go"
        versions = connection.execute(select(employees.c.version).order_by(employees.c.id))
        assert versions.scalars().all() == [2, 1]


def test_a_field_whose_column_is_named_otherwise_is_patched(engine: Engine) -> None:
    priced.create(engine)
    with engine.begin() as connection:
        connection.execute(insert(priced), [{"id": 1, "cost": Decimal("1.50")}])
    with Session(engine) as session:
        assert setwise.patch(session, Priced, 1, {"cost": Decimal("2.50")}).cost == Decimal("2.50")
    with engine.connect() as connection:
        assert connection.execute(select(priced.c.cost)).scalar_one() == Decimal("2.50")


def test_a_parent_row_patch_cannot_find_by_the_key_is_refused(engine: Engine) -> None:
    # Unguarded, no column of the parent's key matched: every employee's version moved.
    employees.metadata.create_all(engine)
    with engine.begin() as connection:
        rows = [{"id": 1, "kind": "contractor", "version": 1}, {"id": 2, "kind": "employee"}]
        connection.execute(insert(employees), [{"version": 1, **row} for row in rows])
        connection.execute(insert(contractors), [{"contractor_id": 1, "firm": "Acme"}])
    with Session(engine) as session, pytest.raises(setwise.SchemaError, match="employees"):
        setwise.patch(session, Contractor, 1, {"firm": "Other"})
    with engine.connect() as connection:
        assert connection.execute(select(employees.c.version)).scalars().all() == [1, 1]


@pytest.mark.async_twin(False)  # threads: an asyncio driver's connection works in its greenlet
def test_two_writers_with_the_same_version_exactly_one_wins(books: Engine) -> None:
    barrier = threading.Barrier(2)
    outcomes: list[object] = []

    def writer(stock: int) -> None:
        with Session(books) as session:
            barrier.wait()
            try:
                setwise.patch(session, Book, 4, {"stock": stock}, expected_version=1)
                outcomes.append(stock)
            except setwise.ConflictError as exc:
                outcomes.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in (100, 200)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    winners = [o for o in outcomes if isinstance(o, int)]
    losers = [o for o in outcomes if isinstance(o, setwise.ConflictError)]
    assert len(winners) == 1 and len(losers) == 1, outcomes
    assert losers[0].current_version == 2
    row = snapshot(books)[3]
    assert row[5] == winners[0] and row[8] == 2


@pytest.mark.driver_twin
def test_a_unique_violation_names_the_constraint_and_changes_nothing(books: Engine) -> None:
    before = snapshot(books)
    with Session(books) as session, pytest.raises(setwise.ValidationError) as caught:
        setwise.patch(session, Book, 1, {"isbn": "978-000002"})
    assert caught.value.constraint == "uq_books_isbn"
    assert "unique constraint 'uq_books_isbn' on (isbn)" in str(caught.value)
    assert caught.value.problems[0].value == "978-000002"
    assert snapshot(books) == before


@pytest.mark.driver_twin
def test_a_foreign_key_violation_names_the_constraint(books: Engine) -> None:
    with Session(books) as session, pytest.raises(setwise.ValidationError) as caught:
        setwise.patch(session, Book, 1, {"author_id": 99})
    assert caught.value.constraint == "fk_books_author"
    assert caught.value.problems[0].column == "author_id"


@pytest.mark.driver_twin
def test_a_check_violation_names_the_constraint(books: Engine) -> None:
    with Session(books) as session, pytest.raises(setwise.ValidationError) as caught:
        setwise.patch(session, Book, 1, {"price": Decimal("-1.00")})
    assert caught.value.constraint == "ck_books_price_positive"


def test_inside_the_callers_transaction_a_failure_leaves_earlier_work(books: Engine) -> None:
    with Session(books) as session:
        setwise.patch(session, Book, 1, {"stock": 11})  # commits: the session was idle
        book = session.get(Book, 2)
        assert book is not None
        book.stock = 22
        with pytest.raises(setwise.ValidationError):
            setwise.patch(session, Book, 3, {"isbn": "978-000001"})
        session.commit()
    rows = snapshot(books)
    assert (rows[0][5], rows[1][5]) == (11, 22)  # both of the caller's changes were kept
    assert rows[2][1] == "978-000003"  # the failed patch wrote nothing


def _stale_sessions_patch_is_a_conflict(books: Engine, level: str) -> None:
    """Two sessions read book 1 at version 1. The second's transaction (at ``level``)
    begins before the first patches the book and commits; then the second patches it
    with the version it read."""
    first = Session(books)
    second = Session(books.execution_options(isolation_level=level))
    with first, second:
        loaded = second.get(Book, 1)
        assert loaded is not None and loaded.version == 1
        second.commit()
        # The caller's transaction goes on with other rows: under REPEATABLE READ its
        # snapshot is taken here, before the first session's commit.
        assert second.get(Book, 2) is not None
        setwise.patch(first, Book, 1, {"stock": 100}, expected_version=1)
        with pytest.raises(setwise.ConflictError) as caught:
            setwise.patch(second, Book, 1, {"stock": 200}, expected_version=1)
        assert (caught.value.expected_version, caught.value.current_version) == (1, 2)
        assert loaded.stock != 200  # the refused value shows nowhere
        # The caller's transaction is still usable: its next write is kept.
        setwise.patch(second, Book, 2, {"stock": 22})
        second.commit()
        assert loaded.stock == 100 and loaded.version == 2  # as stored, not the refused 200
    rows = snapshot(books)
    assert (rows[0][5], rows[0][8]) == (100, 2)
    assert (rows[1][5], rows[1][8]) == (22, 2)


@pytest.mark.lacks("single_writer")
@pytest.mark.parametrize("level", SERVER_LEVELS)
def test_a_stale_sessions_patch_is_a_conflict_at_every_isolation_level(
    books: Engine, level: str
) -> None:
    _stale_sessions_patch_is_a_conflict(books, level)


@pytest.mark.requires("single_writer")
@pytest.mark.parametrize("level", SQLITE_LEVELS)
def test_a_stale_sessions_patch_is_a_conflict_at_every_sqlite_isolation_level(
    books: Engine, level: str
) -> None:
    _stale_sessions_patch_is_a_conflict(books, level)


@pytest.mark.requires("snapshot_refuses_stale_writes")
@pytest.mark.parametrize("level", ["REPEATABLE READ", "SERIALIZABLE"])
def test_a_patch_without_a_version_refused_by_the_snapshot_is_a_conflict(
    books: Engine, level: str
) -> None:
    # Elsewhere the UPDATE writes the newest row whatever the snapshot.
    with Session(books.execution_options(isolation_level=level)) as second:
        assert second.get(Book, 2) is not None  # the snapshot predates the patch below
        setwise.patch(Session(books), Book, 1, {"stock": 100})
        with pytest.raises(setwise.ConflictError, match="after this transaction began") as caught:
            setwise.patch(second, Book, 1, {"stock": 200})
        assert (caught.value.expected_version, caught.value.current_version) == (None, 2)
        second.rollback()
    assert snapshot(books)[0][5] == 100


@pytest.mark.lacks("single_writer")
def test_a_row_deleted_after_the_callers_snapshot_is_not_found(books: Engine) -> None:
    with Session(books.execution_options(isolation_level="REPEATABLE READ")) as second:
        assert second.get(Book, 1) is not None  # the snapshot holds book 1
        with books.begin() as connection:
            connection.execute(delete(Book).where(Book.id == 1))
        with pytest.raises(setwise.NotFoundError, match="key 1"):
            setwise.patch(second, Book, 1, {"stock": 200}, expected_version=1)
        setwise.patch(second, Book, 2, {"stock": 22})
        second.rollback()
    rows = snapshot(books)
    assert [row[0] for row in rows] == [2, 3, 4, 5]
    assert rows[0][5] == 6  # the rolled-back patch of book 2 is gone too


@pytest.mark.requires("plain_reads_lag_writes")
def test_an_empty_patch_in_an_older_snapshot_returns_the_row_as_stored(books: Engine) -> None:
    # PostgreSQL refuses to read the row as stored in such a snapshot: a ConflictError,
    # as in test_a_stale_sessions_patch_is_a_conflict_at_every_isolation_level.
    with Session(books.execution_options(isolation_level="REPEATABLE READ")) as second:
        assert second.get(Book, 2) is not None  # the snapshot predates the patch below
        setwise.patch(Session(books), Book, 1, {"title": "Retitled"}, expected_version=1)
        book = setwise.patch(second, Book, 1, {}, expected_version=2)
        assert (book.title, book.version) == ("Retitled", 2)


@pytest.mark.requires("cluster")
def test_a_patch_aborted_at_its_end_leaves_the_object_showing_nothing_unsaved(
    books: Engine,
) -> None:
    def another_node_writes_the_row(*_: object) -> None:
        # Just before the patch releases its savepoint, another node commits a change
        # of the same row: replicated here, it aborts the patch's transaction.
        with reader(books).begin() as connection:
            connection.execute(update(Book).where(Book.id == 3).values(stock=33))
        with books.connect() as connection:  # returns once this node has applied it
            connection.exec_driver_sql("SET SESSION wsrep_sync_wait = 1")
            assert connection.execute(select(Book.stock).where(Book.id == 3)).scalar() == 33

    with Session(books) as session:
        book = session.get(Book, 3)  # the caller's transaction: the patch takes a savepoint
        assert book is not None
        event.listen(books, "release_savepoint", another_node_writes_the_row)
        try:
            with pytest.raises(DBAPIError, match="Deadlock"):
                setwise.patch(session, Book, 3, {"stock": 0})
        finally:
            event.remove(books, "release_savepoint", another_node_writes_the_row)
        assert book.stock == 33  # read again, not the 0 that was rolled back
        session.rollback()
    assert snapshot(books)[2][5] == 33
