"""How many rows a chunk holds: a fixed number, or one that adapts to a time target."""

from __future__ import annotations

from typing import Literal

from setwise.errors import InvalidArgumentError

#: First chunk of an "auto" run: small enough to stay far under any sensible time target
#: on a slow or busy table, so the first measurement is cheap.
AUTO_START_ROWS = 1_000
#: Smallest "auto" chunk: below this, per-chunk overhead (two statements and a commit)
#: outweighs the work.
AUTO_MIN_ROWS = 100
#: Largest "auto" chunk: bounds one chunk's transaction (its locks, its undo) whatever the target.
AUTO_MAX_ROWS = 1_000_000
#: An "auto" chunk aims at this share of the target, leaving room for the server's own
#: stalls: it shrinks at once to the size that would take that long, and, while a chunk
#: takes under half the target, grows towards it (at most doubling). In the 10,000,000-
#: row scale run on PostgreSQL the chunk after each checkpoint (every ~1 GB of WAL, its
#: full-page images) took 2.0-2.4x its neighbours: at 0.8 of a 0.5 s target those
#: reached 1.0-1.2 s; at 0.6 they stay under 0.8 s (benchmarks/README.md).
AUTO_SAFETY = 0.6


class ChunkSizer:
    """A fixed chunk size, or one that adapts so each chunk takes about ``seconds``."""

    def __init__(
        self, rows: int | Literal["auto"] | None, seconds: float, cap: int | None = None
    ) -> None:
        self.auto = rows == "auto" or rows is None
        self.rows = AUTO_START_ROWS if self.auto else int(rows)  # type: ignore[arg-type]
        self.seconds = seconds
        if not self.auto and self.rows < 1:
            raise InvalidArgumentError(
                f"chunk_rows must be a positive number or 'auto', not {rows!r}",
                argument="chunk_rows",
                value=rows,
            )
        self.cap = cap
        """The most rows a chunk may hold: the server's cap on a transaction, if any."""
        if cap is not None:
            self.rows = min(self.rows, cap)

    def start_from(self, rows: int, seconds: float) -> None:
        """Go on at the pace of an earlier chunk (a resumed run's last one) instead of
        starting small again."""
        if self.auto and rows > 0:
            self.rows = rows if self.cap is None else min(rows, self.cap)
            self.record(self.rows, seconds)

    def record(self, rows: int, seconds: float) -> None:
        """Grow while chunks are fast; shrink at once when one is slow."""
        if not self.auto or rows < self.rows or seconds <= 0:
            return
        if seconds > self.seconds:
            fitted = self.rows * self.seconds / seconds * AUTO_SAFETY
            self.rows = max(AUTO_MIN_ROWS, int(fitted))
        elif seconds < self.seconds / 2:
            fitted = self.rows * self.seconds / seconds * AUTO_SAFETY
            self.rows = min(AUTO_MAX_ROWS, self.rows * 2, int(fitted))
        if self.cap is not None:
            self.rows = min(self.rows, self.cap)

    def fixed(self, rows: int) -> None:
        """From now on, chunks of ``rows`` (``setwise tune --chunk-rows``), under the cap."""
        self.auto = False
        self.rows = rows if self.cap is None else min(rows, self.cap)

    def aim(self, seconds: float) -> None:
        """From now on, chunks sized to take about ``seconds`` each
        (``setwise tune --chunk-seconds``), from the size they have now."""
        self.auto = True
        self.seconds = seconds
