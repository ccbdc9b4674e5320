"""setwise: fast, safe, set-based UPDATEs for programs that use SQLAlchemy."""

from setwise.changesets import apply
from setwise.errors import (
    ConflictError,
    NotFoundError,
    Problem,
    SchemaError,
    SetwiseError,
    SQLTextError,
    TooManyRowsError,
    UnboundedUpdateError,
    ValidationError,
)
from setwise.orm import patch
from setwise.planner import plan
from setwise.report import Plan, Report
from setwise.setbased import update
from setwise.watch import watch

__all__ = [
    "ConflictError",
    "NotFoundError",
    "Plan",
    "Problem",
    "Report",
    "SQLTextError",
    "SchemaError",
    "SetwiseError",
    "TooManyRowsError",
    "UnboundedUpdateError",
    "ValidationError",
    "apply",
    "patch",
    "plan",
    "update",
    "watch",
]
