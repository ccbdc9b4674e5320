"""How a message says what to do: an argument as the caller passes it, the closest valid name."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable
from typing import Any

Spelling = Callable[..., str]
"""How a message names an argument to pass: ``spell("chunk_rows", 300)``, or
``spell("key")`` for one whose value the caller chooses."""


def as_argument(name: str, *value: Any) -> str:
    """An argument as Python passes it: ``chunk_rows=300``, ``force=True``, ``key=``."""
    return f"{name}={value[0]!r}" if value else f"{name}="


def closest(name: str, candidates: Iterable[str]) -> str | None:
    """The candidate closest to ``name``, if any is close enough to be a likely typo."""

    matches = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    return matches[0] if matches else None
