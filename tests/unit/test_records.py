"""The rules of a run's status, as pure logic: what each state allows (no database)."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from setwise import RunStateError
from setwise.journal.runinfo import RunInfo
from setwise.journal.states import ORPHAN_AFTER, refuse, refuse_resume, stage_unwanted


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
    ("partly-reverted", None): {"revert"},  # a revert left rows changed while it ran
}


@pytest.mark.parametrize(("state", "allowed"), ALLOWED.items(), ids=[s for s, _ in ALLOWED])
@pytest.mark.parametrize("action", ["resume", "abandon", "revert"])
def test_each_status_allows_what_its_rule_says(
    state: tuple[str, str | None], allowed: set[str], action: str
) -> None:
    info = run_in(*state)
    if action in allowed:
        refuse(info, action)
        return
    with pytest.raises(RunStateError, match="run r1 ") as refused:
        refuse(info, action)
    assert (refused.value.run_id, refused.value.action) == ("r1", action)
    assert (refused.value.status, refused.value.chunks) == (state[0], 3)


def test_a_run_that_kept_no_journal_refuses_a_revert() -> None:
    info = dataclasses.replace(run_in("done"), arguments={"journal": False})
    with pytest.raises(RunStateError, match="kept no journal") as refused:
        refuse(info, "revert")
    assert (refused.value.run_id, refused.value.action) == ("r1", "revert")


def test_a_run_resumes_only_as_the_same_kind_table_and_arguments() -> None:
    info = dataclasses.replace(run_in("failed"), arguments={"tag": "t", "journal": True})
    refuse_resume(info, table="books", kind="apply", arguments={"tag": "t"})
    for table, kind, tag in [
        ("authors", "apply", "t"),
        ("books", "update", "t"),
        ("books", "apply", "u"),
    ]:
        with pytest.raises(RunStateError, match="run r1 ") as refused:
            refuse_resume(info, table=table, kind=kind, arguments={"tag": tag})
        assert refused.value.action == "resume"


def test_a_kept_stage_is_unwanted_once_no_run_can_go_on_from_it() -> None:
    run_id = "20260101-120000-00000001"
    started = dt.datetime(2026, 1, 1, 12)
    for status in ["done", "reverted", "partly-reverted", "abandoned"]:
        assert stage_unwanted(run_id, status, started)
    for status in ["running", "interrupted", "failed"]:
        assert not stage_unwanted(run_id, status, started + 2 * ORPHAN_AFTER)
    # Never recorded: still staging, or killed while staging an hour ago.
    assert not stage_unwanted(run_id, None, started + ORPHAN_AFTER / 2)
    assert stage_unwanted(run_id, None, started + ORPHAN_AFTER)
    assert not stage_unwanted("not-setwise's", None, started + 2 * ORPHAN_AFTER)
