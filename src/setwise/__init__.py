"""setwise: fast, safe, set-based UPDATEs for programs that use SQLAlchemy.

``import setwise`` loads the errors only; each other public name loads its module on
first use (``setwise.apply``, ``from setwise.writers import setbased``), so a program pays for the
engine when it runs something, and never for what it does not use (the CLI's Typer and
Rich, sqlglot, pyarrow, the database drivers). benchmarks/bench_import.py measures it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from setwise.errors import (
    ConflictError,
    InvalidArgumentError,
    JournalTableError,
    KeysTakenError,
    Mismatch,
    MissingExtraError,
    NotFoundError,
    PausedTooLongError,
    PlanTimeoutError,
    RowConflict,
    RunError,
    RunInterrupted,
    RunInUseError,
    RunStateError,
    SchemaError,
    SetwiseError,
    SQLTextError,
    StagingError,
    TooManyRowsError,
    TransactionTooLargeError,
    UnboundedUpdateError,
    ValidationError,
    VerificationError,
    WriteCheckError,
)
from setwise.problems import Problem, ProblemKind

if TYPE_CHECKING:
    from setwise.api.apply import apply
    from setwise.api.control import continue_, pause, run_control, stop, tune
    from setwise.api.delete import delete
    from setwise.api.patch import patch
    from setwise.api.plan import plan
    from setwise.api.revert import revert
    from setwise.api.runs import abandon, init, run_details, runs
    from setwise.api.update import update
    from setwise.detector.watch import watch
    from setwise.journal.controls import RunControl
    from setwise.journal.runinfo import ChunkInfo, RunInfo
    from setwise.report import Plan, Progress, Report, Verification

__version__ = "0.2.0.dev0"

#: Where each public name that is loaded on first use is defined.
_LAZY = {
    "ChunkInfo": "setwise.journal.runinfo",
    "Plan": "setwise.report",
    "Progress": "setwise.report",
    "Report": "setwise.report",
    "RunControl": "setwise.journal.controls",
    "RunInfo": "setwise.journal.runinfo",
    "Verification": "setwise.report",
    "abandon": "setwise.api.runs",
    "apply": "setwise.api.apply",
    "continue_": "setwise.api.control",
    "delete": "setwise.api.delete",
    "init": "setwise.api.runs",
    "patch": "setwise.api.patch",
    "pause": "setwise.api.control",
    "plan": "setwise.api.plan",
    "revert": "setwise.api.revert",
    "run_control": "setwise.api.control",
    "run_details": "setwise.api.runs",
    "runs": "setwise.api.runs",
    "stop": "setwise.api.control",
    "tune": "setwise.api.control",
    "update": "setwise.api.update",
    "watch": "setwise.detector.watch",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'setwise' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


__all__ = [
    "ChunkInfo",
    "ConflictError",
    "InvalidArgumentError",
    "JournalTableError",
    "KeysTakenError",
    "Mismatch",
    "MissingExtraError",
    "NotFoundError",
    "PausedTooLongError",
    "Plan",
    "PlanTimeoutError",
    "Problem",
    "ProblemKind",
    "Progress",
    "Report",
    "RowConflict",
    "RunControl",
    "RunError",
    "RunInUseError",
    "RunInfo",
    "RunInterrupted",
    "RunStateError",
    "SQLTextError",
    "SchemaError",
    "SetwiseError",
    "StagingError",
    "TooManyRowsError",
    "TransactionTooLargeError",
    "UnboundedUpdateError",
    "ValidationError",
    "Verification",
    "VerificationError",
    "WriteCheckError",
    "abandon",
    "apply",
    "continue_",
    "delete",
    "init",
    "patch",
    "pause",
    "plan",
    "revert",
    "run_control",
    "run_details",
    "runs",
    "stop",
    "tune",
    "update",
    "watch",
]
