"""How many rows each chunk takes: fixed, or grown and shrunk toward a time per chunk,
within bounds. Pure logic, no database: the chunk times are given."""

from __future__ import annotations

import pytest

from setwise import SetwiseError
from setwise.engine.sizing import (
    AUTO_MAX_ROWS,
    AUTO_MIN_ROWS,
    AUTO_SAFETY,
    AUTO_START_ROWS,
    ChunkSizer,
)


def test_a_fixed_size_never_moves() -> None:
    sizer = ChunkSizer(500, seconds=1.0)
    for seconds in (0.001, 50.0, 0.5):
        sizer.record(500, seconds)
        assert sizer.rows == 500
    sizer.start_from(20_000, 0.1)
    assert sizer.rows == 500


@pytest.mark.parametrize("rows", [0, -5])
def test_a_size_below_one_row_is_refused(rows: int) -> None:
    with pytest.raises(SetwiseError, match="chunk_rows must be a positive number or 'auto'"):
        ChunkSizer(rows, seconds=1.0)


@pytest.mark.parametrize("rows", ["auto", None])
def test_auto_starts_small(rows: str | None) -> None:
    assert ChunkSizer(rows, seconds=1.0).rows == AUTO_START_ROWS  # type: ignore[arg-type]


def test_fast_chunks_grow_at_most_twofold_each() -> None:
    sizer = ChunkSizer("auto", seconds=1.0)
    sizes = []
    for _ in range(4):
        sizer.record(sizer.rows, 0.001)  # far faster than the target
        sizes.append(sizer.rows)
    assert sizes == [AUTO_START_ROWS * 2**n for n in (1, 2, 3, 4)]


def test_growth_stops_short_of_the_target_by_the_safety_margin() -> None:
    sizer = ChunkSizer("auto", seconds=1.0)
    sizer.record(1_000, 0.4)  # 2,500 rows would take the full second
    assert sizer.rows == min(2_000, int(1_000 / 0.4 * AUTO_SAFETY)) == 1_500


def test_a_chunk_near_the_target_keeps_the_size() -> None:
    sizer = ChunkSizer("auto", seconds=1.0)
    for seconds in (0.5, 0.75, 1.0):
        sizer.record(1_000, seconds)
        assert sizer.rows == 1_000


def test_a_slow_chunk_shrinks_the_next_at_once() -> None:
    sizer = ChunkSizer("auto", seconds=1.0)
    sizer.start_from(100_000, 0.9)
    sizer.record(100_000, 10.0)  # ten times too slow: a lock wait, a busy server
    assert sizer.rows == int(100_000 / 10 * AUTO_SAFETY) == 6_000


def test_bounds_hold_however_fast_or_slow() -> None:
    sizer = ChunkSizer("auto", seconds=1.0)
    sizer.record(1_000, 1_000.0)
    assert sizer.rows == AUTO_MIN_ROWS
    for _ in range(40):
        sizer.record(sizer.rows, 1e-6)
    assert sizer.rows == AUTO_MAX_ROWS


def test_the_servers_cap_on_a_transaction_bounds_every_size() -> None:
    assert ChunkSizer(5_000, seconds=1.0, cap=1_000).rows == 1_000
    sizer = ChunkSizer("auto", seconds=1.0, cap=1_500)
    for _ in range(5):
        sizer.record(sizer.rows, 0.001)
    assert sizer.rows == 1_500
    sizer.start_from(50_000, 0.1)
    assert sizer.rows == 1_500


def test_a_short_last_chunk_or_a_zero_time_tells_nothing() -> None:
    sizer = ChunkSizer("auto", seconds=1.0)
    sizer.record(10, 100.0)  # fewer rows than asked: the table's end
    sizer.record(1_000, 0.0)
    assert sizer.rows == AUTO_START_ROWS


def test_a_resumed_run_goes_on_at_its_last_pace() -> None:
    sizer = ChunkSizer("auto", seconds=1.0)
    sizer.start_from(40_000, 0.8)
    assert sizer.rows == 40_000
    sizer.start_from(0, 0.8)  # no earlier chunk: nothing to go on
    assert sizer.rows == 40_000


@pytest.mark.parametrize("seconds_per_row", [1e-6, 1e-5, 1e-4])
def test_chunks_settle_near_the_time_target(seconds_per_row: float) -> None:
    """With a steady cost per row, chunk times end between half the target and it."""
    sizer = ChunkSizer("auto", seconds=0.5)
    for _ in range(30):
        sizer.record(sizer.rows, sizer.rows * seconds_per_row)
    took = sizer.rows * seconds_per_row
    assert 0.25 <= took <= 0.5
