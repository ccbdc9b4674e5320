"""A column of staging values as one printf conversion and the values it formats: the
dispatch shared by the tab-separated text of COPY and LOAD DATA (``bulktext``) and
MySQL's INSERT literals (``mysql_values``).

A column of one plain type goes at once: integers by ``%d``, text as it is (checked
for characters that need escaping all at once, else every value escaped), finite
Decimals by ``str()``; any other column a value at a time through the form of its
type. What a value is written as (its quotes, its escapes, NULL) is the caller's
``ColumnForms``: nothing here knows either syntax.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

Format = Callable[[Any], "str | None"]
"""One value as text, or None when the value cannot go this way."""


@dataclass(frozen=True, slots=True)
class ColumnForms:
    """How one text layout writes the values of a column."""

    forms: Mapping[type, Format]
    """The text of a value of each type written; a type not here cannot go this way."""
    null: str
    """The text of NULL."""
    text: str
    """The conversion of a column of text, its values escaped or not: ``%s`` in a
    quoted literal or alone."""
    special: str
    """The characters a text is escaped for."""
    escape: Callable[[Sequence[str]], Sequence[str] | None]
    """A column of text with the ``special`` characters escaped, to go in ``text``;
    None when a value cannot go this way. A column at once, so that MySQL's escaping
    stays one list comprehension: a call per value cost ~3% (benchmarks/README.md)."""

    def column(self, values: Sequence[Any]) -> tuple[str, Sequence[Any]] | None:
        """``values`` as a printf conversion and the values it formats, or None when a
        value cannot go this way. A column of integers throughout converts by ``%d``."""
        kinds = set(map(type, values))
        if kinds == {int}:
            return "%d", values
        if kinds == {str}:
            joined = "".join(values)
            if not any(c in joined for c in self.special):
                return self.text, values
            escaped = self.escape(values)
            return None if escaped is None else (self.text, escaped)
        if kinds == {Decimal}:
            # str() is plain notation unless an exponent, NaN or Infinity shows up.
            texts = list(map(str, values))
            if not any(c in "".join(texts) for c in "EIN"):
                return "%s", texts
        forms = self.forms
        found: list[str] = []
        for value in values:
            if value is None:
                found.append(self.null)
                continue
            form = forms.get(type(value))
            text = form(value) if form is not None else None
            if text is None:
                return None
            found.append(text)
        return "%s", found
