"""setwise for asyncio programs: the public functions as coroutines.

    import setwise.asyncio

    report = await setwise.asyncio.update(async_session, stmt)
    book = await setwise.asyncio.patch(async_session, Book, 42, {"price": price})

Each coroutine takes the arguments of the function of the same name in ``setwise``,
raises the same errors and returns the same report; ``bind`` is an ``AsyncEngine``,
an ``AsyncConnection`` or an ``AsyncSession``, under the transaction rule of the sync
functions (``setwise.engine.transaction``) for the ``Engine``, ``Connection`` or
``Session`` behind it. There is one implementation: the sync one, run the way
SQLAlchemy's asyncio extension runs its own ORM, in a greenlet whose driver calls are
awaited on the event loop (``AsyncConnection.run_sync``, ``AsyncSession.run_sync``,
and ``greenlet_spawn`` for an ``AsyncEngine``, whose ``sync_engine`` setwise then uses
as it uses any Engine: a connection of its own per transaction it owns).

Drivers, tested: ``sqlite+aiosqlite``, ``postgresql+psycopg_async`` and
``postgresql+asyncpg`` (both reach COPY: psycopg's async ``copy``, asyncpg's
``copy_records_to_table``), and ``mysql+aiomysql`` / ``mariadb+aiomysql``: aiomysql is
PyMySQL's asyncio twin, built on its protocol code, so values are escaped, and
MariaDB's matched-rows counts and LOAD DATA LOCAL behave, exactly as on the
``pymysql`` driver setwise already supports (asyncmy is a separate rewrite in Cython).

Session: objects loaded in the ``AsyncSession`` get the values a run wrote, set on
them rather than expired (an expired attribute would load lazily, which async code
cannot: ``MissingGreenlet``); a transaction setwise commits for the session does not
expire the other objects either.

Cancellation (a task cancelled, a request's timeout) stops a chunked run as Ctrl-C
does: the chunk in progress is rolled back whole, the run is marked ``interrupted``
in the journal and resumes with ``resume=run_id``. The caller gets
``setwise.RunCancelled``, an ``asyncio.CancelledError`` that carries the ``run_id``;
``await setwise.asyncio.runs(bind, status="interrupted")`` lists such runs too.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Mapping
from functools import partial, update_wrapper
from types import TracebackType
from typing import Any, Concatenate, ParamSpec, TypeVar

from sqlalchemy import Connection, Engine
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession
from sqlalchemy.orm import Session
from sqlalchemy.util import greenlet_spawn

from setwise.api.apply import apply as _apply
from setwise.api.control import continue_ as _continue
from setwise.api.control import pause as _pause
from setwise.api.control import run_control as _run_control
from setwise.api.control import stop as _stop
from setwise.api.control import tune as _tune
from setwise.api.delete import delete as _delete
from setwise.api.patch import Model, Validator
from setwise.api.patch import patch as _patch
from setwise.api.plan import plan as _plan
from setwise.api.revert import revert as _revert
from setwise.api.runs import abandon as _abandon
from setwise.api.runs import init as _init
from setwise.api.runs import run_details as _run_details
from setwise.api.runs import runs as _runs
from setwise.api.update import update as _update
from setwise.detector.watch import DEFAULT_THRESHOLD, Watch
from setwise.engine.transaction import Bind

AsyncBind = AsyncEngine | AsyncConnection | AsyncSession
"""What the coroutines take where the sync functions take an Engine, Connection or Session."""

P = ParamSpec("P")
R = TypeVar("R")


async def run_sync(
    bind: AsyncBind, function: Callable[Concatenate[Any, P], R], *args: P.args, **kwargs: P.kwargs
) -> R:
    """``function(sync_bind, *args, **kwargs)`` in a greenlet, for the sync face of
    ``bind``; its driver calls are awaited on the running event loop."""
    if isinstance(bind, AsyncSession):
        return await bind.run_sync(_keeping_loaded, function, *args, **kwargs)
    if isinstance(bind, AsyncConnection):
        return await bind.run_sync(function, *args, **kwargs)
    if isinstance(bind, AsyncEngine):
        return await greenlet_spawn(partial(function, bind.sync_engine, *args, **kwargs))
    raise TypeError(
        f"setwise.asyncio takes an AsyncEngine, AsyncConnection or AsyncSession, got "
        f"{type(bind).__name__}: with a sync bind, call setwise.{function.__name__} itself"
    )


def _keeping_loaded(
    session: Session, function: Callable[..., R], /, *args: Any, **kwargs: Any
) -> R:
    """``function`` on ``session`` with its objects never expired by a commit of
    setwise's: their attributes could only load again with an await."""
    expire_on_commit = session.expire_on_commit
    session.expire_on_commit = False
    try:
        return function(session, *args, **kwargs)
    finally:
        session.expire_on_commit = expire_on_commit


def _coroutine(
    function: Callable[Concatenate[Bind, P], R],
) -> Callable[Concatenate[AsyncBind, P], Coroutine[Any, Any, R]]:
    """The coroutine twin of the sync ``function`` whose first argument is the bind."""

    async def twin(bind: AsyncBind, /, *args: P.args, **kwargs: P.kwargs) -> R:
        return await run_sync(bind, function, *args, **kwargs)

    update_wrapper(twin, function)  # its name, and the signature help() shows
    twin.__doc__ = (
        f"``setwise.{function.__name__}`` as a coroutine, on an AsyncEngine, "
        f"AsyncConnection or AsyncSession.\n\n{function.__doc__ or ''}"
    )
    return twin


update = _coroutine(_update)
apply = _coroutine(_apply)
delete = _coroutine(_delete)
plan = _coroutine(_plan)
revert = _coroutine(_revert)
runs = _coroutine(_runs)
run_details = _coroutine(_run_details)
init = _coroutine(_init)
abandon = _coroutine(_abandon)
pause = _coroutine(_pause)
continue_ = _coroutine(_continue)
stop = _coroutine(_stop)
tune = _coroutine(_tune)
run_control = _coroutine(_run_control)


async def patch(
    session: AsyncSession,
    model: type[Model],
    key: Any,
    changes: Mapping[str, Any],
    *,
    expected_version: Any = None,
    validate: Validator | None = None,
    version_column: str | None = None,
) -> Model:
    """``setwise.patch`` as a coroutine, on an AsyncSession: the object it returns is
    loaded with the values stored (no attribute of it needs an await)."""
    return await run_sync(
        session,
        _patch,
        model,
        key,
        changes,
        expected_version=expected_version,
        validate=validate,
        version_column=version_column,
    )


def watch(
    bind: AsyncBind | None = None, threshold: int = DEFAULT_THRESHOLD, *, log: bool = True
) -> AsyncWatch:
    """``setwise.watch`` on the engine behind an AsyncEngine, AsyncConnection or
    AsyncSession (every engine when None), used as ``async with``: its end may reflect
    a table's keys (for a loop of text statements), which takes the database.
    ``with`` works too, where nothing needs reflecting."""
    if threshold < 1:
        raise ValueError(f"threshold must be at least 1, got {threshold}")
    target: Engine | Connection | type[Engine]
    if bind is None:
        target = Engine
    elif isinstance(bind, AsyncSession):
        target = bind.sync_session.get_bind()
    elif isinstance(bind, AsyncConnection):
        target = bind.sync_connection or bind.sync_engine
    else:
        target = bind.sync_engine
    return AsyncWatch(target, threshold, log=log)


class AsyncWatch(Watch):
    """A ``Watch`` that is also an asynchronous context manager."""

    async def __aenter__(self) -> AsyncWatch:
        self.__enter__()
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await greenlet_spawn(self.__exit__, kind, error, traceback)


__all__ = [
    "AsyncBind",
    "AsyncWatch",
    "abandon",
    "apply",
    "continue_",
    "delete",
    "init",
    "patch",
    "pause",
    "plan",
    "revert",
    "run_control",
    "run_details",
    "run_sync",
    "runs",
    "stop",
    "tune",
    "update",
    "watch",
]
