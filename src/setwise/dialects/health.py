"""What each database says about its health, read between a run's chunks.

The queries behind the ``Strategy`` hooks of the health signals (``engine.health``):
replica lag as a PostgreSQL primary reports it, replica lag read on a replica itself
(PostgreSQL, MariaDB/MySQL), active sessions, autovacuum on a table (PostgreSQL).
Galera's flow control is read in ``dialects.galera``. Every query only reads the
server's statistics views or status: no lock on a user's table, nothing written.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Table, text

from setwise.errors import InvalidArgumentError


@dataclass(frozen=True)
class ReplicaLag:
    """How far one replica is behind: ``seconds`` of lag, or why it does not replicate
    (``stopped``, then ``seconds`` is None)."""

    name: str
    seconds: float | None
    stopped: str | None = None


@dataclass(frozen=True)
class FlowControl:
    """Galera's flow control on one node: how long it has paused replication in all
    (``wsrep_flow_control_paused_ns``) and the write sets waiting to be applied there."""

    paused_ns: int
    recv_queue: int


# -- PostgreSQL ----------------------------------------------------------------------------

# replay_lag is measured when a replica's reply crosses a sample of the primary's WAL
# times, and while the replay position is stuck it is estimated as growing; it stays as
# last measured once the replica caught up, until two idle replies clear it. So a
# replica that replayed everything it was sent lags by nothing, whatever replay_lag says.
_PG_REPLICAS = text(
    "SELECT COALESCE(NULLIF(application_name, ''), 'replica') || '@' "
    "|| COALESCE(host(client_addr), 'local'), state, "
    "CASE WHEN replay_lsn IS NOT NULL AND replay_lsn >= sent_lsn THEN 0 "
    "ELSE COALESCE(EXTRACT(EPOCH FROM replay_lag), 0) END "
    "FROM pg_stat_replication ORDER BY 1"
)


def pg_replica_lags(connection: Connection) -> list[ReplicaLag]:
    """Each streaming replica's replay lag, as the primary ``connection`` sees it."""
    found = connection.execute(_PG_REPLICAS).all()
    return [
        ReplicaLag(str(name), float(lag))
        if state in ("streaming", "catchup")
        else ReplicaLag(str(name), None, f"its WAL sender is {state}")
        for name, state, lag in found
    ]


# On a replica: WAL received but not replayed yet is lag, as old as the last transaction
# replayed (paused replay leaves received WAL waiting); nothing left to replay is none.
_PG_AS_REPLICA = text(
    "SELECT pg_is_in_recovery(), CASE WHEN pg_last_wal_receive_lsn() IS NULL "
    "OR pg_last_wal_receive_lsn() <= pg_last_wal_replay_lsn() THEN 0 "
    "ELSE COALESCE(EXTRACT(EPOCH FROM clock_timestamp() - pg_last_xact_replay_timestamp()), 0) "
    "END"
)


def pg_lag_as_replica(connection: Connection, name: str) -> ReplicaLag:
    """The lag of the replica ``connection`` reaches (``name``: how to show it)."""
    in_recovery, lag = connection.execute(_PG_AS_REPLICA).one()
    if not in_recovery:
        raise not_a_replica(name)
    return ReplicaLag(name, float(lag))


_PG_ACTIVE = text(
    "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' "
    "AND backend_type = 'client backend' AND pid <> pg_backend_pid()"
)


def pg_active_sessions(connection: Connection) -> int:
    """Client sessions running a statement now, this one left out."""
    return int(connection.execute(_PG_ACTIVE).scalar_one())


_PG_AUTOVACUUM = text(
    "SELECT count(*) FROM pg_stat_progress_vacuum v JOIN pg_stat_activity a ON a.pid = v.pid "
    "WHERE v.relid = to_regclass(:name)::oid AND a.backend_type = 'autovacuum worker'"
)


def pg_autovacuum_running(connection: Connection, table: Table) -> bool:
    """Whether an autovacuum worker is vacuuming ``table`` now."""
    name = connection.dialect.identifier_preparer.format_table(table)
    return bool(connection.execute(_PG_AUTOVACUUM, {"name": name}).scalar_one())


# -- MariaDB and MySQL ---------------------------------------------------------------------


def mysql_lag_as_replica(connection: Connection, name: str) -> ReplicaLag:
    """The lag of the replica ``connection`` reaches: ``Seconds_Behind_Master`` (MySQL:
    ``_Source``), or why it is not replicating (a thread stopped: the lag is unknown)."""
    status = connection.exec_driver_sql("SHOW REPLICA STATUS").mappings().first()
    if status is None:
        raise not_a_replica(name)
    io, sql = (_either(status, f"Slave_{t}_Running", f"Replica_{t}_Running") for t in ("IO", "SQL"))
    if sql != "Yes":
        return ReplicaLag(name, None, "its SQL thread is stopped")
    if io != "Yes":
        return ReplicaLag(name, None, f"its I/O thread is {str(io).lower()}")
    seconds = _either(status, "Seconds_Behind_Master", "Seconds_Behind_Source")
    if seconds is None:
        return ReplicaLag(name, None, "it reports no lag")
    return ReplicaLag(name, float(seconds))


def _either(status: Any, first: str, second: str) -> Any:
    return status[first] if first in status else status.get(second)


def mysql_active_sessions(connection: Connection) -> int:
    """Threads running a statement now (``Threads_running``), this one left out."""
    found = connection.exec_driver_sql("SHOW GLOBAL STATUS LIKE 'Threads_running'").one()
    return max(int(found[1]) - 1, 0)


def not_a_replica(name: str) -> InvalidArgumentError:
    return InvalidArgumentError(
        f"replica_urls names {name}, which is not a replica: give the URL of a server "
        "that replicates the database the run writes",
        argument="replica_urls",
        value=name,
    )
