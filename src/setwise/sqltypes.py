"""What setwise asks of SQLAlchemy's column types, answered alike on SQLAlchemy 2.0 and 2.1."""

from __future__ import annotations

from sqlalchemy import types

#: The column types of numbers with a fractional part: Numeric (NUMERIC, DECIMAL) and
#: Float (FLOAT, REAL, DOUBLE). SQLAlchemy 2.0 makes Float a subclass of Numeric; 2.1
#: makes the two siblings, so ``isinstance(kind, types.Numeric)`` misses a REAL column
#: there: test against this pair instead.
FRACTIONAL = (types.Numeric, types.Float)
