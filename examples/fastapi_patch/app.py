"""A small FastAPI service over ``setwise.asyncio``.

- ``PATCH /books/{id}``: a partial update with optimistic locking. The client sends
  the version it read as ``If-Match: "7"`` (the ETag of ``GET /books/{id}``) and gets
  the new ETag back; 412 if the version moved, 404 for an unknown book, 422 with every
  problem (field, value, reason), 428 without ``If-Match``.
- ``POST /admin/changesets``: a CSV file of corrections (multipart upload) applied as
  a chunked, journaled run; answers its run id and counts.
- ``POST /admin/runs/{run_id}/revert``: undo such a run.

The database is ``DATABASE_URL``, an asyncio URL (``sqlite+aiosqlite:///books.db``,
``postgresql+psycopg_async://...``, ``postgresql+asyncpg://...``,
``mysql+aiomysql://...``). Run it with ``uvicorn app:app`` (README.md).
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from http import HTTPStatus
from pathlib import Path
from typing import Annotated, Any

from fastapi import (
    APIRouter,
    Depends,
    FastAPI,
    Header,
    HTTPException,
    Query,
    Request,
    Response,
    UploadFile,
)
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Numeric, String
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

import setwise
import setwise.asyncio

DEFAULT_URL = "sqlite+aiosqlite:///books.db"


class Base(DeclarativeBase):
    pass


class Book(Base):
    __tablename__ = "books"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    price: Mapped[Decimal] = mapped_column(Numeric(10, 2))
    stock: Mapped[int] = mapped_column(default=0)
    version: Mapped[int] = mapped_column(default=1)

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012


class BookOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    title: str
    price: Decimal
    stock: int
    version: int


class NewBook(BaseModel):
    title: str = Field(max_length=200)
    price: Decimal = Field(max_digits=10, decimal_places=2)
    stock: int = 0


def create_app(engine: AsyncEngine | None = None) -> FastAPI:
    """The service on ``engine``, or on an engine of ``DATABASE_URL`` that it creates
    and disposes of itself; its lifespan creates the tables, setwise's journal too."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        own = engine or create_async_engine(os.environ.get("DATABASE_URL", DEFAULT_URL))
        async with own.begin() as connection:
            await connection.run_sync(Base.metadata.create_all)
        await setwise.asyncio.init(own, Book)
        app.state.engine = own
        app.state.sessions = async_sessionmaker(own, expire_on_commit=False)
        try:
            yield
        finally:
            if engine is None:
                await own.dispose()

    app = FastAPI(title="books", lifespan=lifespan)
    app.include_router(router)
    return app


# -- dependencies and helpers --------------------------------------------------------


def get_engine(request: Request) -> AsyncEngine:
    engine: AsyncEngine = request.app.state.engine
    return engine


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """A session per request; setwise begins and commits the patch's own transaction."""
    sessions: async_sessionmaker[AsyncSession] = request.app.state.sessions
    async with sessions() as session:
        yield session


EngineDep = Annotated[AsyncEngine, Depends(get_engine)]
SessionDep = Annotated[AsyncSession, Depends(get_session)]

#: A strong entity tag holding a version: "7" (If-Match takes no weak W/"7").
ETAG = re.compile(r'"(\d+)"')


def expected_version(if_match: Annotated[str | None, Header()] = None) -> int | None:
    """The version the client read, from ``If-Match``; ``*`` patches whatever is stored.
    No If-Match at all is 428: a blind PATCH could overwrite someone else's change."""
    if if_match is None:
        raise HTTPException(
            HTTPStatus.PRECONDITION_REQUIRED,
            'send If-Match with the ETag of GET /books/{id} (If-Match: "7"), '
            "or If-Match: * to patch whatever version is stored",
        )
    if if_match.strip() == "*":
        return None
    found = ETAG.fullmatch(if_match.strip())
    if found is None:
        raise HTTPException(HTTPStatus.BAD_REQUEST, f"If-Match {if_match!r} is not an ETag")
    return int(found.group(1))


async def json_changes(request: Request) -> dict[str, Any]:
    """The body: a JSON object of the fields to change. Numbers with a point are read
    as Decimal, exact for NUMERIC columns (setwise refuses a float there, as inexact)."""
    try:
        body = json.loads(await request.body(), parse_float=Decimal)
    except ValueError as error:
        raise HTTPException(HTTPStatus.BAD_REQUEST, f"the body is not JSON: {error}") from None
    if not isinstance(body, dict):
        raise HTTPException(HTTPStatus.BAD_REQUEST, "the body must be a JSON object of fields")
    return body


#: The PATCH body as the OpenAPI schema (and /docs) shows it; json_changes reads it.
CHANGES = {"type": "object", "example": {"price": 12.5, "stock": 4}}
CHANGES_BODY = {
    "requestBody": {"required": True, "content": {"application/json": {"schema": CHANGES}}}
}


def etag(version: object) -> dict[str, str]:
    return {"ETag": f'"{version}"'}


def unprocessable(error: setwise.ValidationError) -> HTTPException:
    """422 with every problem setwise found: the field, the value given and the reason
    (and the CSV row, for a changeset)."""
    listed = [
        {
            "field": problem.column,
            "value": _json(problem.value),
            "reason": problem.reason,
            "row": problem.row,
        }
        for problem in error.problems
    ]
    detail = {"message": str(error), "total": error.total, "problems": listed}
    return HTTPException(HTTPStatus.UNPROCESSABLE_ENTITY, detail)


def _json(value: object) -> object:
    """A value as JSON shows it: a Decimal, a date, ... as their text."""
    return value if value is None or isinstance(value, str | int | float | bool) else str(value)


# -- the endpoints ---------------------------------------------------------------------

router = APIRouter()


@router.post("/books", status_code=HTTPStatus.CREATED, response_model=BookOut)
async def add_book(new: NewBook, session: SessionDep, response: Response) -> Book:
    book = Book(**new.model_dump())
    session.add(book)
    await session.commit()
    response.headers.update(etag(book.version))
    return book


@router.get("/books/{book_id}", response_model=BookOut)
async def get_book(book_id: int, session: SessionDep, response: Response) -> Book:
    book = await session.get(Book, book_id)
    if book is None:
        raise HTTPException(HTTPStatus.NOT_FOUND, f"no book {book_id}")
    response.headers.update(etag(book.version))
    return book


@router.patch("/books/{book_id}", response_model=BookOut, openapi_extra=CHANGES_BODY)
async def patch_book(
    book_id: int,
    changes: Annotated[dict[str, Any], Depends(json_changes)],
    version: Annotated[int | None, Depends(expected_version)],
    session: SessionDep,
    response: Response,
) -> Book:
    try:
        book = await setwise.asyncio.patch(
            session, Book, book_id, changes, expected_version=version
        )
    except setwise.NotFoundError:
        raise HTTPException(HTTPStatus.NOT_FOUND, f"no book {book_id}") from None
    except setwise.ConflictError as error:
        detail = {"message": str(error), "version": error.current_version}
        moved = etag(error.current_version)
        raise HTTPException(HTTPStatus.PRECONDITION_FAILED, detail, moved) from None
    except setwise.ValidationError as error:
        raise unprocessable(error) from None
    response.headers.update(etag(book.version))
    return book


@router.post("/admin/changesets")
async def apply_changeset(
    file: UploadFile, engine: EngineDep, chunk_rows: Annotated[int, Query(ge=1)] = 1000
) -> dict[str, Any]:
    """Apply a CSV of corrections keyed by ``id``, chunk by chunk, each chunk in a
    transaction of its own, journaled. A ``version`` column, if the file has one, holds
    the version each row was read at: a row whose version moved is skipped and listed
    in ``conflicts``. A file with no rows is 422: there is no run to report or revert."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "changes.csv"
        with path.open("wb") as copy:
            while block := await file.read(1 << 20):
                copy.write(block)
        try:
            report = await setwise.asyncio.apply(engine, Book, path, chunk_rows=chunk_rows)
        except setwise.ValidationError as error:
            raise unprocessable(error) from None
    if report.run_id is None:  # setwise starts no run for a changeset of no rows
        detail = {"message": f"{file.filename or 'the file'} holds no rows", "problems": []}
        raise HTTPException(HTTPStatus.UNPROCESSABLE_ENTITY, detail)
    return {
        "run_id": report.run_id,
        "matched": report.matched,
        "changed": report.changed,
        "unchanged": report.unchanged,
        "missing": report.missing,
        "missing_keys": list(report.missing_keys),
        "conflicts": list(report.conflicts),
        "chunks": report.chunks,
    }


@router.post("/admin/runs/{run_id}/revert")
async def revert_run(run_id: str, engine: EngineDep) -> dict[str, Any]:
    """Put back what run ``run_id`` overwrote; 409 if rows changed since, or the run
    was reverted already."""
    try:
        report = await setwise.asyncio.revert(engine, run_id)
    except setwise.NotFoundError:
        raise HTTPException(HTTPStatus.NOT_FOUND, f"no run {run_id}") from None
    except setwise.ConflictError as error:
        changed = [
            {"key": c.key, "column": c.column, "written": _json(c.written), "now": _json(c.now)}
            for c in error.conflicts
        ]
        detail = {"message": str(error), "total": error.total, "conflicts": changed}
        raise HTTPException(HTTPStatus.CONFLICT, detail) from None
    except setwise.RunStateError as error:
        raise HTTPException(HTTPStatus.CONFLICT, str(error)) from None
    return {"run_id": report.run_id, "reverted": run_id, "changed": report.changed}


app = create_app()
