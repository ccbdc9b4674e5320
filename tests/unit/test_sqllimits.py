"""The limits on --where / --set text, as pure functions: no database needed."""

from __future__ import annotations

import pytest
from sqlglot import Dialect, TokenType, exp

from setwise.sqltext.limits import (
    MAX_DEPTH,
    MAX_NESTING,
    nesting_overrun,
    number_problem,
    tree_overrun,
)

POSTGRES = Dialect.get_or_raise("postgres")


def nesting(text: str) -> str | None:
    """The text of the token at which ``text`` nests too deeply, if any."""
    tokens = POSTGRES.tokenizer().tokenize(text)
    prefixes = {TokenType.NOT, *POSTGRES.parser().UNARY_PARSERS}
    found = nesting_overrun(tokens, prefixes)
    return None if found is None or found.token is None else found.token.text


def test_nesting_counts_parentheses_case_and_prefix_operators() -> None:
    deepest = "(" * MAX_NESTING + "id = 1" + ")" * MAX_NESTING
    assert nesting(deepest) is None
    assert nesting("(" + deepest + ")") == "("
    assert nesting("NOT " * MAX_NESTING + "id = 1") is None
    assert nesting("NOT " * (MAX_NESTING + 1) + "id = 1") == "NOT"
    assert nesting("id = " + "- " * (MAX_NESTING + 1) + "1") == "-"
    case = "CASE WHEN id = 1 THEN " * (MAX_NESTING + 1) + "1" + " END" * (MAX_NESTING + 1)
    assert nesting("id = " + case) == "CASE"


def test_nesting_ends_where_an_operand_ends() -> None:
    # A NOT applies up to the next AND, OR, comma or WHEN: side by side they do not add.
    assert nesting(" AND ".join(["NOT id = 1"] * 100)) is None
    # Binary minus (after a value) is no prefix; closed parentheses are no level.
    assert nesting(" - ".join(["id"] * 100) + " = 1") is None
    assert nesting(" OR ".join(["(id = 1)"] * 100)) is None


def parsed(text: str) -> exp.Expr:
    tokens = POSTGRES.tokenizer().tokenize(text)
    return POSTGRES.parser().parse_into(exp.Condition, tokens, text)[0]


def test_tree_depth_counts_a_chain_of_and_or_once() -> None:
    assert tree_overrun(parsed(" OR ".join(f"id = {i}" for i in range(2000)))) is None
    assert tree_overrun(parsed(" AND ".join(f"id <> {i}" for i in range(2000)))) is None
    found = tree_overrun(parsed("id = " + " - ".join(["1"] * (MAX_DEPTH + 1))))
    assert found is not None and "64 operators" in found.reason


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("1e5-1", "'1e5-1' is not a number: write 1e5 - 1"),
        ("1e+5+1", "write 1e+5 + 1"),
        ("1e", "'1e' is not a number"),
        ("\u0661", "is not a number"),
        ("1e99999999999999999999", "out of range"),
        ("1e9999999", "out of range"),
        ("1e309", "out of range"),
        ("1e-309", "out of range"),
        ("0e400", "out of range"),
        ("9" * 1001, "more than 1000 digits"),
        ("0." + "0" * 1000 + "1", "more than 1000 digits"),
    ],
)
def test_a_number_sqlglot_misreads_or_too_large_to_convert_is_refused(
    text: str, problem: str
) -> None:
    found = number_problem(text)
    assert found is not None and problem in found


@pytest.mark.parametrize(
    "text", ["0", "1", "1.", ".5", "1.5e10", "1e308", "1E-308", "9" * 300, "0" * 999 + "1"]
)
def test_a_number_in_range_is_taken(text: str) -> None:
    assert number_problem(text) is None
