"""Trace one changeset row through ``setwise.apply``: how often control crosses modules.

Counts, for a second call of ``setwise.apply(engine, Book, [row])`` on a SQLite file
(the first call creates the journal tables and warms the caches, and is not counted):
every call from a function in one setwise module to a function in another, the modules
it passes through, and how many times the dialect strategy is resolved and the journal
built. A layout whose modules each do one job crosses fewer times.

    .venv/bin/python benchmarks/trace_apply.py        # prints a table, saves results/trace.*
    .venv/bin/python benchmarks/trace_apply.py --all  # every crossing, not only the busiest
"""

from __future__ import annotations

import collections
import json
import sys
import tempfile
from decimal import Decimal
from pathlib import Path
from types import FrameType
from typing import Any

from sqlalchemy import create_engine

import setwise

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from books import Base, Book  # noqa: E402

PACKAGE = Path(setwise.__file__).resolve().parent


def module_of(filename: str) -> str | None:
    """The dotted setwise module a code object belongs to, or None outside setwise."""
    path = Path(filename)
    try:
        relative = path.resolve().relative_to(PACKAGE)
    except ValueError:
        return None
    parts = list(relative.with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(["setwise", *parts])


def trace(engine: Any, row: dict[str, Any]) -> dict[str, Any]:
    crossings: collections.Counter[tuple[str, str]] = collections.Counter()
    modules: set[str] = set()
    resolved = {"strategy": 0, "journal": 0}

    def profile(frame: FrameType, event: str, arg: object) -> None:
        if event != "call":
            return
        callee = module_of(frame.f_code.co_filename)
        if callee is None:
            return
        modules.add(callee)
        name = frame.f_code.co_qualname
        if name == "get_strategy":
            resolved["strategy"] += 1
        if name == "RunTables.__init__":  # a Journal is built (its records' tables)
            resolved["journal"] += 1
        caller_frame = frame.f_back
        if caller_frame is None:
            return
        caller = module_of(caller_frame.f_code.co_filename)
        if caller is not None and caller != callee:
            crossings[(caller, callee)] += 1

    sys.setprofile(profile)
    try:
        setwise.apply(engine, Book, [row])
    finally:
        sys.setprofile(None)
    return {
        "cross_module_calls": sum(crossings.values()),
        "modules": len(modules),
        "strategy_resolved": resolved["strategy"],
        "journal_built": resolved["journal"],
        "crossings": [{"from": a, "to": b, "calls": n} for (a, b), n in crossings.most_common()],
    }


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        engine = create_engine(f"sqlite:///{folder}/trace.db")
        Base.metadata.create_all(engine)
        with engine.begin() as connection:
            connection.execute(
                Book.__table__.insert(),
                [
                    {
                        "id": i,
                        "isbn": f"978-{i}",
                        "title": f"Book {i}",
                        "genre": None,
                        "price": Decimal("10.00"),
                        "stock": i,
                    }
                    for i in (1, 2)
                ],
            )
        setwise.apply(engine, Book, [{"id": 2, "stock": 7}])  # warm-up: journal tables
        result = trace(engine, {"id": 1, "stock": 9})
        engine.dispose()
    print(f"{'measure':<24}{'count':>8}")
    for key in ("cross_module_calls", "modules", "strategy_resolved", "journal_built"):
        print(f"{key:<24}{result[key]:>8}")
    show_all = "--all" in sys.argv[1:]
    print("crossings:" if show_all else "busiest crossings:")
    for edge in result["crossings"] if show_all else result["crossings"][:8]:
        print(f"  {edge['from']} -> {edge['to']}: {edge['calls']}")
    results = HERE / "results"
    results.mkdir(exist_ok=True)
    (results / "trace.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
