"""The example service (examples/fastapi_patch) over HTTP, on real databases.

Each test runs the app through httpx's ``AsyncClient`` (ASGI, no server) with its
lifespan, on a fresh database of each selected backend, through each of that backend's
asyncio drivers: ``sqlite-aiosqlite``, ``postgresql-psycopg_async``,
``postgresql-asyncpg``, ``mariadb-aiomysql``. What the service stored is read back
through the backend's sync driver, on a connection of its own.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from examples.fastapi_patch.app import Book, create_app, get_session
from fastapi import FastAPI, Request
from sqlalchemy import Engine, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine

from tests import backends

pytestmark = pytest.mark.anyio

#: The asyncio drivers of each backend the service runs on here.
DRIVERS = {
    "sqlite": ("aiosqlite",),
    "postgresql": ("psycopg_async", "asyncpg"),
    "mariadb": ("aiomysql",),
}

#: How each PostgreSQL driver is told the test's schema (libpq options; asyncpg's own).
SEARCH_PATH = {
    "psycopg_async": lambda schema: {"options": f"-csearch_path={schema}"},
    "asyncpg": lambda schema: {"server_settings": {"search_path": schema}},
}

RUN_ID = re.compile(r"\d{8}-\d{6}-[0-9a-f]{8}")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "service" in metafunc.fixturenames:
        pairs = [
            pytest.param((name, driver), id=f"{name}-{driver}")
            for name in backends.selected()
            for driver in DRIVERS.get(name, ())
        ]
        metafunc.parametrize("service", pairs)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def database(service: tuple[str, str], tmp_path: Path) -> Iterator[Engine]:
    """A fresh database of the service's backend, as a sync engine to check it through."""
    name = service[0]
    found = backends.availability(name)
    if not found.ok:
        message = f"{name} server not available: {found.detail}"
        if backends.in_ci():
            pytest.fail(f"{message} (CI=true requires every backend)", pytrace=False)
        pytest.skip(message)
    with backends.fresh_database(name, tmp_path) as engine:
        yield engine


def on_driver(engine: Engine, driver: str) -> AsyncEngine:
    """An AsyncEngine on ``engine``'s database (and schema) through asyncio ``driver``."""
    url = engine.url.set(drivername=f"{engine.url.get_backend_name()}+{driver}")
    connect_args: dict[str, Any] = {}
    if driver in SEARCH_PATH:
        with engine.connect() as connection:
            schema = connection.execute(text("SELECT current_schema()")).scalar_one()
        connect_args = SEARCH_PATH[driver](schema)
    return create_async_engine(url, connect_args=connect_args)


@pytest.fixture
async def service_engine(service: tuple[str, str], database: Engine) -> AsyncIterator[AsyncEngine]:
    engine = on_driver(database, service[1])
    try:
        yield engine
    finally:
        await engine.dispose()


@pytest.fixture
def app(service_engine: AsyncEngine) -> FastAPI:
    return create_app(service_engine)


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the service, started (its lifespan creates the tables)."""
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://books.test") as client,
    ):
        yield client


def stored(engine: Engine) -> list[tuple[Any, ...]]:
    """Every book as the database holds it, in id order."""
    with engine.connect() as connection:
        return [tuple(row) for row in connection.execute(select(Book.__table__).order_by("id"))]


async def add_book(client: httpx.AsyncClient, title: str = "Dune", price: str = "9.99") -> int:
    response = await client.post("/books", json={"title": title, "price": price, "stock": 3})
    assert response.status_code == 201, response.text
    assert response.headers["ETag"] == '"1"'
    book_id: int = response.json()["id"]
    return book_id


# -- PATCH /books/{id} ---------------------------------------------------------------------


async def test_ten_patches_with_one_if_match_one_wins_the_rest_get_412(
    app: FastAPI, client: httpx.AsyncClient, database: Engine
) -> None:
    book_id = await add_book(client)
    # Each request takes its session only once all ten have arrived: ten writers at
    # once, each sending the version it read. (SQLite lets one transaction write at a
    # time: the others wait for its lock, then find the version moved.)
    arrived = asyncio.Barrier(10)

    async def session_once_all_arrived(request: Request) -> AsyncIterator[AsyncSession]:
        await arrived.wait()
        async for session in get_session(request):
            yield session

    app.dependency_overrides[get_session] = session_once_all_arrived
    prices = [Decimal(f"{10 + i}.50") for i in range(10)]
    responses = await asyncio.gather(
        *(
            client.patch(
                f"/books/{book_id}", json={"price": float(price)}, headers={"If-Match": '"1"'}
            )
            for price in prices
        )
    )
    statuses = sorted(response.status_code for response in responses)
    assert statuses == [200] + [412] * 9, [response.text for response in responses]
    (won,) = [response for response in responses if response.status_code == 200]
    assert won.headers["ETag"] == '"2"'
    winner = Decimal(won.json()["price"])
    assert winner in prices
    for lost in (response for response in responses if response.status_code == 412):
        assert lost.headers["ETag"] == '"2"'
        assert lost.json()["detail"]["version"] == 2
    assert stored(database) == [(book_id, "Dune", winner, 3, 2)]
