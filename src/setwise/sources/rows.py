"""What every reader yields."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Unreadable:
    """A line that could not be read as a row at all, and why."""

    reason: str


Row = tuple[int, dict[str, Any] | Unreadable]
"""(row number, field → value), or (row number, Unreadable)."""
