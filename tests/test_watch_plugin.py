"""The pytest plugin, run through pytest's own ``pytester`` on a small test file.

The plugin is found through setwise's ``pytest11`` entry point, as in any project that
installs setwise; these tests also show that it is inert until asked.
"""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

TESTS = """
import pytest
from sqlalchemy import Integer, String, create_engine, insert, select, update
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column


class Base(DeclarativeBase):
    pass


class Item(Base):
    __tablename__ = "items"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    state: Mapped[str] = mapped_column(String(10))


@pytest.fixture
def engine(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path / 'items.db'}")
    Base.metadata.create_all(engine)
    with engine.begin() as connection:
        connection.execute(insert(Item), [{"id": i, "state": "new"} for i in range(1, 21)])
    yield engine
    engine.dispose()


def close_all(engine, count):
    with Session(engine) as session:
        for item in session.scalars(select(Item).where(Item.id <= count)):
            item.state = "closed"
            session.flush()  # the loop
        session.commit()


def test_loop(engine):
    close_all(engine, 20)


def test_short_loop(engine):
    close_all(engine, 9)


@pytest.mark.allow_row_by_row
def test_allowed_loop(engine):
    close_all(engine, 20)


def test_set_based(engine):
    with engine.begin() as connection:
        connection.execute(update(Item).where(Item.id <= 20).values(state="closed"))


@pytest.mark.setwise_watch(threshold=5)
def test_marked_loop(engine):
    close_all(engine, 6)
"""


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makepyfile(test_items=TESTS)
    return pytester


def line_of(marker: str) -> int:
    return next(n for n, line in enumerate(TESTS.splitlines()) if marker in line)


def test_without_the_option_only_the_marked_test_is_watched(project: pytest.Pytester) -> None:
    result = project.runpytest()
    result.assert_outcomes(passed=4, failed=1)
    result.stdout.fnmatch_lines(["FAILED test_items.py::test_marked_loop - Failed: setwise: *"])
    assert "row-by-row UPDATE of items: 6 rows" in result.stdout.str()


def test_the_option_fails_a_loop_and_prints_the_finding(project: pytest.Pytester) -> None:
    result = project.runpytest("--setwise-watch")
    result.assert_outcomes(passed=3, failed=2)
    result.stdout.fnmatch_lines(
        [
            "*_ test_loop _*",
            "setwise: this test updated rows one at a time (1 loop):",
            "",
            "row-by-row UPDATE of items: 20 rows in 20 statements over 1 transaction, * ms",
            "  statement: UPDATE items SET state = ? WHERE items.id = ?",
            f"  from:      test_items.py:{line_of('# the loop')} in close_all",
            "  instead:   setwise.update(bind, update(items).where(items.c.id.in_([1, 2, 3, ...]))"
            ".values(state='closed'))",
            "",
            "Mark the test @pytest.mark.allow_row_by_row if the loop is intended.",
        ]
    )
    result.stdout.fnmatch_lines(
        [
            "*= setwise: row-by-row loops =*",
            "setwise.watch: 2 row-by-row loop(s), worst first",
            "*#*table*statement*rows*stmts*txns*ms*from",
            "*1*items*UPDATE items SET state = ? WHERE*test_items.py:* in close_all",
            "*2*items*UPDATE items SET state = ? WHERE*test_items.py:* in close_all",
            "Instead:",
            "1. setwise.update(bind, update(items)*",
        ]
    )
    # Worst first means most time spent: either loop may come first on a fast disk.
    result.stdout.fnmatch_lines(["   in test_items.py::test_loop"])
    result.stdout.fnmatch_lines(["   in test_items.py::test_marked_loop"])
    assert "test_short_loop" not in result.stdout.str()


def test_warn_mode_passes_the_test_and_warns(project: pytest.Pytester) -> None:
    # A process of its own: in this one, this project's filterwarnings = error would apply.
    result = project.runpytest_subprocess("--setwise-watch=warn", "-k", "not marked")
    result.assert_outcomes(passed=4, warnings=1)
    result.stdout.fnmatch_lines(
        [
            "*warnings summary*",
            "test_items.py::test_loop",
            "*RowByRowWarning: setwise: this test updated rows one at a time (1 loop):",
            "*= setwise: row-by-row loops =*",
        ]
    )


def test_the_threshold_option(project: pytest.Pytester) -> None:
    result = project.runpytest("--setwise-watch", "--setwise-threshold=21", "-k", "not marked")
    result.assert_outcomes(passed=4)
    assert "row-by-row" not in result.stdout.str()


def test_an_unknown_action_is_a_usage_error(project: pytest.Pytester) -> None:
    result = project.runpytest("--setwise-watch=maybe")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*argument --setwise-watch: invalid choice: 'maybe'*"])
