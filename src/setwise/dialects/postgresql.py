"""PostgreSQL through psycopg 3."""

from __future__ import annotations

import re
from typing import Any, ClassVar

from setwise.dialects.base import IntegrityFacts, Strategy

# The DETAIL of unique and foreign-key violations: "Key (isbn)=(978-0) already exists."
_KEY_DETAIL = re.compile(r"Key \((.+?)\)=")

_KINDS = {
    "23505": "unique",
    "23503": "foreign key",
    "23514": "check",
    "23502": "not null",
}


class PostgreSQLStrategy(Strategy):
    name: ClassVar[str] = "postgresql"
    # The wire protocol counts parameters in a 16-bit integer.
    max_bind_params: ClassVar[int] = 65535

    def error_code(self, error: BaseException | None) -> Any:
        return getattr(error, "sqlstate", None)

    def describe_integrity_error(self, error: BaseException | None) -> IntegrityFacts:
        diag = getattr(error, "diag", None)
        kind = _KINDS.get(str(self.error_code(error)), "constraint")
        if diag is None:
            return IntegrityFacts(kind=kind)
        columns: tuple[str, ...] = ()
        if diag.column_name:
            columns = (diag.column_name,)
        elif diag.message_detail and (match := _KEY_DETAIL.search(diag.message_detail)):
            columns = tuple(name.strip().strip('"') for name in match.group(1).split(","))
        return IntegrityFacts(kind=kind, constraint=diag.constraint_name, columns=columns)
