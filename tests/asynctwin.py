"""Behaviour tests run again through ``setwise.asyncio``, on each backend's asyncio drivers.

A test marked ``@pytest.mark.async_twin`` runs on every backend as usual and once more
per asyncio driver of that backend (``backends.ASYNC_DRIVERS``: ``sqlite-aiosqlite``,
``postgresql-psycopg_async``, ``postgresql-asyncpg``, ``mariadb-aiomysql``). There the
test's whole run (fixtures, body, teardown) happens in a greenlet on an event loop,
as SQLAlchemy's asyncio extension runs sync code, so its ``engine`` (the
``sync_engine`` of an AsyncEngine), Sessions and Connections work as written; and
each public function of ``setwise`` the test calls is its ``setwise.asyncio`` twin,
given the AsyncEngine, AsyncConnection or AsyncSession over the test's bind and
awaited. The test body is the same: one behaviour, checked both ways.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import Connection, Engine
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_session
from sqlalchemy.orm import Session
from sqlalchemy.util import await_only, greenlet_spawn

import setwise
import setwise.asyncio

#: The coroutines of setwise.asyncio that stand in for setwise's functions.
TWINS = (
    *("update", "apply", "delete", "patch", "plan", "revert", "runs", "run_details", "init"),
    *("abandon", "pause", "continue_", "stop", "tune", "run_control"),
)


def as_async(bind: Any) -> Any:
    """The asyncio face of a sync Engine, Connection or Session on an asyncio driver."""
    if isinstance(bind, Session):
        found = async_session(bind)
        return found if found is not None else AsyncSession(sync_session_class=lambda **_: bind)
    if isinstance(bind, Connection):
        return AsyncConnection(AsyncEngine(bind.engine), bind)
    if isinstance(bind, Engine):
        return AsyncEngine(bind)
    return bind


def on_async_driver(bind: Any) -> bool:
    engine = bind.get_bind() if isinstance(bind, Session) else bind
    return isinstance(engine, Engine | Connection) and bool(engine.dialect.is_async)


def twin(name: str) -> Callable[..., Any]:
    coroutine = getattr(setwise.asyncio, name)
    function = getattr(setwise, name)

    def call(bind: Any, *args: Any, **kwargs: Any) -> Any:
        if not on_async_driver(bind):  # a second database the test made, on a sync driver
            return function(bind, *args, **kwargs)
        return await_only(coroutine(as_async(bind), *args, **kwargs))

    call.__name__ = name
    return call


def watch_twin(bind: Any = None, *args: Any, **kwargs: Any) -> Any:
    return setwise.asyncio.watch(as_async(bind), *args, **kwargs)


def use_twins(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make setwise's public functions their setwise.asyncio twins for one test."""
    for name in TWINS:
        monkeypatch.setattr(setwise, name, twin(name))
    monkeypatch.setattr(setwise, "watch", watch_twin)


def run_in_greenlet(function: Callable[[], Any]) -> Any:
    """``function()`` in a greenlet on a new event loop, as AsyncConnection.run_sync runs
    sync code: an asyncio driver's calls inside it are awaited on that loop."""

    async def main() -> Any:
        return await greenlet_spawn(function)

    return asyncio.run(main())
