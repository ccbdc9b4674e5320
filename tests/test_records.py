"""The rules of a run's status, as pure logic: what each state allows (no database)."""

from __future__ import annotations

import datetime as dt

import pytest

from setwise import RunStateError
from setwise.journal.records import RunRecords
from setwise.journal.runinfo import RunInfo


def run_in(status: str, reverted_by: str | None = None) -> RunInfo:
    return RunInfo(
        run_id="r1",
        table="books",
        kind="apply",
        status=status,
        actor=None,
        started_at=dt.datetime(2026, 1, 1),
        finished_at=None,
        matched=0,
        changed=0,
        unchanged=0,
        missing=0,
        conflicts=0,
        chunks=3,
        retries=0,
        columns=("price",),
        checkpoint=(15,),
        arguments={},
        reverts=None,
        reverted_by=reverted_by,
        error=None,
    )


# (status, reverted by) -> the actions it allows, of resume, abandon and revert.
ALLOWED = {
    ("running", None): {"resume", "abandon", "revert"},  # running, or its process killed
    ("interrupted", None): {"resume", "abandon", "revert"},
    ("failed", None): {"resume", "abandon", "revert"},
    ("done", None): {"revert"},
    ("abandoned", None): {"revert"},
    ("reverted", "r2"): set(),
}


@pytest.mark.parametrize(("state", "allowed"), ALLOWED.items(), ids=[s for s, _ in ALLOWED])
@pytest.mark.parametrize("action", ["resume", "abandon", "revert"])
def test_each_status_allows_what_its_rule_says(
    state: tuple[str, str | None], allowed: set[str], action: str
) -> None:
    info = run_in(*state)
    if action in allowed:
        RunRecords.refuse(info, action)
        return
    with pytest.raises(RunStateError, match="run r1 ") as refused:
        RunRecords.refuse(info, action)
    assert (refused.value.run_id, refused.value.action) == ("r1", action)
    assert (refused.value.status, refused.value.chunks) == (state[0], 3)
