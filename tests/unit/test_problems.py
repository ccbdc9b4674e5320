"""ValidationError's list, total and counts by kind: pure logic, no database."""

from __future__ import annotations

from setwise import Problem, ProblemKind, ValidationError
from setwise.messages import SHOWN_PROBLEMS
from setwise.problems import MAX_PROBLEMS, sample
from setwise.staging.intake import ProblemLog


def bad(row: int) -> Problem:
    return Problem("price", "cheap", "not a number: 'cheap'", row)


def duplicate(row: int) -> Problem:
    return Problem("id", 1, "duplicate key: also in row 1", row, ProblemKind.DUPLICATE_KEY)


def test_a_list_of_problems_is_counted_by_kind() -> None:
    error = ValidationError("books", [bad(2), duplicate(3), bad(4)])
    assert error.total == 3
    assert error.counts == {ProblemKind.BAD_VALUE: 2, ProblemKind.DUPLICATE_KEY: 1}
    assert (error.bad_values, error.duplicate_keys, error.nulls, error.unknown_columns) == (
        2,
        1,
        0,
        0,
    )
    assert str(error).splitlines()[0] == (
        "3 problem(s) in the values for 'books' (bad value: 2, duplicate key: 1); "
        "nothing was written:"
    )


def test_counts_and_total_given_are_kept_beyond_the_list() -> None:
    error = ValidationError(
        "books",
        [bad(2), duplicate(3)],
        counts={ProblemKind.BAD_VALUE: 1, ProblemKind.DUPLICATE_KEY: 2_500},
    )
    assert error.total == 2_501
    assert error.duplicate_keys == 2_500
    assert str(error).splitlines()[-1] == "  ... and 2499 more"


def test_the_first_of_each_kind_stays_in_a_bounded_list() -> None:
    problems = [bad(row) for row in range(2, 2 + 2 * MAX_PROBLEMS)] + [duplicate(5_000)]
    kept = sample(problems, MAX_PROBLEMS)
    assert len(kept) == MAX_PROBLEMS
    assert kept[-1] == duplicate(5_000)
    assert kept[: MAX_PROBLEMS - 1] == tuple(problems[: MAX_PROBLEMS - 1])
    error = ValidationError("books", problems)
    assert error.total == len(problems)
    shown = [line for line in str(error).splitlines() if line.startswith("  - ")]
    assert len(shown) == SHOWN_PROBLEMS
    assert "duplicate key" in shown[-1]


def test_a_problem_log_counts_everything_and_keeps_a_bounded_list() -> None:
    log = ProblemLog()
    assert not log
    for row in range(100_000):
        log.add(bad(row))
    log.add(Problem("stok", "1", "no such column", 7, ProblemKind.UNKNOWN_COLUMN))
    log.count(ProblemKind.DUPLICATE_KEY, 40_000)
    assert len(log.kept) == MAX_PROBLEMS + 1  # the first of a new kind is kept too
    error = log.error("books")
    assert error.total == 140_001
    assert error.counts == {
        ProblemKind.BAD_VALUE: 100_000,
        ProblemKind.UNKNOWN_COLUMN: 1,
        ProblemKind.DUPLICATE_KEY: 40_000,
    }
    assert len(error.problems) == MAX_PROBLEMS
    assert error.problems[-1].kind == ProblemKind.UNKNOWN_COLUMN
