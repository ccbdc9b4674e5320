"""setwise: fast, safe, set-based UPDATEs for programs that use SQLAlchemy."""

from setwise.changesets import apply
from setwise.errors import (
    ConflictError,
    NotFoundError,
    Problem,
    SchemaError,
    SetwiseError,
    TooManyRowsError,
    UnboundedUpdateError,
    ValidationError,
)
from setwise.orm import patch
from setwise.report import Report
from setwise.setbased import update

__all__ = [
    "ConflictError",
    "NotFoundError",
    "Problem",
    "Report",
    "SchemaError",
    "SetwiseError",
    "TooManyRowsError",
    "UnboundedUpdateError",
    "ValidationError",
    "apply",
    "patch",
    "update",
]
