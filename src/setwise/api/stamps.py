"""Audit stamps: bulk statements bypass ORM events, so setwise sets them itself.

An ORM column's ``onupdate`` is applied by SQLAlchemy to every UPDATE setwise sends
(it is a Core feature). For tables without such metadata (reflected by name), name
the columns: ``stamp_column`` gets the run's start time, ``actor_column`` the actor.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Column, types

from setwise.journal.records import default_actor
from setwise.target import Target


def stamp_values(
    target: Target, stamp_column: str | None, actor_column: str | None, actor: str | None
) -> dict[Column[Any], Any]:
    """The values to write on every changed row: the time stamp and the actor."""
    values: dict[Column[Any], Any] = {}
    if stamp_column is not None:
        column = target.column(stamp_column)
        now = dt.datetime.now(dt.UTC)
        aware = isinstance(column.type, types.DateTime) and column.type.timezone
        values[column] = now if aware else now.replace(tzinfo=None)
    if actor_column is not None:
        values[target.column(actor_column)] = actor if actor is not None else default_actor()
    return values
