"""What ``import setwise`` loads, read from ``sys.modules`` of a fresh interpreter.

``import setwise`` loads the errors; each other public name loads its module on first
use. Neither, nor a changeset applied on SQLite, loads the CLI's packages (Typer, Rich),
sqlglot, pyarrow, matplotlib or a driver: a program pays for those only when it uses them.
benchmarks/bench_import.py measures the time.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import setwise

OPTIONAL = {"rich", "typer", "sqlglot", "pyarrow", "matplotlib", "psycopg", "pymysql"}


def loaded_after(code: str, cwd: Path | None = None) -> set[str]:
    """The top-level packages a fresh interpreter has loaded after running ``code``."""
    report = "import json, sys; print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"
    done = subprocess.run(
        [sys.executable, "-c", f"{textwrap.dedent(code)}\n{report}"],
        capture_output=True,
        text=True,
        check=True,
        cwd=cwd,
        timeout=120,
    )
    return set(json.loads(done.stdout.splitlines()[-1]))


def test_import_setwise_loads_no_optional_package_and_not_the_cli() -> None:
    assert loaded_after("import setwise") & OPTIONAL == set()


def test_every_public_name_loads_without_an_optional_package() -> None:
    code = "import setwise\nfor name in setwise.__all__:\n    getattr(setwise, name)"
    assert loaded_after(code) & OPTIONAL == set()


def test_a_csv_changeset_applied_on_sqlite_loads_no_optional_package(tmp_path: Path) -> None:
    (tmp_path / "changes.csv").write_text("id,price\n1,9.50\n2,12.00\n")
    code = """
        from sqlalchemy import Column, Integer, MetaData, Numeric, Table, create_engine
        import setwise

        engine = create_engine("sqlite:///shop.db")
        books = Table(
            "books",
            MetaData(),
            Column("id", Integer, primary_key=True),
            Column("price", Numeric(10, 2)),
        )
        books.create(engine)
        with engine.begin() as connection:
            connection.execute(books.insert(), [{"id": 1, "price": 5}, {"id": 2, "price": 12}])
        report = setwise.apply(engine, "books", "changes.csv")
        assert (report.matched, report.changed) == (2, 1), report
    """
    assert loaded_after(code, cwd=tmp_path) & OPTIONAL == set()


def test_no_module_of_the_package_shadows_a_public_name() -> None:
    # Importing a module binds it on its package: a module named like a public function
    # (setwise.plan, once) would replace the function. No module of setwise is one.
    import pkgutil

    modules = {info.name for info in pkgutil.iter_modules(setwise.__path__)}
    assert modules & set(setwise.__all__) == set()
    code = """
        import setwise.api.plan, setwise.api.revert, setwise.detector.watch
        import setwise
        assert callable(setwise.plan) and setwise.plan.__name__ == "plan"
        assert callable(setwise.revert) and setwise.revert.__name__ == "revert"
        assert callable(setwise.watch) and setwise.watch.__name__ == "watch"
    """
    loaded_after(code)


def test_every_public_name_is_listed_and_reachable() -> None:
    assert set(setwise.__all__) <= set(dir(setwise))
    for name in setwise.__all__:
        assert getattr(setwise, name).__name__ == name


def test_an_unknown_name_is_an_attribute_error() -> None:
    try:
        setwise.no_such_name  # type: ignore[attr-defined]  # noqa: B018
    except AttributeError as exc:
        assert "no_such_name" in str(exc)
    else:
        raise AssertionError("setwise.no_such_name did not raise AttributeError")


def test_the_version_is_the_installed_distributions() -> None:
    from importlib.metadata import version

    assert setwise.__version__ == version("setwise")
