"""Health signals: between chunks, a run waits while the database says it is busy.

Like gh-ost (``--max-lag-millis``, ``--throttle-query``, ``--throttle-flag-file``) and
pt-online-schema-change (``--max-lag``, ``--max-load``, ``--check-interval``), a chunked
run reads its signals before each chunk (at most every ``check_interval`` seconds) and,
while one says wait, waits, reading them again every ``check_interval``:

- ``max_lag_seconds``: a replica replays more than this many seconds behind; read on
  the primary (PostgreSQL's ``pg_stat_replication``) or, with ``replica_urls``, on each
  replica itself (PostgreSQL, MariaDB/MySQL ``SHOW REPLICA STATUS``). A replica that
  does not replicate or cannot be reached counts as lagging;
- ``max_active_sessions``: more sessions are running a statement (``pg_stat_activity``,
  ``Threads_running``);
- ``max_flow_control``: Galera's flow control paused replication more than this
  fraction of the time since the last reading;
- ``wait_for_autovacuum``: autovacuum works on the target table (PostgreSQL);
- ``throttle_query``: a query whose first value is not zero (nor NULL, nor empty);
  ``throttle_file``: a file that exists; ``throttle_check``: a callable that returns
  something true (a text returned is shown as the reason).

``max_wait`` bounds one wait: past it the run stops, marked interrupted and resumable
(``PausedTooLongError``). Signals are read on the run's own connection in a short
transaction that is rolled back at once (nothing held between chunks, nothing a
throttle query writes kept), and on each replica through an autocommit connection of
its own. The queries are the dialects' (``Strategy.replica_lags`` and the other hooks).
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypedDict

from sqlalchemy import Connection, Engine, Table, create_engine, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError
from sqlalchemy.pool import NullPool

from setwise.dialects import Strategy, get_strategy
from setwise.dialects.health import ReplicaLag
from setwise.engine.retry import first_line
from setwise.engine.waiting import wait
from setwise.errors import InvalidArgumentError, PausedTooLongError
from setwise.messages import closest

log = logging.getLogger("setwise")

#: Seconds between two readings of the signals, as pt-online-schema-change's
#: ``--check-interval`` (1 s): a lag or load measured in seconds needs no finer look,
#: and the readings then cost a few milliseconds a second whatever the chunk size.
CHECK_INTERVAL = 1.0

#: The shortest sleep while waiting, with ``check_interval=0`` (which reads before
#: every chunk): a busy loop of readings would add to the load it waits out.
SHORTEST_POLL = 0.05


class HealthOptions(TypedDict, total=False):
    """The health signals a chunked run waits on, as ``update``, ``apply`` and
    ``revert`` take them (see ``setwise.engine.health``)."""

    max_lag_seconds: float | None
    replica_urls: Sequence[str] | None
    max_active_sessions: int | None
    max_flow_control: float | None
    wait_for_autovacuum: bool
    throttle_query: str | None
    throttle_file: str | os.PathLike[str] | None
    throttle_check: Callable[[], object] | None
    max_wait: float | None
    check_interval: float


@dataclass(frozen=True)
class Health:
    """The health signals of a run, checked (``health_of``)."""

    max_lag_seconds: float | None = None
    replica_urls: tuple[str, ...] = ()
    max_active_sessions: int | None = None
    max_flow_control: float | None = None
    wait_for_autovacuum: bool = False
    throttle_query: str | None = None
    throttle_file: Path | None = None
    throttle_check: Callable[[], object] | None = None
    max_wait: float | None = None
    check_interval: float = CHECK_INTERVAL

    @property
    def reads_target(self) -> bool:
        """Some signal is read on the target database itself."""
        lag_on_primary = self.max_lag_seconds is not None and not self.replica_urls
        return (
            lag_on_primary
            or self.throttle_query is not None
            or self.wait_for_autovacuum
            or (self.max_active_sessions is not None or self.max_flow_control is not None)
        )


def health_of(strategy: Strategy, options: Mapping[str, Any], *, chunked: bool) -> Health | None:
    """The checked ``Health`` of ``options`` (``HealthOptions``) for a run on a database
    of ``strategy``; None when no signal is asked for. ``InvalidArgumentError`` for a
    value out of range or a signal this database does not report; ``TypeError`` for a
    name that is no option."""
    unknown = sorted(set(options) - set(HealthOptions.__annotations__))
    if unknown:
        close = closest(unknown[0], HealthOptions.__annotations__)
        hint = f"; did you mean {close!r}?" if close else ""
        raise TypeError(f"got an unexpected keyword argument {unknown[0]!r}{hint}")
    given = {k: v for k, v in options.items() if v is not None and v is not False}
    signals = [k for k in given if k not in ("max_wait", "check_interval")]
    if not signals:
        return None
    urls = given.get("replica_urls", ())
    health = Health(
        **{k: v for k, v in given.items() if k not in ("replica_urls", "throttle_file")},
        replica_urls=(urls,) if isinstance(urls, str) else tuple(urls),
        throttle_file=Path(given["throttle_file"]) if "throttle_file" in given else None,
    )
    if not chunked:
        raise InvalidArgumentError(
            "health signals are read between chunks: give chunk_rows (a number or 'auto')",
            argument=signals[0],
            value=given[signals[0]],
        )
    _check_values(health)
    _check_signals(strategy, health)
    return health


#: What each number takes: its lowest value, whether that value itself is refused, its
#: highest (refused itself), and the rule in words.
_RANGES: dict[str, tuple[float, bool, float, str]] = {
    "max_lag_seconds": (0, True, math.inf, "a number above 0"),
    "max_active_sessions": (0, False, math.inf, "0 or more"),
    "max_flow_control": (0, False, 1, "a share from 0 up to 1"),
    "max_wait": (0, True, math.inf, "a number above 0"),
    "check_interval": (0, False, math.inf, "0 or more"),
}


def _check_values(health: Health) -> None:
    for name, (lowest, above, highest, rule) in _RANGES.items():
        value = getattr(health, name)
        if value is None:
            continue
        if not isinstance(value, int | float) or not (
            (value > lowest if above else value >= lowest) and value < highest
        ):
            raise InvalidArgumentError(
                f"{name} takes {rule}, not {value!r}", argument=name, value=value
            )
    if health.replica_urls and health.max_lag_seconds is None:
        raise InvalidArgumentError(
            "replica_urls are read for their lag: give max_lag_seconds too",
            argument="replica_urls",
            value=list(health.replica_urls),
        )
    if health.throttle_check is not None and not callable(health.throttle_check):
        raise InvalidArgumentError(
            f"throttle_check takes a callable, not {health.throttle_check!r}",
            argument="throttle_check",
            value=health.throttle_check,
        )


def _check_signals(strategy: Strategy, health: Health) -> None:
    """Refuse a signal the database (or a replica's) does not report, before any write."""
    signals = strategy.health_signals
    if (
        health.max_lag_seconds is not None
        and not health.replica_urls
        and ("replicas" not in signals)
    ):
        raise InvalidArgumentError(
            f"max_lag_seconds without replica_urls reads the lag on the primary, which "
            f"{strategy.name} does not report: give replica_urls=[...] (--replica URL), "
            "the URLs of the replicas to read it on",
            argument="max_lag_seconds",
            value=health.max_lag_seconds,
        )
    for url in health.replica_urls:
        try:
            replica = get_strategy(make_url(url).get_dialect()())
        except (ArgumentError, NoSuchModuleError, ImportError) as exc:
            raise InvalidArgumentError(
                f"replica_urls: {_shown(url)} is not a database URL setwise can use: {exc}",
                argument="replica_urls",
                value=_shown(url),
            ) from exc
        if "replica" not in replica.health_signals:
            raise replica.no_signal("replica", "replica_urls")
    for name, signal, on in (
        ("max_active_sessions", "sessions", health.max_active_sessions is not None),
        ("wait_for_autovacuum", "autovacuum", health.wait_for_autovacuum),
        ("max_flow_control", "flow_control", health.max_flow_control is not None),
    ):
        if on and signal not in signals:
            raise strategy.no_signal(signal, name)


def _shown(url: str) -> str:
    """``url`` with its password masked."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "(a URL that does not parse)"


class Watch:
    """Reads a run's health signals and waits while one says wait."""

    def __init__(self, health: Health, strategy: Strategy, connection: Connection, table: Table):
        """Reads the signals once: a throttle query that fails, flow control asked of a
        server that is no Galera node, a replica URL of a server that is no replica,
        are refused before any write."""
        self.health = health
        self.strategy = strategy
        self.connection = connection
        self.table = table
        self._replicas: dict[str, Connection] = {}
        self._flow: tuple[float, int] | None = None
        self._checked = -math.inf
        if health.max_flow_control is not None and strategy.flow_control(connection) is None:
            raise InvalidArgumentError(
                f"max_flow_control reads Galera's flow control: {table.name!r} is on a "
                f"{strategy.name} server that is no Galera node",
                argument="max_flow_control",
                value=health.max_flow_control,
            )
        try:  # a URL that reaches no replica is refused
            self._last = self.reasons()
        finally:
            self.close()  # nothing held while the run starts: the next reading reconnects

    def wait(self, run_id: str, chunks: int, show: Callable[[str], None]) -> None:
        """Return when no signal says wait (read again if ``check_interval`` has passed
        since the last reading); meanwhile ``show`` the reasons at every reading.
        ``PausedTooLongError`` (naming run ``run_id`` after ``chunks`` chunks) when
        waiting passes ``max_wait``."""
        health = self.health
        if time.monotonic() - self._checked < health.check_interval and not self._last:
            return
        reasons = self.reasons()
        if not reasons:
            return
        started = time.monotonic()
        log.info("run %s paused: %s", run_id, "; ".join(reasons))
        while reasons:
            shown = "; ".join(reasons)
            show(shown)
            waited = time.monotonic() - started
            if health.max_wait is not None and waited >= health.max_wait:
                raise PausedTooLongError(
                    run_id, chunks, signal=shown, waited=waited, max_wait=health.max_wait
                )
            poll = max(health.check_interval, SHORTEST_POLL)
            if health.max_wait is not None:
                poll = min(poll, max(health.max_wait - waited, 0.0))
            wait(poll)
            reasons = self.reasons()
        self._last = []
        # No report that the wait ended: the next chunk's, without ``paused``, says it.
        log.info("run %s goes on after waiting %.1f s", run_id, time.monotonic() - started)

    def reasons(self) -> list[str]:
        """Every signal that says wait now, as a person reads it ("replica lag 4.2 s >
        1 s"); empty when none does."""
        health = self.health
        reasons = self._target_reasons() if health.reads_target else []
        for url in health.replica_urls:
            reasons += self._replica_reasons(url)
        if health.throttle_file is not None and health.throttle_file.exists():
            reasons.append(f"throttle file {health.throttle_file} exists")
        if health.throttle_check is not None:
            said = health.throttle_check()
            if said:
                reasons.append(
                    f"throttle check: {said}"
                    if isinstance(said, str)
                    else "throttle check says wait"
                )
        self._checked = time.monotonic()
        return reasons

    def _target_reasons(self) -> list[str]:
        health, strategy, connection = self.health, self.strategy, self.connection
        reasons: list[str] = []
        with connection.begin() as transaction:
            try:
                if health.max_lag_seconds is not None and not health.replica_urls:
                    for lag in strategy.replica_lags(connection):
                        reasons += _lagging(lag, health.max_lag_seconds)
                if health.max_active_sessions is not None:
                    active = strategy.active_sessions(connection)
                    if active > health.max_active_sessions:
                        reasons.append(f"active sessions {active} > {health.max_active_sessions}")
                if health.wait_for_autovacuum and strategy.autovacuum_running(
                    connection, self.table
                ):
                    reasons.append(f"autovacuum on {self.table.name}")
                if health.max_flow_control is not None:
                    reasons += self._flow_reasons(health.max_flow_control)
                if health.throttle_query is not None:
                    reasons += self._query_reasons(health.throttle_query)
            finally:
                transaction.rollback()
        return reasons

    def _flow_reasons(self, most: float) -> list[str]:
        found = self.strategy.flow_control(self.connection)
        if found is None:
            return []
        now, before = time.monotonic(), self._flow
        self._flow = (now, found.paused_ns)
        if before is None or now <= before[0]:
            return []
        share = (found.paused_ns - before[1]) / 1e9 / (now - before[0])
        if share <= most:
            return []
        return [
            f"Galera flow control paused replication {share:.0%} of the last "
            f"{now - before[0]:.1f} s > {most:.0%} (receive queue {found.recv_queue})"
        ]

    def _query_reasons(self, query: str) -> list[str]:
        try:
            row = self.connection.exec_driver_sql(query).first()
        except DBAPIError as exc:
            raise InvalidArgumentError(
                f"throttle_query failed: {first_line(exc)}", argument="throttle_query", value=query
            ) from exc
        value = None if row is None or not len(row) else row[0]
        return [f"throttle query returned {value!r}"] if value and value != "0" else []

    def _replica_reasons(self, url: str) -> list[str]:
        engine = replica_engine(url)
        parsed = engine.url
        name = f"{parsed.host or 'localhost'}:{parsed.port}" if parsed.port else str(parsed.host)
        connection = self._replicas.pop(url, None)
        try:
            if connection is None:
                connection = engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            lag = get_strategy(engine.dialect).lag_as_replica(connection, name)
        except DBAPIError as exc:
            if connection is not None:
                connection.invalidate()
                connection.close()
            return [f"replica {name} unreachable: {first_line(exc)}"]
        except BaseException:
            if connection is not None:
                connection.close()
            raise
        self._replicas[url] = connection
        return _lagging(lag, self.health.max_lag_seconds or 0.0)

    def close(self) -> None:
        """Let go of the replicas' connections."""
        for connection in self._replicas.values():
            connection.close()
        self._replicas.clear()


#: One engine per replica URL for the process, without a pool: a run keeps its own
#: connection to each replica and closes it when it ends; the engine keeps only what
#: SQLAlchemy learns on the first connection (the server's version and settings),
#: which a new engine per run would ask again, a few milliseconds each time.
_REPLICA_ENGINES: dict[str, Engine] = {}


def replica_engine(url: str) -> Engine:
    """The engine that reads the replica at ``url``."""
    if url not in _REPLICA_ENGINES:
        _REPLICA_ENGINES[url] = create_engine(url, poolclass=NullPool)
    return _REPLICA_ENGINES[url]


def _lagging(lag: ReplicaLag, most: float) -> list[str]:
    if lag.stopped is not None or lag.seconds is None:
        return [f"replica {lag.name} not replicating: {lag.stopped}"]
    if lag.seconds > most:
        # Rounded up: a lag of 0.53 s over a limit of 0.5 s shows as 0.6 s, not 0.5 s.
        shown = math.ceil(lag.seconds * 10) / 10
        return [f"replica lag {shown:.1f} s > {most:g} s ({lag.name})"]
    return []


class Unwatched:
    """No health signal: nothing to read, nothing to wait for."""

    def wait(self, run_id: str, chunks: int, show: Callable[[str], None]) -> None:
        """Return at once."""

    def close(self) -> None:
        """Nothing to let go of."""


def watching(
    health: Health | None, strategy: Strategy, connection: Connection, table: Table
) -> Watch | Unwatched:
    """The watch of a run's ``health`` on ``connection`` (its target ``table``)."""
    return Unwatched() if health is None else Watch(health, strategy, connection, table)
