"""The generic strategy: capability flags and the code paths that read them.

A dialect module subclasses ``Strategy``, sets flags, and overrides the few hooks
whose behaviour really differs (reading an IntegrityError, starting a transaction).
Everything else is written once, here or above, against the flags.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from sqlalchemy import Connection
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError, IntegrityError


@dataclass(frozen=True)
class IntegrityFacts:
    """What a database said about a constraint violation, as far as it says it."""

    kind: str
    """One of "unique", "foreign key", "check", "not null", or "constraint" when unknown."""

    constraint: str | None = None
    """The constraint's name, when the database reports it."""

    columns: tuple[str, ...] = ()
    """The columns involved, when the database reports them."""


class Strategy:
    """How setwise writes to one kind of database. The base serves any dialect."""

    name: ClassVar[str] = "generic"
    """The dialect family this strategy serves, for reports and messages."""

    max_bind_params: ClassVar[int] = 999
    """Most bound parameters one statement may carry. 999 is SQLite's old default, the
    lowest limit among the databases SQLAlchemy supports, so it is safe anywhere."""

    rowcount_is_matched: ClassVar[bool] = False
    """True when an UPDATE's rowcount counts rows matched rather than rows changed
    (SQLAlchemy's MySQL drivers ask for CLIENT_FOUND_ROWS)."""

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect

    @property
    def supports_update_returning(self) -> bool:
        """UPDATE … RETURNING works, per SQLAlchemy's own probe of the server version."""
        return bool(self.dialect.update_returning)

    @property
    def supports_sane_rowcount(self) -> bool:
        """The rowcount of an UPDATE can be trusted at all."""
        return bool(self.dialect.supports_sane_rowcount)

    def prepare_savepoint(self, connection: Connection) -> None:
        """Make sure a real transaction is open before a SAVEPOINT is emitted."""

    def is_integrity_error(self, error: DBAPIError) -> bool:
        """True when the database refused the values because of a constraint."""
        return isinstance(error, IntegrityError)

    def describe_integrity_error(self, error: BaseException | None) -> IntegrityFacts:
        """Read the kind, constraint and columns out of a driver's integrity error."""
        return IntegrityFacts(kind="constraint")

    def error_code(self, error: BaseException | None) -> Any:
        """The driver's error code (SQLSTATE or server error number), if it has one."""
        return None
