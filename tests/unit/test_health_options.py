"""Health options are checked before a run, by database, without one; the progress bar
says why a run waits."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.dialects import mysql, postgresql, sqlite

import setwise
from setwise.cli.render import progress_label
from setwise.dialects import get_strategy
from setwise.engine.health import CHECK_INTERVAL, Health, health_of

PG = get_strategy(postgresql.psycopg.dialect())
MARIADB = get_strategy(mysql.pymysql.dialect(is_mariadb=True))
SQLITE = get_strategy(sqlite.pysqlite.dialect())


def test_no_signal_is_no_health_to_watch() -> None:
    assert health_of(SQLITE, {}, chunked=True) is None
    assert health_of(SQLITE, {"max_wait": 5, "wait_for_autovacuum": False}, chunked=False) is None


def test_signals_are_kept_as_given() -> None:
    found = health_of(
        PG,
        {"max_lag_seconds": 2, "throttle_file": "stop", "max_wait": 60, "check_interval": 0},
        chunked=True,
    )
    assert found == Health(
        max_lag_seconds=2, throttle_file=Path("stop"), max_wait=60, check_interval=0
    )
    assert Health().check_interval == CHECK_INTERVAL == 1.0


@pytest.mark.parametrize(
    ("strategy", "options", "argument", "says"),
    [
        (SQLITE, {"max_lag_seconds": 1}, "max_lag_seconds", "sqlite does not report"),
        (MARIADB, {"max_lag_seconds": 1}, "max_lag_seconds", "give replica_urls"),
        (MARIADB, {"wait_for_autovacuum": True}, "wait_for_autovacuum", "not available on"),
        (SQLITE, {"max_active_sessions": 3}, "max_active_sessions", "not available on"),
        (PG, {"max_flow_control": 0.1}, "max_flow_control", "not available on"),
        (PG, {"replica_urls": ["postgresql://r/x"]}, "replica_urls", "give max_lag_seconds"),
        (
            PG,
            {"max_lag_seconds": 1, "replica_urls": ["sqlite:///x.db"]},
            "replica_urls",
            "not available on sqlite",
        ),
        (PG, {"max_lag_seconds": 0}, "max_lag_seconds", "above 0"),
        (PG, {"max_flow_control": 1.5}, "max_flow_control", "share from 0 up to 1"),
        (PG, {"throttle_query": "SELECT 1", "max_wait": -1}, "max_wait", "above 0"),
        (PG, {"throttle_check": "yes"}, "throttle_check", "callable"),
    ],
)
def test_unusable_signals_are_refused_naming_the_option(
    strategy: Any, options: dict[str, Any], argument: str, says: str
) -> None:
    with pytest.raises(setwise.InvalidArgumentError, match=says) as raised:
        health_of(strategy, options, chunked=True)
    assert raised.value.argument == argument


def test_a_run_in_one_transaction_takes_no_signal() -> None:
    with pytest.raises(setwise.InvalidArgumentError, match="give chunk_rows") as raised:
        health_of(PG, {"max_wait": 9, "throttle_query": "SELECT 0"}, chunked=False)
    assert (raised.value.argument, raised.value.value) == ("throttle_query", "SELECT 0")


def test_one_replica_url_may_be_given_alone() -> None:
    found = health_of(
        PG, {"max_lag_seconds": 1, "replica_urls": "postgresql://replica/db"}, chunked=True
    )
    assert found is not None and found.replica_urls == ("postgresql://replica/db",)


def test_a_misspelt_option_suggests_the_right_one() -> None:
    with pytest.raises(TypeError, match="did you mean 'throttle_query'"):
        health_of(PG, {"throttle_querry": "SELECT 0"}, chunked=True)


def test_the_bar_says_why_the_run_waits() -> None:
    step = setwise.Progress(300, 4000, 300, 3, 100, 0.2, phase="updating", table="books")
    assert progress_label(step) == "books: updating, chunk 3 of about 40"
    paused = setwise.Progress(
        300, 4000, 300, 3, 100, 0.2, "updating", "books", "replica lag 4.2 s > 1 s"
    )
    assert progress_label(paused) == (
        "books: updating, chunk 3 of about 40, paused: replica lag 4.2 s > 1 s"
    )
