"""Keys and values as a person writes them, in messages and in the command line's output:
``('JFK', 2013-01-01 06:00:00)``, ``3.90``, ``'\\N'``, ``NULL``; never Python's reprs
(``datetime.datetime(2013, 1, 1, 6, 0)``, ``Decimal('3.90')``, ``'\\\\N'``, ``None``).

``shown`` gives the text; ``plain`` gives what JSON holds (a string where JSON has no
type for the value: an exact decimal, a timestamp, bytes as hex).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from decimal import Decimal
from typing import Any

#: Characters a written string shows escaped, as Python does: they would break the line
#: or be invisible. A backslash stays itself: ``'\N'`` is written as the file holds it.
_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


#: Bits of the largest int shown whole: Python refuses to write an int of more than
#: 4,300 digits (``sys.get_int_max_str_digits``), about 14,000 bits.
_SHOWN_INT_BITS = 13_000


def shown(value: Any) -> str:
    """``value`` as a person writes it: strings quoted, numbers and times bare, NULL;
    an integer too long to write, by its size."""
    if value is None:
        return "NULL"
    if isinstance(value, int) and value.bit_length() > _SHOWN_INT_BITS:
        return f"<an integer of {int(value.bit_length() * 0.30103) + 1} digits>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f"'{''.join(_escaped(c) for c in value)}'"
    if isinstance(value, tuple):
        return f"({', '.join(shown(v) for v in value)})"
    if isinstance(value, list):
        return f"[{', '.join(shown(v) for v in value)}]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {shown(v)}" for k, v in value.items()) + "}"
    if isinstance(value, bytes | bytearray | memoryview):
        return f"x'{bytes(value).hex()}'"
    return str(plain(value))


def plain(value: Any) -> Any:
    """``value`` as JSON holds it: JSON's own types as they are, a tuple as a list, and
    text for the rest as ``shown`` writes it (an exact decimal keeps its places)."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, tuple | list):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Decimal):
        return f"{value:f}" if value.is_finite() else str(value)
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    return str(value)


def _escaped(char: str) -> str:
    if char in _ESCAPES:
        return _ESCAPES[char]
    return char if char.isprintable() else repr(char)[1:-1]
