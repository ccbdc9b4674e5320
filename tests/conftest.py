"""The ``backend`` and ``engine`` fixtures: every behaviour test runs on real databases."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
from _pytest.runner import runtestprotocol
from sqlalchemy import Engine

from tests import asynctwin, backends

#: Tests here run on no database at all (tests/unit/): no engine, no connection.
UNIT = Path(__file__).resolve().parent / "unit"

#: The backends whose tests share one server: their tests never run side by side.
SHARED_SERVERS = frozenset(backends.NAMES) - {"sqlite"}


def on_server(name: str) -> list[pytest.MarkDecorator]:
    """The marks of a test on backend ``name``: under pytest-xdist (``--dist loadgroup``)
    one worker runs every test of a server. Each test has a database of its own, but
    the health signals (running threads, long transactions, flow control) and the
    settings some tests change (``SET GLOBAL wsrep_max_ws_rows``) are the whole
    server's. A mark given with the parameter, not added later: xdist reads the group
    when it collects, before other hooks see the items."""
    return [pytest.mark.xdist_group(name)] if name in SHARED_SERVERS else []


#: The backends some collected test runs on: only those are asked for their version.
_USED: set[str] = set()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    _USED.clear()
    for item in items:
        callspec = getattr(item, "callspec", None)
        if callspec is not None and callspec.params.get("backend") in backends.NAMES:
            _USED.add(callspec.params["backend"])


def pytest_xdist_node_collection_finished(node: Any, ids: list[str]) -> None:
    """Under ``--dist loadgroup``, stop before any test runs unless pytest-xdist grouped
    the tests of each server (``on_server``). It groups by a suffix (``@mariadb``) it
    adds to ``item._nodeid``, which pytest 9.2's ``nodeid`` no longer reads: the tests
    of one server then ran on both workers, and one test's server settings broke
    another's."""
    if node.config.getoption("dist") != "loadgroup":
        return
    for nodeid in ids:
        shared = SHARED_SERVERS.intersection(backends_of(nodeid))
        if shared and not any(nodeid.endswith(f"@{name}") for name in shared):
            pytest.exit(
                f"pytest-xdist did not put {nodeid} in its server's group: this pytest"
                " and pytest-xdist do not group tests together (pyproject.toml pins pytest)",
                returncode=pytest.ExitCode.USAGE_ERROR,
            )


def used(nodeids: Iterable[str] = ()) -> list[str]:
    """The selected backends the collected tests run on, in the usual order; under
    pytest-xdist (whose controller collects nothing) those the ``nodeids`` name."""
    found = _USED | {name for nodeid in nodeids for name in backends_of(nodeid)}
    return [name for name in backends.selected() if name in found]


def backends_of(nodeid: str) -> list[str]:
    """The backends a test id names as a parameter of its own: ``[sqlite]``,
    ``[postgresql-asyncpg]``, ``[x-mariadb]``; not inside another value, such as a URL
    (``[mariadb+mysqldb://…]``)."""
    return [name for name in backends.NAMES if re.search(rf"[\[-]{name}[\]-]", nodeid)]


def pytest_report_collectionfinish(config: pytest.Config) -> list[str]:
    lines = []
    for name in used():
        found = backends.availability(name)
        state = found.detail if found.ok else f"NOT AVAILABLE ({found.detail})"
        lines.append(f"setwise backend {name}: {state}")
    if not used():
        lines.append("setwise: no collected test runs on a database")
    if backends.selected() != backends.NAMES:
        lines.append(f"SETWISE_TEST_BACKENDS: {', '.join(backends.selected())} only")
    if backends.in_ci():
        lines.append("CI=true: a backend that is not available fails the run")
    return lines


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "backend" in metafunc.fixturenames:
        if UNIT in metafunc.definition.path.parents:
            raise pytest.UsageError(
                f"{metafunc.definition.nodeid}: a unit test takes no database; "
                "move it out of tests/unit/"
            )
        marker = metafunc.definition.get_closest_marker("backends")
        names = marker.args if marker else backends.NAMES
        requires = [c for m in metafunc.definition.iter_markers("requires") for c in m.args]
        lacks = [c for m in metafunc.definition.iter_markers("lacks") for c in m.args]
        try:
            capable = backends.able(names, requires, lacks)
        except ValueError as error:
            raise pytest.UsageError(f"{metafunc.definition.nodeid}: {error}") from None
        chosen = [name for name in capable if name in backends.selected()]
        if not chosen and (requires or lacks):
            reason = f"needs {backends.needs(requires, lacks)}: " + (
                f"only {', '.join(capable)} (not selected)" if capable else "none has it"
            )
            skipped = pytest.param(None, marks=pytest.mark.skip(reason=reason), id="none")
            metafunc.parametrize("backend", [skipped], scope="session")
            return
        twin = metafunc.definition.get_closest_marker("async_twin")
        if twin is not None and twin.args[:1] == (False,):
            twin = None
        driver_twin = metafunc.definition.get_closest_marker("driver_twin") is not None
        if twin is not None or driver_twin:
            # Each backend, then each of its asyncio drivers (tests/asynctwin.py), and
            # with driver_twin its other sync drivers (backends.SYNC_DRIVERS).
            # async_twin("only"): on the asyncio drivers alone (a test of setwise.asyncio).
            own = () if twin is not None and twin.args[:1] == ("only",) else ("sync",)
            pairs = [
                pytest.param(
                    name,
                    driver,
                    id=name if driver == "sync" else f"{name}-{driver}",
                    marks=on_server(name),
                )
                for name in chosen
                for driver in (
                    *own,
                    *(backends.ASYNC_DRIVERS.get(name, ()) if twin is not None else ()),
                    *(backends.SYNC_DRIVERS.get(name, {}) if driver_twin else ()),
                )
            ]
            metafunc.parametrize(("backend", "driver"), pairs, scope="session")
            return
        grouped = [pytest.param(name, id=name, marks=on_server(name)) for name in chosen]
        metafunc.parametrize("backend", grouped, scope="session")


def backend_available(name: str) -> None:
    found = backends.availability(name)
    if found.ok:
        return
    message = f"{name} server not available: {found.detail}"
    if backends.in_ci():
        pytest.fail(f"{message} (CI=true requires every backend)", pytrace=False)
    pytest.skip(message)


def driver_available(driver: str) -> None:
    module = backends.missing_driver(driver)
    if module is None:
        return
    message = f"driver {driver} not installed (no module {module}: make .venv/.installed)"
    if backends.in_ci():
        pytest.fail(f"{message} (CI=true requires every driver)", pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def driver() -> str:
    """The driver of the test's engine: the URL's own, unless the test is marked
    ``async_twin`` (then also each asyncio driver of the backend) or ``driver_twin``
    (then also each other sync driver of ``backends.SYNC_DRIVERS``)."""
    return "sync"


@pytest.fixture
def engine(
    backend: str, driver: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Engine]:
    """An engine on a fresh, empty database of the test's backend. On an asyncio
    driver, setwise's functions are their setwise.asyncio twins (tests/asynctwin.py)."""
    backend_available(backend)
    driver_available(driver)
    if backends.is_async_driver(driver):
        asynctwin.use_twins(monkeypatch)
    with backends.fresh_database(backend, tmp_path, driver) as engine:
        yield engine


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> bool | None:
    """A test on an asyncio driver runs whole (setup, call, teardown) in a greenlet on an
    event loop of its own."""
    callspec = getattr(item, "callspec", None)
    if callspec is None or not backends.is_async_driver(callspec.params.get("driver", "sync")):
        return None
    item.ihook.pytest_runtest_logstart(nodeid=item.nodeid, location=item.location)
    asynctwin.run_in_greenlet(lambda: runtestprotocol(item, nextitem=nextitem))
    item.ihook.pytest_runtest_logfinish(nodeid=item.nodeid, location=item.location)
    return True


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    counts = dict.fromkeys(backends.NAMES, 0)
    for report in terminalreporter.stats.get("passed", []):
        for name in backends_of(report.nodeid):
            counts[name] += 1
    kinds = ("passed", "failed", "skipped", "error")
    reports = [r for kind in kinds for r in terminalreporter.stats.get(kind, [])]
    ran = used(getattr(report, "nodeid", "") for report in reports)
    summary = ", ".join(f"{name} {count}" for name, count in counts.items())
    terminalreporter.write_line(f"setwise: tests passed per backend: {summary}")
    servers = [
        f"{name}: {backends.availability(name).detail}"
        for name in ran
        if backends.availability(name).ok
    ]
    if servers:
        terminalreporter.write_line(f"setwise: servers: {'; '.join(servers)}")
    missing = [name for name in ran if not backends.availability(name).ok]
    for name in missing:
        terminalreporter.write_line(
            f"NOTICE: backend {name} was not tested: {backends.availability(name).detail}",
            yellow=True,
        )
