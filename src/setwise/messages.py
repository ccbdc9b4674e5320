"""How a message says what is wrong and what to do: a bounded list, the offending token
pointed at, an argument as the caller passes it, the closest valid name."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Sequence
from typing import Any

#: How many problems a ValidationError lists in its message (the first of each kind among
#: them); ``problems`` keeps up to ``MAX_PROBLEMS``. Twenty lines fit on a screen and
#: show the pattern of a bad file.
SHOWN_PROBLEMS = 20

Spelling = Callable[..., str]
"""How a message names an argument to pass: ``spell("chunk_rows", 300)``, or
``spell("key")`` for one whose value the caller chooses."""


def as_argument(name: str, *value: Any) -> str:
    """An argument as Python passes it: ``chunk_rows=300``, ``force=True``, ``key=``."""
    return f"{name}={value[0]!r}" if value else f"{name}="


def closest(name: str, candidates: Iterable[str]) -> str | None:
    """The candidate closest to ``name``, if any is close enough to be a likely typo:
    first one that differs only in case or surrounding spaces (``ID``, `` name``, which
    are too short for a close match by letters)."""
    candidates = list(candidates)
    folded = name.strip().casefold()
    same = [candidate for candidate in candidates if candidate.casefold() == folded]
    if same:
        return same[0]
    matches = difflib.get_close_matches(name, candidates, n=1, cutoff=0.6)
    return matches[0] if matches else None


def pointed(text: str, position: int, end: int) -> str:
    """The line of ``text`` that holds ``position``, and a caret under ``position`` to
    ``end`` (0-based, inclusive; not past the line), both indented by two spaces."""
    line_start = text.rfind("\n", 0, position) + 1
    line_end = text.find("\n", position)
    line = text[line_start : line_end if line_end >= 0 else len(text)]
    width = max(1, min(end, line_start + len(line) - 1) - position + 1)
    caret = " " * (position - line_start) + "^" * width
    return f"  {line}\n  {caret}"


def listed(heading: str, items: Sequence[str], total: int) -> str:
    """``heading``, then the first ``SHOWN_PROBLEMS`` of ``items`` a line each, and how
    many of ``total`` are left unshown."""
    lines = [heading, *(f"  - {item}" for item in items[:SHOWN_PROBLEMS])]
    if total > min(len(items), SHOWN_PROBLEMS):
        lines.append(f"  ... and {total - min(len(items), SHOWN_PROBLEMS)} more")
    return "\n".join(lines)
