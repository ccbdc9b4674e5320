"""``setwise runs --since``: how long ago, or a date or time, as a person types them."""

from __future__ import annotations

import datetime as dt

import pytest

from setwise.cli.commands_runs import since_of
from setwise.cli.options import UsageError
from setwise.report import Progress


@pytest.mark.parametrize(
    ("typed", "meant"),
    [
        ("30m", dt.timedelta(minutes=30)),
        ("2h", dt.timedelta(hours=2)),
        ("3d", dt.timedelta(days=3)),
        ("1w", dt.timedelta(weeks=1)),
        ("1.5H", dt.timedelta(minutes=90)),
        ("2026-01-01", dt.datetime(2026, 1, 1)),
        ("2026-01-01T12:30", dt.datetime(2026, 1, 1, 12, 30)),
        (
            "2026-01-01T12:30+02:00",
            dt.datetime(2026, 1, 1, 12, 30, tzinfo=dt.timezone(dt.timedelta(hours=2))),
        ),
    ],
)
def test_since_reads_a_while_ago_or_a_time(typed: str, meant: object) -> None:
    assert since_of(typed) == meant


@pytest.mark.parametrize("typed", ["yesterday", "2h ago", "-3d", "2026-13-01"])
def test_since_refuses_what_it_cannot_read(typed: str) -> None:
    with pytest.raises(UsageError, match=f"--since {typed}: give a date or time"):
        since_of(typed)


def test_progress_tells_about_how_many_chunks_are_left() -> None:
    step = Progress(40_000, 150_000, 0, 2, 20_000, 0.1)
    assert (step.phase, step.chunks_about) == ("merging", 8)  # 2 done, 110,000 rows to go
    assert Progress(150_000, 150_000, 0, 8, 10_000, 0.1).chunks_about == 8
    assert Progress(5_000, None, 0, 0, 0, 0.0, phase="reading and checking").chunks_about is None
