"""setwise: fast, safe, set-based UPDATEs for programs that use SQLAlchemy."""

from setwise.changesets import apply
from setwise.errors import (
    ConflictError,
    NotFoundError,
    Problem,
    RowConflict,
    RunError,
    RunInterrupted,
    RunInUseError,
    RunStateError,
    SchemaError,
    SetwiseError,
    SQLTextError,
    TooManyRowsError,
    TransactionTooLargeError,
    UnboundedUpdateError,
    ValidationError,
)
from setwise.executor import Progress
from setwise.history import abandon, init, run_details, runs
from setwise.orm import patch
from setwise.planner import plan
from setwise.records import ChunkInfo, RunInfo
from setwise.report import Plan, Report
from setwise.revert import revert
from setwise.setbased import update
from setwise.watch import watch

__all__ = [
    "ChunkInfo",
    "ConflictError",
    "NotFoundError",
    "Plan",
    "Problem",
    "Progress",
    "Report",
    "RowConflict",
    "RunError",
    "RunInUseError",
    "RunInfo",
    "RunInterrupted",
    "RunStateError",
    "SQLTextError",
    "SchemaError",
    "SetwiseError",
    "TooManyRowsError",
    "TransactionTooLargeError",
    "UnboundedUpdateError",
    "ValidationError",
    "abandon",
    "apply",
    "init",
    "patch",
    "plan",
    "revert",
    "run_details",
    "runs",
    "update",
    "watch",
]
