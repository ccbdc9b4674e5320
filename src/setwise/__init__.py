"""setwise: fast, safe, set-based UPDATEs for programs that use SQLAlchemy.

``import setwise`` loads the errors only; each other public name loads its module on
first use (``setwise.apply``, ``from setwise import plan``), so a program pays for the
engine when it runs something, and never for what it does not use (the CLI's Typer and
Rich, sqlglot, pyarrow, the database drivers). benchmarks/bench_import.py measures it.
"""

from __future__ import annotations

import importlib
import sys
from types import ModuleType
from typing import TYPE_CHECKING, Any

from setwise.errors import (
    ConflictError,
    MissingExtraError,
    NotFoundError,
    PlanTimeoutError,
    Problem,
    ProblemKind,
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

if TYPE_CHECKING:
    from setwise.changesets import apply
    from setwise.executor import Progress
    from setwise.history import abandon, init, run_details, runs
    from setwise.orm import patch
    from setwise.planner import plan
    from setwise.records import ChunkInfo, RunInfo
    from setwise.report import Plan, Report
    from setwise.revert import revert
    from setwise.setbased import update
    from setwise.watch import watch

__version__ = "0.2.0.dev0"

#: Where each public name that is loaded on first use is defined.
_LAZY = {
    "ChunkInfo": "setwise.records",
    "Plan": "setwise.report",
    "Progress": "setwise.executor",
    "Report": "setwise.report",
    "RunInfo": "setwise.records",
    "abandon": "setwise.history",
    "apply": "setwise.changesets",
    "init": "setwise.history",
    "patch": "setwise.orm",
    "plan": "setwise.planner",
    "revert": "setwise.revert",
    "run_details": "setwise.history",
    "runs": "setwise.history",
    "update": "setwise.setbased",
    "watch": "setwise.watch",
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


class _Package(ModuleType):
    """setwise itself. The functions ``plan``, ``revert`` and ``watch`` share their names
    with modules of the package, and importing a module binds it on its package: that
    binding is skipped, so ``setwise.plan`` stays the function whatever was imported."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _LAZY and isinstance(value, ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package

__all__ = [
    "ChunkInfo",
    "ConflictError",
    "MissingExtraError",
    "NotFoundError",
    "Plan",
    "PlanTimeoutError",
    "Problem",
    "ProblemKind",
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
