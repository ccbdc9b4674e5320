"""Optional dependencies: each is imported where it is used, or named in an error.

``pip install setwise`` brings SQLAlchemy, sqlglot, Typer and Rich, which run every
command on SQLite with CSV and JSONL files. The rest comes with an extra:

    postgresql  psycopg 3            postgresql+psycopg:// URLs
    mysql       PyMySQL              mysql+pymysql:// and mariadb+pymysql:// URLs
    mysqlclient mysqlclient (C)      mysql:// and mariadb+mysqldb:// URLs (needs
                                     libmariadb-dev to build)
    parquet     pyarrow              Parquet files, Arrow tables and DataFrames as changes
    chart       matplotlib           ``setwise bench --chart``
    asyncio     greenlet and the     SQLAlchemy's asyncio engines
                async drivers
    all         every one above

A feature whose package is missing raises ``MissingExtraError``, which names the extra.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

from sqlalchemy import Engine, create_engine
from sqlalchemy.engine import URL, make_url

from setwise.errors import MissingExtraError

#: The extra that brings each driver module SQLAlchemy imports for a URL.
DRIVER_EXTRAS = {"psycopg": "postgresql", "pymysql": "mysql", "MySQLdb": "mysqlclient"}

#: The extra for a URL's database when its driver is not one an extra brings, with the
#: URL that uses that extra's driver.
BACKEND_EXTRAS = {
    "postgresql": ("postgresql", "postgresql+psycopg://"),
    "mysql": ("mysql", "mysql+pymysql://"),
    "mariadb": ("mysql", "mariadb+pymysql://"),
}


def require(module: str, *, extra: str, feature: str) -> ModuleType:
    """Import ``module`` (an optional dependency) for ``feature``, or raise
    ``MissingExtraError`` naming the ``extra`` that installs it."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if not _is_module_or_parent(exc.name, module):
            raise  # the package is there but broken: its own error says more
        raise MissingExtraError(module=module, extra=extra, feature=feature) from exc


def engine_for(url: str | URL, **options: Any) -> Engine:
    """``create_engine(url)``; a URL whose driver is not installed raises
    ``MissingExtraError`` naming the extra for that database."""
    try:
        return create_engine(url, **options)
    except ModuleNotFoundError as exc:
        missing = exc.name or ""
        backend = make_url(url).get_backend_name()
        feature = f"a {backend} database URL"
        extra = DRIVER_EXTRAS.get(missing.split(".")[0])
        if extra is not None:
            raise MissingExtraError(module=missing, extra=extra, feature=feature) from exc
        if backend not in BACKEND_EXTRAS:
            raise
        extra, prefix = BACKEND_EXTRAS[backend]
        raise MissingExtraError(
            module=missing,
            extra=extra,
            feature=feature,
            hint=f"and use a {prefix} URL, or install {missing} yourself.",
        ) from exc


def _is_module_or_parent(missing: str | None, module: str) -> bool:
    return missing is not None and (module == missing or module.startswith(f"{missing}."))
