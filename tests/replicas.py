"""Primary + replica pairs started on loopback for the tests of replica lag.

``postgresql_pair()``: a PostgreSQL 15 primary made with ``initdb`` and a streaming
replica made from it with ``pg_basebackup -R``; ``mariadb_pair()``: a MariaDB primary
with a binary log and a replica replicating it by GTID, both made with
``mariadb-install-db``. Each server lives in a temporary directory, listens on a free
port of 127.0.0.1 and is stopped, its directory removed, when the pair's block ends.

The shared servers of ``tests.backends`` are left alone: their role has no replication
privilege, and a base backup of them would copy every other session's databases.

Servers refuse to run as root: as root (CI), each runs as its own OS user (``postgres``,
``mysql``) through ``runuser``; otherwise as the user running the tests. A missing
binary raises ``Unavailable`` (the fixture skips, or fails under CI=true).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import create_engine, text

PG_BIN = Path(os.environ.get("SETWISE_TEST_PG_BIN", "/usr/lib/postgresql/15/bin"))
MARIADBD = Path(os.environ.get("SETWISE_TEST_MARIADBD", "/usr/sbin/mariadbd"))
MARIADB_INSTALL_DB = Path(
    os.environ.get("SETWISE_TEST_MARIADB_INSTALL_DB", "/usr/bin/mariadb-install-db")
)

#: Seconds a server gets to start and answer: an initdb'd cluster starts in about a
#: second here, a fresh MariaDB in two; ten times that covers a loaded CI machine.
START_SECONDS = 30


class Unavailable(Exception):
    """A server binary is missing or would not start: the tests that need it skip."""


@dataclass(frozen=True)
class Pair:
    """A primary and its replica, as SQLAlchemy URLs."""

    primary: str
    replica: str


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _as_user(user: str, command: Sequence[str | Path]) -> list[str]:
    """``command`` run as OS user ``user`` when the tests run as root."""
    words = [str(word) for word in command]
    return ["runuser", "-u", user, "--", *words] if os.geteuid() == 0 else words


def _owned_dir(user: str, stack: ExitStack) -> Path:
    """A new temporary directory that ``user`` (when running as root) owns."""
    path = Path(tempfile.mkdtemp(prefix="setwise-replica-"))
    stack.callback(shutil.rmtree, path, True)
    if os.geteuid() == 0:
        shutil.chown(path, user, user)
    return path


def _run(user: str, command: Sequence[str | Path]) -> None:
    done = subprocess.run(_as_user(user, command), capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise Unavailable(f"{Path(str(command[0])).name} failed: {done.stderr.strip()[-2000:]}")


def _wait_for(url: str, what: str, log: Path) -> None:
    engine = create_engine(url)
    deadline = time.monotonic() + START_SECONDS
    try:
        while True:
            try:
                with engine.connect() as connection:
                    connection.execute(text("SELECT 1"))
                return
            except Exception as exc:
                if time.monotonic() > deadline:
                    tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
                    raise Unavailable(f"{what} did not start: {exc}\n{tail}") from exc
            time.sleep(0.2)
    finally:
        engine.dispose()


# -- PostgreSQL ------------------------------------------------------------------------


@contextmanager
def postgresql_pair() -> Iterator[Pair]:
    """A PostgreSQL primary and a streaming replica of it, on free ports."""
    for binary in ("initdb", "pg_ctl", "pg_basebackup", "postgres"):
        if not (PG_BIN / binary).exists():
            raise Unavailable(f"{PG_BIN / binary} not found (SETWISE_TEST_PG_BIN)")
    with ExitStack() as stack:
        root = _owned_dir("postgres", stack)
        primary, replica = root / "primary", root / "replica"
        ports = _free_port(), _free_port()
        _run(
            "postgres",
            [PG_BIN / "initdb", "-D", primary, "-U", "postgres", "--auth=trust", "-E", "UTF8"],
        )
        settings = (
            "listen_addresses = '127.0.0.1'\n"
            f"unix_socket_directories = '{root}'\n"
            "wal_level = replica\nmax_wal_senders = 4\nhot_standby = on\n"
            # Feedback every 100 ms: pg_stat_replication shows the replay position
            # promptly (default 10 s).
            "wal_receiver_status_interval = 1\nfsync = off\n"
        )
        _append(primary / "postgresql.conf", settings)
        _append(primary / "pg_hba.conf", "host replication all 127.0.0.1/32 trust\n")
        _pg_start(primary, ports[0], stack)
        primary_url = f"postgresql+psycopg://postgres@127.0.0.1:{ports[0]}/postgres"
        _pg_ready(ports[0], "the PostgreSQL primary", primary / "server.log")
        _run(
            "postgres",
            [
                PG_BIN / "pg_basebackup",
                *("-h", "127.0.0.1", "-p", str(ports[0]), "-U", "postgres"),
                *("-D", replica, "-R", "-X", "stream", "--checkpoint=fast"),
            ],
        )
        _pg_start(replica, ports[1], stack)
        replica_url = f"postgresql+psycopg://postgres@127.0.0.1:{ports[1]}/postgres"
        _pg_ready(ports[1], "the PostgreSQL replica", replica / "server.log")
        yield Pair(primary_url, replica_url)


def _pg_ready(port: int, what: str, log: Path) -> None:
    """Wait until the server on ``port`` accepts connections, asked with pg_isready: a
    connection psycopg tries while the server starts is left to the garbage collector,
    which warns."""
    deadline = time.monotonic() + START_SECONDS
    ready = [PG_BIN / "pg_isready", "-q", "-h", "127.0.0.1", "-p", str(port)]
    while subprocess.run(ready, check=False).returncode != 0:
        if time.monotonic() > deadline:
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise Unavailable(f"{what} did not start\n{tail}")
        time.sleep(0.2)


def _append(path: Path, text_: str) -> None:
    with path.open("a") as file:
        file.write(text_)


def _pg_start(data: Path, port: int, stack: ExitStack) -> None:
    log = data / "server.log"
    _run(
        "postgres",
        [PG_BIN / "pg_ctl", "-D", data, "-l", log, "-o", f"-p {port}", "-w", "start"],
    )
    stack.callback(
        subprocess.run,
        _as_user("postgres", [PG_BIN / "pg_ctl", "-D", data, "-m", "immediate", "stop"]),
        capture_output=True,
        check=False,
    )


# -- MariaDB -----------------------------------------------------------------------------


@contextmanager
def mariadb_pair() -> Iterator[Pair]:
    """A MariaDB primary (binary log on) and a replica of it by GTID, on free ports."""
    for binary in (MARIADBD, MARIADB_INSTALL_DB):
        if not binary.exists():
            raise Unavailable(f"{binary} not found")
    with ExitStack() as stack:
        root = _owned_dir("mysql", stack)
        ports = _free_port(), _free_port()
        urls = []
        for server_id, (name, port) in enumerate(
            zip(("primary", "replica"), ports, strict=True), 1
        ):
            data = root / name
            _run(
                "mysql",
                [
                    MARIADB_INSTALL_DB,
                    "--no-defaults",
                    f"--datadir={data}",
                    "--auth-root-authentication-method=normal",
                    "--skip-test-db",
                ],
            )
            _mariadb_start(root, data, port, server_id, stack)
            url = f"mariadb+pymysql://root@127.0.0.1:{port}/test"
            _wait_for(url.removesuffix("test"), f"the MariaDB {name}", data / "server.log")
            urls.append(url)
        for url in urls[:1]:
            _execute(url.removesuffix("test"), ["CREATE DATABASE test"])
        _execute(
            urls[1].removesuffix("test"),
            [
                f"CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT={ports[0]}, "
                "MASTER_USER='root', MASTER_USE_GTID=slave_pos",
                "START REPLICA",
            ],
        )
        _wait_for(urls[1], "the MariaDB replica's copy of database test", root / "replica.log")
        yield Pair(urls[0], urls[1])


def _mariadb_start(root: Path, data: Path, port: int, server_id: int, stack: ExitStack) -> None:
    log = data / "server.log"
    command = [
        MARIADBD,
        "--no-defaults",
        f"--datadir={data}",
        f"--port={port}",
        "--bind-address=127.0.0.1",
        f"--socket={root}/mariadb-{port}.sock",
        f"--pid-file={root}/mariadb-{port}.pid",
        f"--log-error={log}",
        f"--server-id={server_id}",
        "--log-bin=binlog",
        "--binlog-format=ROW",
        "--innodb-buffer-pool-size=32M",
        "--skip-name-resolve",
    ]
    process = subprocess.Popen(
        _as_user("mysql", command), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )

    def stop() -> None:
        process.terminate()
        try:
            process.wait(START_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    stack.callback(stop)


def _execute(url: str, statements: Sequence[str]) -> None:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            for statement in statements:
                connection.exec_driver_sql(statement)
            connection.commit()
    finally:
        engine.dispose()
