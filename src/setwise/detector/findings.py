"""What a watch found: a ``Finding`` per row-by-row loop, and the text report that lists
them with the set-based call that replaces each."""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass

#: Width of the report table: the statement and the suggestion need room, and a fixed
#: width keeps the text the same in a terminal, a log and a test failure.
REPORT_WIDTH = 120


@dataclass(frozen=True)
class Finding:
    """A loop that wrote ``count`` rows of ``table`` one statement per row."""

    table: str
    kind: str
    """"UPDATE" or "DELETE"."""
    statement: str
    """The statement's shape: its SQL with every value a placeholder."""
    count: int
    """Rows written one at a time (an executemany call counts each parameter set)."""
    executions: int
    """Calls to the driver that sent them."""
    transactions: int
    """Transactions they were spread over."""
    elapsed_s: float
    """The loop's time: from the start of its first statement to the end of its last,
    round trips and commits included."""
    locations: tuple[str, ...]
    """Where in the program they came from ("file:line in function"), most rows first."""
    same_values: bool
    """Every row got the same new values (``setwise.update`` replaces the loop), rather
    than values of its own (``setwise.apply``)."""
    suggestion: str
    """The set-based call that replaces the loop."""

    @property
    def location(self) -> str:
        """Where most of the rows came from."""
        return self.locations[0]

    def __str__(self) -> str:
        spread = "transaction" if self.transactions == 1 else "transactions"
        lines = [
            f"row-by-row {self.kind} of {self.table}: {self.count} rows in "
            f"{self.executions} statements over {self.transactions} {spread}, "
            f"{self.elapsed_s * 1000:.1f} ms",
            f"  statement: {self.statement}",
            f"  from:      {self.location}",
            *(f"  and from:  {other}" for other in self.locations[1:]),
            f"  instead:   {self.suggestion}",
        ]
        return "\n".join(lines)


def format_report(
    findings: Sequence[Finding], *, threshold: int, labels: Sequence[str] | None = None
) -> str:
    """Findings as a text table, in the order given, then the replacement for each.

    ``labels`` names where each finding was seen (the pytest plugin gives the test's id).
    """
    if not findings:
        return f"setwise.watch: no row-by-row loops (threshold {threshold} rows)"
    from rich import box  # Rich draws the table: loaded only when there is one to draw
    from rich.console import Console
    from rich.table import Table

    table = Table(
        title=f"setwise.watch: {len(findings)} row-by-row loop(s), worst first",
        title_justify="left",
        box=box.SIMPLE_HEAD,
    )
    table.add_column("#", justify="right")
    table.add_column("table", overflow="fold")
    # The statement, the longest text, takes the room left and wraps within it.
    table.add_column("statement", overflow="fold", ratio=1)
    for name in ("rows", "stmts", "txns", "ms"):
        table.add_column(name, justify="right")
    table.add_column("from", overflow="fold")
    for number, finding in enumerate(findings, start=1):
        table.add_row(
            str(number),
            finding.table,
            finding.statement,
            str(finding.count),
            str(finding.executions),
            str(finding.transactions),
            f"{finding.elapsed_s * 1000:.1f}",
            finding.location,
        )
    buffer = io.StringIO()
    Console(file=buffer, width=REPORT_WIDTH, color_system=None).print(table)
    lines = [line.rstrip() for line in buffer.getvalue().splitlines()]
    lines.append("Instead:")
    for number, finding in enumerate(findings, start=1):
        lines.append(f"{number}. {finding.suggestion}")
        if labels is not None:
            lines.append(f"   in {labels[number - 1]}")
    return "\n".join(lines)
