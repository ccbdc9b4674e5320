"""Values for a JSON column, read from a file.

A JSON column's value in a file is JSON: the text of a CSV cell or a Parquet string is
read as a JSON document (``{"a": 2}`` is an object, ``"a"`` with its quotes a string,
``a`` alone no JSON at all), and an object, array or number a JSONL line holds is
taken as it is. Written to the column, the value must come out as the file gave it:

- a number with a fraction is kept when a float writes it back as the same number
  (``2.5``, ``0.1``); one with more digits than a float keeps (about 17) is refused,
  never rounded;
- ``NaN`` and ``Infinity``, which ``json`` reads but no JSON column stores, are refused;
- an object naming a field twice is refused (``json`` would keep the last silently).
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from setwise.staging.sources.jsonl import FieldTwice, unique_fields
from setwise.staging.validation import Unfit


class _Refused(ValueError):
    """A document that parses, but that no JSON column would store as it is written."""


def _no_constant(word: str) -> Any:
    raise _Refused(f"{word} is no JSON number")


_DECODER = json.JSONDecoder(
    parse_float=Decimal, parse_constant=_no_constant, object_pairs_hook=unique_fields
)


def parse_json(value: Any) -> Any:
    """``value`` as a JSON column takes it: text read as a JSON document, then every
    number with a fraction as the float that writes it back unchanged."""
    if isinstance(value, str):
        text = value.strip()
        try:
            value = _DECODER.decode(text)
        except json.JSONDecodeError as exc:
            raise Unfit(
                f"not JSON: {exc.msg} at character {exc.pos + 1} (the column holds JSON: "
                'a text is written with its quotes, "like this")'
            ) from None
        except FieldTwice as exc:
            raise Unfit(
                f"not JSON a column stores: the field {exc.name!r} is given twice"
            ) from None
        except ValueError as exc:  # NaN, Infinity; an integer of over 4,300 digits
            raise Unfit(f"not JSON a column stores: {exc}") from None
        except RecursionError:
            raise Unfit("JSON nested too deep to read") from None
    try:
        return _exact(value)
    except RecursionError:
        raise Unfit("JSON nested too deep to read") from None


def _exact(value: Any) -> Any:
    """``value`` with each Decimal in it as a float, refused where the float differs."""
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise Unfit(f"not JSON a column stores: {value} is no JSON number")
        number = float(value)
        if Decimal(repr(number)) != value:
            raise Unfit(
                f"the number {value} has more digits than a JSON column keeps "
                f"exactly; it would be stored as {number!r}"
            )
        return number
    if isinstance(value, dict):
        return {name: _exact(item) for name, item in value.items()}
    if isinstance(value, list):
        return [_exact(item) for item in value]
    return value
