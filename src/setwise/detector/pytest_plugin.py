"""setwise's pytest plugin: a test that updates rows one at a time fails, or warns.

Installed with setwise (entry point ``pytest11``), it does nothing until asked:

- ``--setwise-watch`` watches every test and fails the ones with a row-by-row loop;
  ``--setwise-watch=warn`` issues a ``RowByRowWarning`` instead (pytest lists it in the
  warnings summary; under ``filterwarnings = error`` it fails the test like any warning);
- ``@pytest.mark.setwise_watch`` watches one test without the option
  (``action="warn"`` and ``threshold=N`` are accepted as keywords);
- ``@pytest.mark.allow_row_by_row`` leaves a test unwatched, whatever else is asked;
- ``--setwise-threshold=N`` sets the rows of one shape that make a finding
  (default ``setwise.watch.DEFAULT_THRESHOLD``).

Only the test's call phase is watched (not its fixtures), on every engine. At the end
of the session a table of every finding, worst first, is printed.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass

import pytest

from setwise.detector.findings import Finding, format_report
from setwise.detector.watch import DEFAULT_THRESHOLD, watch

ACTIONS = ("fail", "warn")


class RowByRowWarning(UserWarning):
    """A test updated or deleted rows one statement per row."""


@dataclass(frozen=True)
class _Settings:
    action: str
    threshold: int


_FINDINGS = pytest.StashKey[list[tuple[str, Finding]]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("setwise", "setwise: row-by-row UPDATE loops")
    group.addoption(
        "--setwise-watch",
        nargs="?",
        const="fail",
        default=None,
        choices=ACTIONS,
        help="fail (default) or warn on tests that update rows one at a time; "
        "write --setwise-watch=warn with the equals sign",
    )
    group.addoption(
        "--setwise-threshold",
        type=int,
        default=None,
        metavar="ROWS",
        help=f"rows of one shape that make a row-by-row loop (default {DEFAULT_THRESHOLD})",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "setwise_watch(action='fail', threshold=None): fail (or warn) if this test "
        "updates or deletes rows one at a time",
    )
    config.addinivalue_line(
        "markers", "allow_row_by_row: this test may update rows one at a time (setwise)"
    )
    config.stash[_FINDINGS] = []


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, object, object]:
    settings = _settings(item)
    if settings is None:
        return (yield)
    with watch(threshold=settings.threshold, log=False) as seen:
        outcome = yield  # the test's own failure propagates from here, unchanged
    findings = seen.findings
    if not findings:
        return outcome
    item.config.stash[_FINDINGS].extend((item.nodeid, finding) for finding in findings)
    message = _message(findings)
    if settings.action == "warn":
        item.warn(RowByRowWarning(message))
    else:
        pytest.fail(message, pytrace=False)
    return outcome


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    found = terminalreporter.config.stash.get(_FINDINGS, [])
    if not found:
        return
    ranked = sorted(found, key=lambda pair: pair[1].elapsed_s, reverse=True)
    terminalreporter.write_sep("=", "setwise: row-by-row loops")
    terminalreporter.write_line(
        format_report(
            [finding for _, finding in ranked],
            threshold=_threshold(terminalreporter.config, None),
            labels=[nodeid for nodeid, _ in ranked],
        )
    )


def _settings(item: pytest.Item) -> _Settings | None:
    """How to watch this test, or None to leave it alone."""
    if item.get_closest_marker("allow_row_by_row") is not None:
        return None
    marker = item.get_closest_marker("setwise_watch")
    option = item.config.getoption("setwise_watch")
    if marker is None and option is None:
        return None
    action = str(marker.kwargs.get("action", "fail")) if marker is not None else str(option)
    if action not in ACTIONS:
        raise pytest.UsageError(
            f"@pytest.mark.setwise_watch(action={action!r}): choose one of {', '.join(ACTIONS)}"
        )
    threshold = marker.kwargs.get("threshold") if marker is not None else None
    return _Settings(action, _threshold(item.config, threshold))


def _threshold(config: pytest.Config, marked: object) -> int:
    if isinstance(marked, int):
        return marked
    option = config.getoption("setwise_threshold")
    return option if isinstance(option, int) else DEFAULT_THRESHOLD


def _message(findings: list[Finding]) -> str:
    count = len(findings)
    head = f"setwise: this test updated rows one at a time ({count} loop{'s' * (count > 1)}):"
    body = "\n\n".join(str(finding) for finding in findings)
    hint = "Mark the test @pytest.mark.allow_row_by_row if the loop is intended."
    return f"{head}\n\n{body}\n\n{hint}"
