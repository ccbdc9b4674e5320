"""Optional dependencies: a missing one is named with the extra that installs it.

The packages the extras bring are installed here (``make test`` installs ``.[all,dev]``),
so these tests use packages that are really absent: a made-up module, a broken package
written to a temporary folder, drivers setwise brings no extra for (psycopg2, pyodbc),
and mysqlclient's MySQLdb hidden from the import system. ``make check-dist`` checks the
real extras against a wheel installed without them.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

from setwise import MissingExtraError
from setwise.extras import engine_for, require
from tests.test_cli import setwise as setwise_cli

ABSENT = "setwise_no_such_package"


def absent(module: str) -> None:
    """Skip unless ``module`` is really not installed (the test relies on it)."""
    if importlib.util.find_spec(module) is not None:
        pytest.skip(f"{module} is installed here")


def test_require_returns_the_module_when_it_is_installed() -> None:
    assert require("json", extra="parquet", feature="reading JSON") is json


def test_require_names_the_extra_when_the_module_is_missing() -> None:
    with pytest.raises(MissingExtraError) as caught:
        require(ABSENT, extra="parquet", feature="reading Parquet files")
    error = caught.value
    assert (error.module, error.extra, error.feature) == (
        ABSENT,
        "parquet",
        "reading Parquet files",
    )
    assert str(error) == (
        f"reading Parquet files needs {ABSENT}, which is not installed. "
        "Install it with: pip install 'setwise[parquet]'"
    )
    assert isinstance(error, ImportError), "a program's `except ImportError` still catches it"


def test_require_names_the_extra_when_the_parent_package_is_missing() -> None:
    with pytest.raises(MissingExtraError) as caught:
        require(f"{ABSENT}.pyplot", extra="chart", feature="the bench chart")
    assert caught.value.extra == "chart"
    assert "pip install 'setwise[chart]'" in str(caught.value)


def test_require_lets_a_broken_package_report_what_it_lacks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Installed, but one of its own dependencies is gone: installing the extra again
    # would not be the fix, so the real error comes through.
    package = tmp_path / "setwise_broken_package"
    package.mkdir()
    (package / "__init__.py").write_text(f"import {ABSENT}_dependency\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ModuleNotFoundError) as caught:
        require("setwise_broken_package", extra="parquet", feature="reading Parquet files")
    assert not isinstance(caught.value, MissingExtraError)
    assert caught.value.name == f"{ABSENT}_dependency"


def test_engine_for_builds_the_engine_when_its_driver_is_installed() -> None:
    engine = engine_for("sqlite://")
    try:
        assert engine.dialect.name == "sqlite"
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    ("url", "driver", "extra", "prefix"),
    [
        (
            "postgresql+psycopg2://u@127.0.0.1/test",
            "psycopg2",
            "postgresql",
            "postgresql+psycopg://",
        ),
    ],
    ids=["pg-psycopg2"],  # not a backend's name: see conftest
)
def test_engine_for_points_from_a_missing_driver_to_the_extra_and_its_url(
    url: str, driver: str, extra: str, prefix: str
) -> None:
    absent(driver)
    with pytest.raises(MissingExtraError) as caught:
        engine_for(url)
    assert caught.value.extra == extra
    assert caught.value.module == driver
    assert f"pip install 'setwise[{extra}]'" in str(caught.value)
    assert f"use a {prefix} URL, or install {driver} yourself" in str(caught.value)


@pytest.mark.parametrize("url", ["mysql://u@127.0.0.1/test", "mariadb+mysqldb://u@127.0.0.1/test"])
def test_a_missing_mysqlclient_names_its_extra(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # None in sys.modules: importing MySQLdb fails as when it is not installed.
    monkeypatch.setitem(sys.modules, "MySQLdb", None)
    with pytest.raises(MissingExtraError) as caught:
        engine_for(url)
    assert (caught.value.extra, caught.value.module) == ("mysqlclient", "MySQLdb")
    assert "pip install 'setwise[mysqlclient]'" in str(caught.value)


def test_engine_for_leaves_a_database_without_an_extra_to_sqlalchemy() -> None:
    absent("pyodbc")
    with pytest.raises(ModuleNotFoundError) as caught:
        engine_for("mssql+pyodbc://u@dsn")
    assert not isinstance(caught.value, MissingExtraError)
    assert caught.value.name == "pyodbc"


def test_the_cli_names_the_extra_for_a_database_url_whose_driver_is_missing() -> None:
    absent("psycopg2")
    done = setwise_cli(
        "plan",
        "books",
        "--all-rows",
        "--set",
        "stock = 1",
        "--db",
        "postgresql+psycopg2://u@127.0.0.1/test",
    )
    assert done.returncode == 1, done.stderr
    assert "pip install 'setwise[postgresql]'" in done.stderr
    assert "Traceback" not in done.stderr


def test_bench_draws_no_chart_unless_asked(tmp_path: Path) -> None:
    # Without --chart, bench needs no matplotlib (the chart extra) and writes no file.
    done = setwise_cli(
        "bench", "--rows", "200", "--db", f"sqlite:///{tmp_path / 'bench.db'}", cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    assert "setwise.apply" in done.stdout
    assert "Chart:" not in done.stdout
    assert sorted(path.name for path in tmp_path.iterdir()) == ["bench.db"]
