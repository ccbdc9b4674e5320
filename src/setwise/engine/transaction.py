"""One context manager owns every transaction setwise opens.

The rule, for every public call that writes:

- given an ``Engine``, setwise opens a connection and a transaction, and commits it;
- given a ``Session`` or ``Connection`` with no transaction open and nothing pending,
  setwise begins a transaction and commits it, so no change is left waiting for a
  commit that never comes;
- given a ``Session`` or ``Connection`` already in a transaction (or a Session with
  pending changes), setwise works inside a SAVEPOINT: on success the savepoint is
  released and the caller still decides whether to commit; on failure only setwise's
  own work is rolled back and the caller's transaction stays usable.

Any exception, KeyboardInterrupt included, rolls back what setwise began.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import Connection, Engine
from sqlalchemy.orm import Session

from setwise.dialects import Strategy, get_strategy
from setwise.errors import InvalidArgumentError

Bind = Session | Engine | Connection


@dataclass(frozen=True)
class Scope:
    """The connection to run statements on, and the Session to keep in sync, if any."""

    connection: Connection
    session: Session | None
    strategy: Strategy
    owns_transaction: bool


def engine_of(bind: Bind) -> Engine:
    """The Engine behind ``bind``."""
    if isinstance(bind, Session):
        engine = bind.get_bind()
        if not isinstance(engine, Engine):
            engine = engine.engine
        return engine
    return bind if isinstance(bind, Engine) else bind.engine


def dialect_of(bind: Bind) -> Strategy:
    """The strategy for the database behind ``bind``, without opening a transaction."""
    if isinstance(bind, Session):
        engine = bind.get_bind()
        return get_strategy(engine.dialect)
    return get_strategy(bind.dialect)


@contextmanager
def atomic(bind: Bind, strategy: Strategy | None = None) -> Iterator[Scope]:
    """Run the block in a transaction of its own, or a savepoint in the caller's.
    ``strategy``: the bind's, when the caller has it."""
    if strategy is None:
        strategy = dialect_of(bind)
    if isinstance(bind, Engine):
        with bind.connect() as connection, connection.begin():
            yield Scope(connection, None, strategy, owns_transaction=True)
    elif isinstance(bind, Connection):
        if bind.in_transaction():
            strategy.prepare_savepoint(bind)
            with bind.begin_nested():
                yield Scope(bind, None, strategy, owns_transaction=False)
        else:
            with bind.begin():
                yield Scope(bind, None, strategy, owns_transaction=True)
    elif _caller_has_work(bind):
        bind.flush()
        strategy.prepare_savepoint(bind.connection())
        with bind.begin_nested():
            # The Session emits SAVEPOINT only when the nested transaction first asks
            # for its connection: ask now, and run everything on that connection.
            yield Scope(bind.connection(), bind, strategy, owns_transaction=False)
    else:
        with bind.begin():
            yield Scope(bind.connection(), bind, strategy, owns_transaction=True)


@contextmanager
def peek(bind: Bind) -> Iterator[Scope]:
    """Run reads that must leave no trace (a plan): whatever the block did is rolled
    back, and a caller's transaction is left exactly as it was."""
    if isinstance(bind, Session) and not _caller_has_work(bind):
        # Nothing pending: the committed state is what the caller sees, so read it on a
        # connection of our own and leave the Session (and its loaded objects) alone.
        bind = bind.get_bind()
    strategy = dialect_of(bind)
    if isinstance(bind, Engine):
        with bind.connect() as connection:  # closing it rolls back
            yield Scope(connection, None, strategy, owns_transaction=True)
        return
    if isinstance(bind, Connection) and not bind.in_transaction():
        transaction = bind.begin()
        try:
            yield Scope(bind, None, strategy, owns_transaction=True)
        finally:
            transaction.rollback()
        return
    if isinstance(bind, Session):
        bind.flush()  # as any query of the Session would: reads see its pending changes
        connection = bind.connection()
    else:
        connection = bind
    strategy.prepare_savepoint(connection)
    savepoint = connection.begin_nested()
    try:
        yield Scope(connection, None, strategy, owns_transaction=False)
    finally:
        savepoint.rollback()


@contextmanager
def owned_connection(bind: Bind) -> Iterator[tuple[Connection, Session | None]]:
    """A connection outside any transaction, that setwise may commit on chunk by chunk.

    Refused when the caller has a transaction open: committing chunks inside it would
    commit the caller's own work behind its back.
    """
    if isinstance(bind, Engine):
        with bind.connect() as connection:
            yield connection, None
        return
    if isinstance(bind, Connection):
        if bind.in_transaction():
            raise InvalidArgumentError(_CHUNKED_INSIDE, argument="chunk_rows")
        yield bind, None
        return
    if _caller_has_work(bind):
        raise InvalidArgumentError(_CHUNKED_INSIDE, argument="chunk_rows")
    engine = bind.get_bind()
    with engine.connect() as connection:  # type: ignore[union-attr]
        yield connection, bind


_CHUNKED_INSIDE = (
    "a chunked run commits chunk by chunk, so it cannot run inside your open transaction: "
    "pass an Engine, or commit first; or leave chunk_rows unset to run in one transaction"
)


@contextmanager
def reading_connection(bind: Bind) -> Iterator[Connection]:
    """A connection to read the schema or the journal on, leaving the caller's transaction
    state as it was: an idle Session or Connection stays idle."""
    if isinstance(bind, Engine) or (isinstance(bind, Session) and not _caller_has_work(bind)):
        engine = bind if isinstance(bind, Engine) else bind.get_bind()
        with engine.connect() as connection:  # type: ignore[union-attr]
            yield connection
        return
    if isinstance(bind, Session):
        yield bind.connection()
        return
    was_idle = not bind.in_transaction()
    try:
        yield bind
    finally:
        if was_idle and bind.in_transaction():
            bind.rollback()


def _caller_has_work(session: Session) -> bool:
    return session.in_transaction() or bool(session.new or session.dirty or session.deleted)
