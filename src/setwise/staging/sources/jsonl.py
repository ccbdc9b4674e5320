"""JSON Lines: one object per line. An absent field is left alone; ``null`` is NULL.

A line that cannot be read is an ``Unreadable`` row, naming the field at fault where
there is one: a field given twice (``json`` would keep the last silently), a value
nested past Python's recursion limit, bytes that are not UTF-8 (kept as
``surrogateescape`` characters for the value checks to name). A byte-order mark is
skipped.
"""

from __future__ import annotations

import io
import json
import re
import sys
from collections.abc import Iterator
from decimal import Decimal
from typing import IO, Any

from setwise.staging.sources.rows import NOT_UTF16, UTF16_FIX, UTF16_MARKS, Row, Unreadable

#: Digits of the longest JSON integer read as an int: Python refuses to convert more
#: than 4,300 (``sys.get_int_max_str_digits``); a longer one is read as a Decimal,
#: whose size the column checks tell from its exponent.
_INT_DIGITS = 4_000

#: Characters of a refused line kept in its problem: enough to recognise it.
_PREVIEW_CHARS = 200

# A field name at the top level of an object, and the start of its value.
_FIELD = re.compile(r'"((?:[^"\\]|\\.)*)"\s*:\s*')


class FieldTwice(ValueError):
    """An object that names the field ``name`` twice."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


def unique_fields(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """The object of ``pairs``; ``FieldTwice`` when a name comes twice, which ``json``
    would keep the last of silently."""
    found = dict(pairs)
    if len(found) != len(pairs):
        seen: set[str] = set()
        for name, _ in pairs:
            if name in seen:
                raise FieldTwice(name)
            seen.add(name)
    return found


def _integer(text: str) -> int | Decimal:
    return int(text) if len(text) <= _INT_DIGITS else Decimal(text)


_DECODER = json.JSONDecoder(
    parse_float=Decimal, parse_int=_integer, object_pairs_hook=unique_fields
)


def read_jsonl(path: str, encoding: str = "utf-8-sig") -> Iterator[Row]:
    """Rows of the JSONL file at ``path`` (``"-"``: standard input), by line number.
    Numbers with a fraction are read as Decimal, so exact columns stay exact; blank
    lines are skipped. ``encoding``: the codec the text is read with."""
    if path == "-":
        stream = io.TextIOWrapper(sys.stdin.buffer, encoding=encoding, errors="surrogateescape")
        try:
            yield from _rows(stream)
        finally:
            stream.detach()  # leave standard input open
        return
    with open(path, encoding=encoding, errors="surrogateescape") as stream:
        yield from _rows(stream)


def _rows(stream: IO[str]) -> Iterator[Row]:
    for number, line in enumerate(stream, start=1):
        if number == 1 and line.startswith(UTF16_MARKS):
            yield number, Unreadable(NOT_UTF16, value=line[:2], fix=UTF16_FIX)
            return
        if not line.strip():
            continue
        yield number, read_line(line)


def read_line(line: str) -> dict[str, Any] | Unreadable:
    """One line's object, or why it is not one."""
    try:
        value = _DECODER.decode(line)
    except json.JSONDecodeError as exc:
        column, text = _field_at(line, exc.pos)
        return Unreadable(
            f"not valid JSON: {exc.msg} at column {exc.colno}", column=column, value=text
        )
    except FieldTwice as exc:
        return Unreadable(
            f"the field {exc.name!r} is given twice in the object; keep one",
            column=exc.name,
            value=exc.name,
        )
    except RecursionError:
        column, text = _field_at(line, _deepest(line))
        return Unreadable(
            "a value nested too deeply to read (no column holds nested values)",
            column=column,
            value=text,
        )
    if not isinstance(value, dict):
        return Unreadable(f"a JSON {type(value).__name__}, not an object", value=_preview(line))
    return value


def _preview(text: str) -> str:
    text = text.strip()
    return text if len(text) <= _PREVIEW_CHARS else text[:_PREVIEW_CHARS] + "…"


def _field_at(line: str, position: int) -> tuple[str | None, str]:
    """The top-level field whose value holds ``position``, and that value's text (or the
    line's, when no field does)."""
    found: tuple[str | None, int] = (None, 0)
    depth = 0
    index = 0
    in_text = False
    while index < min(position, len(line)):
        char = line[index]
        if in_text:
            if char == "\\":
                index += 1
            elif char == '"':
                in_text = False
        elif char == '"':
            if depth == 1 and (match := _FIELD.match(line, index)):
                found = (match.group(1), match.end())
                index = match.end()
                continue
            in_text = True
        elif char in "[{":
            depth += 1
        elif char in "]}":
            depth -= 1
            if depth == 0:
                found = (None, 0)  # past the object: in no field
        index += 1
    name, start = found
    if depth == 1 and line.startswith('"', position) and line[:position].rstrip()[-1:] in "{,":
        # The error is in a field's name (cut short, say): that field is at fault.
        cut = line[position + 1 :].split('"', 1)[0]
        return cut[:_PREVIEW_CHARS], _preview(line[position:])
    if name is None:
        return None, _preview(line)
    return name, _preview(line[start:])


def _deepest(line: str) -> int:
    """Where the nesting of ``line`` (outside strings) is deepest."""
    depth = deepest = at = 0
    in_text = escaped = False
    for index, char in enumerate(line):
        if in_text:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_text = False
        elif char == '"':
            in_text = True
        elif char in "[{":
            depth += 1
            if depth > deepest:
                deepest, at = depth, index
        elif char in "]}":
            depth -= 1
    return at
