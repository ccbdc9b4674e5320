"""``EXPLAIN <statement>`` as a SQLAlchemy construct, so the statement keeps its bound
parameters: the plan is asked for the very statement a run would send."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ClauseElement
from sqlalchemy.sql.expression import Executable


class Explain(Executable, ClauseElement):
    """``prefix`` (``EXPLAIN``, ``EXPLAIN QUERY PLAN``) followed by ``statement``."""

    inherit_cache = False

    def __init__(self, statement: ClauseElement, prefix: str) -> None:
        self.statement = statement
        self.prefix = prefix


@compiles(Explain)
def _compile_explain(element: Explain, compiler: SQLCompiler, **kw: Any) -> str:
    text = f"{element.prefix} {compiler.process(element.statement, **kw)}"
    # Compiling an UPDATE marks the compiler as an UPDATE's; the EXPLAIN returns rows,
    # so the flags go back, or the result would be closed as a DML rowcount.
    compiler.isinsert = compiler.isupdate = compiler.isdelete = False
    return text
