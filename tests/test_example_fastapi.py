"""The example service (examples/fastapi_patch) over HTTP, on real databases.

Each test runs the app through httpx's ``AsyncClient`` (ASGI, no server) with its
lifespan, on a fresh database of each selected backend, through each of that backend's
asyncio drivers: ``sqlite-aiosqlite``, ``postgresql-psycopg_async``,
``postgresql-asyncpg``, ``mariadb-aiomysql`` (``backends.ASYNC_DRIVERS``). What the
service stored is read back through the backend's sync driver, on a connection of its own.

They are async tests, as FastAPI's documentation writes them (anyio's pytest plugin, an
``AsyncClient`` over ``ASGITransport``), rather than ``async_twin`` tests: that harness
runs a sync test body in a greenlet on an event loop of its own, to run setwise's sync
behaviour tests through ``setwise.asyncio``.
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
from sqlalchemy import Engine, insert, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine

import setwise
from tests import backends
from tests.conftest import backend_available, on_server

pytestmark = pytest.mark.anyio

#: How each PostgreSQL driver is told the test's schema (libpq options; asyncpg's own).
SEARCH_PATH = {
    "psycopg_async": lambda schema: {"options": f"-csearch_path={schema}"},
    "asyncpg": lambda schema: {"server_settings": {"search_path": schema}},
}

RUN_ID = re.compile(r"\d{8}-\d{6}-[0-9a-f]{8}")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "service" in metafunc.fixturenames:
        pairs = [
            pytest.param((name, driver), id=f"{name}-{driver}", marks=on_server(name))
            for name in backends.selected()
            for driver in backends.ASYNC_DRIVERS.get(name, ())
        ]
        metafunc.parametrize("service", pairs)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def database(service: tuple[str, str], tmp_path: Path) -> Iterator[Engine]:
    """A fresh database of the service's backend, as a sync engine to check it through."""
    name = service[0]
    backend_available(name)
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
    async with asyncio.timeout(60):  # a request lost before the barrier: fail, not hang
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


async def test_unknown_book_is_404_and_nothing_is_written(
    client: httpx.AsyncClient, database: Engine
) -> None:
    book_id = await add_book(client)
    before = stored(database)
    response = await client.patch(
        f"/books/{book_id + 1}", json={"price": 5.25}, headers={"If-Match": '"1"'}
    )
    assert response.status_code == 404
    assert response.json() == {"detail": f"no book {book_id + 1}"}
    assert stored(database) == before


async def test_bad_values_are_422_naming_each_field_value_and_reason(
    client: httpx.AsyncClient, database: Engine
) -> None:
    book_id = await add_book(client)
    before = stored(database)
    changes = {"title": "x" * 201, "stock": "many", "pirce": 5.25}
    response = await client.patch(f"/books/{book_id}", json=changes, headers={"If-Match": '"1"'})
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert detail["total"] == 3
    problems = {problem["field"]: problem for problem in detail["problems"]}
    assert problems["title"]["value"] == "x" * 201
    assert problems["title"]["reason"] == "201 characters, longer than the column's 200"
    assert problems["stock"]["value"] == "many"
    assert "integer" in problems["stock"]["reason"]
    assert problems["pirce"]["reason"] == "no such field; did you mean 'price'?"
    assert stored(database) == before


async def test_if_match_is_required_checked_and_answered(
    client: httpx.AsyncClient, database: Engine
) -> None:
    book_id = await add_book(client)
    path = f"/books/{book_id}"
    missing = await client.patch(path, json={"stock": 4})
    assert missing.status_code == 428
    assert "If-Match" in missing.json()["detail"]

    first = await client.patch(path, json={"stock": 4}, headers={"If-Match": '"1"'})
    assert (first.status_code, first.headers["ETag"]) == (200, '"2"')
    assert first.json() == {
        "id": book_id,
        "title": "Dune",
        "price": "9.99",
        "stock": 4,
        "version": 2,
    }
    stale = await client.patch(path, json={"stock": 5}, headers={"If-Match": '"1"'})
    assert (stale.status_code, stale.headers["ETag"]) == (412, '"2"')
    anyway = await client.patch(path, json={"price": 12.5}, headers={"If-Match": "*"})
    assert (anyway.status_code, anyway.headers["ETag"]) == (200, '"3"')

    assert stored(database) == [(book_id, "Dune", Decimal("12.50"), 4, 3)]
    fetched = await client.get(path)
    assert fetched.headers["ETag"] == '"3"'


# -- POST /admin/changesets, POST /admin/runs/{run_id}/revert ------------------------------


def seed_books(engine: Engine, count: int) -> None:
    rows = [
        {"id": i, "title": f"Book {i}", "price": Decimal(f"{i}.25"), "stock": i, "version": 1}
        for i in range(1, count + 1)
    ]
    with engine.begin() as connection:
        connection.execute(insert(Book), rows)


async def test_an_uploaded_csv_is_applied_in_chunks_then_reverted(
    client: httpx.AsyncClient, database: Engine
) -> None:
    seed_books(database, 30)
    before = stored(database)
    # Books 1-20 get a new price, book 21 the price it has; book 999 does not exist.
    lines = ["id,price"] + [f"{i},{i}.99" for i in range(1, 21)] + ["21,21.25", "999,1.00"]
    upload = {"file": ("prices.csv", "\n".join(lines) + "\n", "text/csv")}

    applied = await client.post("/admin/changesets", files=upload, params={"chunk_rows": 6})
    assert applied.status_code == 200, applied.text
    report = applied.json()
    assert RUN_ID.fullmatch(report["run_id"])
    counts = {k: report[k] for k in ("matched", "changed", "unchanged", "missing")}
    assert counts == {"matched": 21, "changed": 20, "unchanged": 1, "missing": 1}
    assert report["missing_keys"] == [999]
    assert report["chunks"] >= 4  # 22 keys, 6 a chunk
    expected = [
        (i, title, Decimal(f"{i}.99"), stock, 2) if i <= 20 else (i, title, price, stock, 1)
        for i, title, price, stock, _ in before
    ]
    assert stored(database) == expected

    reverted = await client.post(f"/admin/runs/{report['run_id']}/revert")
    assert reverted.status_code == 200, reverted.text
    assert reverted.json()["reverted"] == report["run_id"]
    assert reverted.json()["changed"] == 20
    assert stored(database) == before

    again = await client.post(f"/admin/runs/{report['run_id']}/revert")
    assert again.status_code == 409
    unknown = await client.post("/admin/runs/20000101-000000-00000000/revert")
    assert unknown.status_code == 404


async def test_a_csv_with_bad_values_is_422_by_row_and_column(
    client: httpx.AsyncClient, database: Engine
) -> None:
    seed_books(database, 3)
    before = stored(database)
    upload = {"file": ("prices.csv", "id,price,stock\n1,2.50,4\n2,cheap,5\n3,1.00,lots\n")}
    response = await client.post("/admin/changesets", files=upload)
    assert response.status_code == 422
    problems = response.json()["detail"]["problems"]
    # Rows are the file's lines, the header being line 1.
    assert [(p["row"], p["field"], p["value"]) for p in problems] == [
        (3, "price", "cheap"),
        (4, "stock", "lots"),
    ]
    assert stored(database) == before


@pytest.mark.parametrize("body", ["", "id,price\n"], ids=["empty", "header-only"])
async def test_a_csv_without_rows_is_422_not_a_run(
    client: httpx.AsyncClient, database: Engine, body: str
) -> None:
    seed_books(database, 2)
    before = stored(database)
    response = await client.post("/admin/changesets", files={"file": ("prices.csv", body)})
    assert response.status_code == 422, response.text
    assert response.json()["detail"] == {"message": "prices.csv holds no rows", "problems": []}
    assert stored(database) == before
    assert setwise.runs(database) == []


async def test_a_csv_row_read_at_an_old_version_is_a_conflict_not_written(
    client: httpx.AsyncClient, database: Engine
) -> None:
    seed_books(database, 2)
    moved = await client.patch("/books/2", json={"stock": 9}, headers={"If-Match": '"1"'})
    assert moved.status_code == 200
    before = stored(database)
    # Both rows were read at version 1; book 2 has moved on to version 2 since.
    upload = {"file": ("prices.csv", "id,price,version\n1,7.00,1\n2,8.00,1\n")}
    response = await client.post("/admin/changesets", files=upload)
    assert response.status_code == 200, response.text
    assert (response.json()["changed"], response.json()["conflicts"]) == (1, [2])
    assert stored(database) == [(1, "Book 1", Decimal("7.00"), 1, 2), before[1]]


def test_the_openapi_schema_shows_the_patch_body_and_if_match() -> None:
    """/docs can try every endpoint: the PATCH body, read by the endpoint itself, is in
    the schema, and so is the If-Match header."""
    spec = create_app().openapi()
    patch = spec["paths"]["/books/{book_id}"]["patch"]
    assert "application/json" in patch["requestBody"]["content"]
    assert [parameter["name"] for parameter in patch["parameters"]] == ["book_id", "if-match"]
    upload = spec["paths"]["/admin/changesets"]["post"]
    assert "multipart/form-data" in upload["requestBody"]["content"]
    assert "/admin/runs/{run_id}/revert" in spec["paths"]


async def test_a_revert_over_a_row_changed_since_is_409_and_writes_nothing(
    client: httpx.AsyncClient, database: Engine
) -> None:
    seed_books(database, 3)
    upload = {"file": ("prices.csv", "id,price\n1,7.00\n2,8.00\n")}
    run = (await client.post("/admin/changesets", files=upload)).json()
    edited = await client.patch("/books/2", json={"price": 9.5}, headers={"If-Match": '"2"'})
    assert edited.status_code == 200
    after_edit = stored(database)

    refused = await client.post(f"/admin/runs/{run['run_id']}/revert")
    assert refused.status_code == 409
    detail = refused.json()["detail"]
    assert "changed since the run wrote them" in detail["message"]
    assert detail["conflicts"] == [
        {"key": 2, "column": "price", "written": "8.00", "now": "9.50"},
        {"key": 2, "column": "version", "written": 2, "now": 3},
    ]
    assert stored(database) == after_edit
