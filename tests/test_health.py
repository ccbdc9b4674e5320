"""A chunked run waits while a health signal says so, then goes on; ``max_wait`` stops
it resumably. The user's own checks here (a throttle query, a flag file, a callable),
on every backend; replica lag on real replicas in ``test_health_replicas.py``."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, delete, text, update

import setwise
from setwise.dialects import get_strategy
from tests.models import Book, create_books, snapshot

ROWS = 40
CHUNK = 5
#: The statement every run here makes: a chunked run of it goes 8 chunks of 5 rows.
STATEMENT = update(Book).where(Book.id > 0).values(price=Book.price + Decimal("1.25"))


class Pauses:
    """A progress callback that turns a signal on after chunk 2 (``on``), records each
    pause shown, and turns the signal off on the ``after``-th report of a pause."""

    def __init__(self, on: Callable[[bool], None], after: int = 2) -> None:
        self.on = on
        self.after = after
        self.shown: list[str] = []
        self.chunks_seen: list[int] = []
        self.switched = False

    def __call__(self, step: setwise.Progress) -> None:
        if step.paused is not None:
            self.shown.append(step.paused)
            if len(self.shown) == self.after:
                self.on(False)
            return
        self.chunks_seen.append(step.chunk)
        if step.chunk == 2 and not self.switched:
            self.switched = True
            self.on(True)


def expected(engine: Engine) -> list[tuple[object, ...]]:
    """The books as ``STATEMENT`` leaves them: every price 1.25 higher, every version
    one higher (the model's version column)."""
    return [
        (*row[:4], row[4] + Decimal("1.25"), *row[5:8], row[8] + 1)  # type: ignore[operator]
        for row in snapshot(engine)
    ]


def run_paused(engine: Engine, pauses: Pauses, **health: Any) -> setwise.Report:
    return setwise.update(
        engine, STATEMENT, chunk_rows=CHUNK, progress=pauses, check_interval=0, **health
    )


def test_throttle_query_pauses_the_run_until_its_flag_is_cleared(engine: Engine) -> None:
    create_books(engine, ROWS)
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE maintenance (busy INTEGER NOT NULL)"))
        connection.execute(text("INSERT INTO maintenance (busy) VALUES (0)"))
    want = expected(engine)

    def flip(on: bool) -> None:
        with engine.begin() as connection:
            connection.execute(text("UPDATE maintenance SET busy = :on"), {"on": int(on)})

    pauses = Pauses(flip)
    report = run_paused(engine, pauses, throttle_query="SELECT busy FROM maintenance")

    # Chunk 2 done, two pauses shown, then chunks 3 to 8.
    assert pauses.shown == ["throttle query returned 1"] * 2
    assert pauses.chunks_seen == list(range(1, 9))
    assert (report.changed, report.chunks) == (ROWS, 8)
    assert snapshot(engine) == want


def test_flag_file_pauses_the_run_while_it_exists(engine: Engine, tmp_path: Path) -> None:
    create_books(engine, ROWS)
    want = expected(engine)
    flag = tmp_path / "pause-setwise"

    def flip(on: bool) -> None:
        if on:
            flag.touch()
        else:
            flag.unlink()

    pauses = Pauses(flip, after=3)
    report = run_paused(engine, pauses, throttle_file=flag)

    assert pauses.shown == [f"throttle file {flag} exists"] * 3
    assert report.changed == ROWS
    assert snapshot(engine) == want


def test_callable_check_pauses_the_run_and_names_its_reason(engine: Engine) -> None:
    create_books(engine, ROWS)
    want = expected(engine)
    busy = {"now": False}

    def flip(on: bool) -> None:
        busy["now"] = on

    pauses = Pauses(flip)
    report = run_paused(
        engine, pauses, throttle_check=lambda: "batch window" if busy["now"] else None
    )

    assert pauses.shown == ["throttle check: batch window"] * 2
    assert report.changed == ROWS
    assert snapshot(engine) == want


def test_max_wait_stops_the_run_resumably_and_resume_finishes_it(engine: Engine) -> None:
    create_books(engine, ROWS)
    want = expected(engine)
    pauses = Pauses(lambda on: None, after=0)  # the signal never clears

    with pytest.raises(setwise.PausedTooLongError) as raised:
        run_paused(engine, pauses, throttle_check=lambda: pauses.switched, max_wait=0.3)

    stopped = raised.value
    assert (stopped.chunks, stopped.signal) == (2, "throttle check says wait")
    assert stopped.waited >= 0.3 and stopped.max_wait == 0.3
    assert f"resume={stopped.run_id!r}" in str(stopped)
    info, _ = setwise.run_details(engine, stopped.run_id)
    assert (info.status, info.chunks) == ("interrupted", 2)

    report = setwise.update(engine, STATEMENT, chunk_rows=CHUNK, resume=stopped.run_id)

    assert report.run_id == stopped.run_id
    assert report.changed == ROWS
    assert snapshot(engine) == want


def test_signals_are_refused_for_a_run_in_one_transaction(engine: Engine) -> None:
    create_books(engine, 3)
    before = snapshot(engine)
    with pytest.raises(setwise.InvalidArgumentError, match="give chunk_rows") as raised:
        setwise.update(engine, STATEMENT, throttle_file="/nonexistent")
    assert raised.value.argument == "throttle_file"
    assert snapshot(engine) == before


def test_a_misspelt_signal_is_refused_with_a_suggestion(engine: Engine) -> None:
    create_books(engine, 3)
    with pytest.raises(TypeError, match="did you mean 'max_lag_seconds'"):
        setwise.update(engine, STATEMENT, chunk_rows=2, max_lag_second=1)  # type: ignore[call-arg]


@pytest.mark.backends("sqlite")
def test_server_signals_are_refused_where_the_database_has_none(engine: Engine) -> None:
    create_books(engine, 3)
    before = snapshot(engine)
    for health, argument in (
        ({"max_lag_seconds": 1}, "max_lag_seconds"),
        ({"max_active_sessions": 10}, "max_active_sessions"),
        ({"wait_for_autovacuum": True}, "wait_for_autovacuum"),
    ):
        refused = r"not available on sqlite|sqlite does not report"
        with pytest.raises(setwise.InvalidArgumentError, match=refused) as raised:
            setwise.update(engine, STATEMENT, chunk_rows=2, **health)
        assert raised.value.argument == argument
    assert snapshot(engine) == before


def test_a_failing_throttle_query_is_refused_before_any_write(engine: Engine) -> None:
    create_books(engine, 6)
    before = snapshot(engine)
    with pytest.raises(setwise.InvalidArgumentError, match="throttle_query failed"):
        setwise.update(engine, STATEMENT, chunk_rows=2, throttle_query="SELECT nope FROM nowhere")
    assert snapshot(engine) == before
    assert setwise.runs(engine) == []


@pytest.mark.backends("mariadb")
def test_flow_control_is_refused_where_the_server_is_no_galera_node(engine: Engine) -> None:
    create_books(engine, 6)
    before = snapshot(engine)
    with pytest.raises(setwise.InvalidArgumentError, match="no Galera node") as raised:
        setwise.update(engine, STATEMENT, chunk_rows=2, max_flow_control=0.1)
    assert raised.value.argument == "max_flow_control"
    assert snapshot(engine) == before
    assert setwise.runs(engine) == []


@pytest.mark.backends("galera")
def test_galera_flow_control_is_read_from_status_only(engine: Engine) -> None:
    # Reads wsrep_flow_control_paused_ns and wsrep_local_recv_queue; sets nothing.
    create_books(engine, ROWS)
    want = expected(engine)
    with engine.connect() as connection:
        found = get_strategy(engine.dialect).flow_control(connection)
    assert found is not None and found.paused_ns >= 0 and found.recv_queue >= 0
    report = setwise.update(
        engine, STATEMENT, chunk_rows=CHUNK, max_flow_control=0.5, check_interval=0
    )
    assert report.changed == ROWS
    assert snapshot(engine) == want


def test_apply_and_its_revert_wait_on_signals_too(engine: Engine, tmp_path: Path) -> None:
    create_books(engine, ROWS)
    before = snapshot(engine)
    flag = tmp_path / "hold"

    def flip(on: bool) -> None:
        if on:
            flag.touch()
        else:
            flag.unlink()

    changes = [{"id": i, "stock": 1000 + i} for i in range(1, ROWS + 1)]
    applying = Pauses(flip)
    report = setwise.apply(
        engine,
        Book,
        changes,
        chunk_rows=CHUNK,
        progress=applying,
        throttle_file=flag,
        check_interval=0,
    )
    assert applying.shown == [f"throttle file {flag} exists"] * 2
    assert report.changed == ROWS

    reverting = Pauses(flip)
    undone = setwise.revert(
        engine,
        report.run_id or "",
        chunk_rows=CHUNK,
        progress=reverting,
        throttle_file=flag,
        check_interval=0,
    )
    assert reverting.shown == [f"throttle file {flag} exists"] * 2
    assert undone.changed == ROWS
    assert [row[:8] for row in snapshot(engine)] == [row[:8] for row in before]


def test_a_chunked_delete_waits_on_the_callable_and_journal_off_runs_show_it_too(
    engine: Engine,
) -> None:
    """A delete takes the health options as update does; a run without a journal (no
    run record to note the pause in) still shows it in its progress."""
    create_books(engine, ROWS)
    busy = {"now": False}

    def flip(on: bool) -> None:
        busy["now"] = on

    pauses = Pauses(flip)
    report = setwise.delete(
        engine,
        delete(Book).where(Book.id > 4),
        chunk_rows=CHUNK,
        progress=pauses,
        throttle_check=lambda: "batch job running" if busy["now"] else None,
        check_interval=0,
        journal=False,
    )
    assert pauses.shown == ["throttle check: batch job running"] * 2
    assert report.deleted == ROWS - 4
    assert [row[0] for row in snapshot(engine)] == [1, 2, 3, 4]
