"""Staging rows on MySQL and MariaDB: LOAD DATA LOCAL INFILE when the connection may,
else multi-row INSERTs (dialects/mysql_values.py).

LOAD DATA reads a tab-separated file in one statement, the server's bulk path, and
stages about a fifth faster than PyMySQL's multi-row INSERTs (benchmarks/README.md).
It needs both ends to allow it: the client connected with ``local_infile=True``
(PyMySQL, aiomysql; mysqlclient: ``local_infile=1``) and the server's ``local_infile``
on. Only plain values go that way (numbers, text, booleans, naive dates and times,
NULL; ``bulktext``); a batch with anything else is INSERTed. The batches of a
changeset go to one file, loaded by one statement at the end.
The server turns a LOAD DATA LOCAL error into a warning and goes on, so a load that
reports a warning or a row count other than the file's fails instead.
"""

from __future__ import annotations

import os
import tempfile
import warnings
import weakref
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TextIO

from sqlalchemy import Connection, Table

from setwise.dialects.bulktext import MYSQL
from setwise.dialects.drivers import awaited, call, driver_connection
from setwise.errors import StagingError

#: CLIENT.LOCAL_FILES: the client asked to send local files. PyMySQL sets it in its
#: ``client_flag`` for ``local_infile=True``; mysqlclient's ``client_flag`` has it too
#: when connected with ``local_infile=1`` (libmariadb's MYSQL_OPT_LOCAL_INFILE).
_LOCAL_FILES = 128

#: Whether each DBAPI connection may LOAD DATA LOCAL: asked once per connection.
_ALLOWED: weakref.WeakKeyDictionary[Any, bool] = weakref.WeakKeyDictionary()


def load_data_allowed(connection: Connection) -> bool:
    """The client asked for LOCAL INFILE and the server allows it."""
    if connection.connection.dbapi_connection is None:
        return False
    raw: Any = driver_connection(connection)  # PyMySQL's, mysqlclient's or aiomysql's
    if not getattr(raw, "client_flag", 0) & _LOCAL_FILES:
        return False
    if raw not in _ALLOWED:
        setting = connection.exec_driver_sql("SELECT @@local_infile").scalar()
        _ALLOWED[raw] = str(setting).upper() in ("1", "ON")
    return _ALLOWED[raw]


@contextmanager
def load_data_file(connection: Connection, table: Table) -> Iterator[LoadDataFile]:
    """A file the block writes batches to, loaded into ``table`` with one LOAD DATA LOCAL
    INFILE when the block ends without an error; deleted either way."""
    descriptor, path = tempfile.mkstemp(prefix="setwise-stage-", suffix=".tsv")
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8", newline="") as file:
            staged = LoadDataFile(file)
            yield staged
        if staged.rows:
            _load(connection, table, path, staged.rows)
    finally:
        os.unlink(path)


class LoadDataFile:
    """Batches as LOAD DATA's tab-separated text, in one file."""

    def __init__(self, file: TextIO) -> None:
        self.file = file
        self.rows = 0

    def write(self, columns: Sequence[Sequence[Any]]) -> bool:
        """Add a batch (one sequence of values per column of the table); False (nothing
        written) when a value is not one this path writes exactly."""
        text = MYSQL.block(columns)
        if text is None:
            return False
        self.file.write(text)
        self.rows += len(columns[0]) if columns else 0
        return True


def _load(connection: Connection, table: Table, path: str, count: int) -> None:
    # The path is setwise's own temporary file; its quote-free name is checked here.
    if "'" in path or "\\" in path:
        raise StagingError(table.name, path=path)
    preparer = connection.dialect.identifier_preparer
    names = ", ".join(preparer.quote(column.name) for column in table.columns)
    statement = (
        f"LOAD DATA LOCAL INFILE '{path}' INTO TABLE {preparer.format_table(table)} "
        f"CHARACTER SET utf8mb4 ({names})"
    )
    cursor: Any = call(connection, "cursor")
    try:
        # aiomysql reads the server's warnings itself and tells them as Python warnings;
        # PyMySQL and mysqlclient count them (cursor.warning_count), to be asked for.
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            loaded = awaited(connection, cursor.execute(statement))
        said = [str(warning.message) for warning in caught]
        if getattr(cursor, "warning_count", 0):
            said += [str(w[2]) for w in cursor.connection.show_warnings()]
    finally:
        awaited(connection, cursor.close())
    if loaded != count or said:
        raise StagingError(table.name, path=path, staged=loaded, expected=count, warnings=said)
