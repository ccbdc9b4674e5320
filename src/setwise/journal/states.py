"""What each status of a run allows, as pure logic: the refusals, with their reasons.

A run's status moves only so (a run in one transaction is recorded ``done`` at once)::

    running ── each chunk ──► running ── its last chunk ──► done
    running ── Ctrl-C, a failed chunk ──► interrupted, failed
    running ── setwise stop, after a chunk ──► interrupted
    running, interrupted, failed ── resume ──► running
    running, interrupted, failed ── abandon ──► abandoned
    any run not reverted yet ── revert ──► reverted
    any run not reverted yet ── revert that leaves rows changed meanwhile ──► partly-reverted
    partly-reverted ── revert (force=True, or once those rows are back) ──► reverted

A running run also takes commands from other processes (``setwise pause``, ``continue``,
``stop``, ``tune``; ``setwise.journal.controls``): only while it is running, a pause
or a tuning not while it is stopping, a continue only while it is paused.

The moves themselves, each a compare-and-set of the run's record, are
``setwise.journal.records``'s; every refusal they make, or anyone makes of a run's
state, is a function here.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from typing import Any

from setwise.errors import RunStateError
from setwise.journal.runinfo import RunInfo

RUNNING = "running"
DONE = "done"
INTERRUPTED = "interrupted"
FAILED = "failed"
ABANDONED = "abandoned"
REVERTED = "reverted"
#: A revert restored the run's rows but those another writer changed while it ran
#: (``ConflictError``): they stay as that writer left them, and the run can still be
#: reverted (``force=True`` writes them); nothing resumes it.
PARTLY_REVERTED = "partly-reverted"

#: Commands another process gives a running run (``setwise.journal.controls``).
PAUSE = "pause"
CONTINUE = "continue"
STOP = "stop"
TUNE = "tune"

#: A run that has not ended: it may be resumed or abandoned (``running`` also when the
#: process running it was killed: nothing can tell that from a live one).
OPEN = (RUNNING, INTERRUPTED, FAILED)
#: A run that has ended: nothing resumes it, nor goes on from what it kept for a resume.
ENDED = (DONE, REVERTED, PARTLY_REVERTED, ABANDONED)

#: The kind of a revert's run (``Reversal.kind``): what a revert's resume must be.
REVERT_KIND = "revert"

#: A kept staging table with no run record is unwanted (``setwise.init`` drops it) once
#: its run id is this old: a chunked changeset stages (committing as it goes) before it
#: records its run, so a younger one may belong to a run still staging. Staging runs at
#: well over 100,000 rows a second (benchmarks/README.md): an hour is past any staging
#: that is still alive.
ORPHAN_AFTER = dt.timedelta(hours=1)


def refuse(info: RunInfo, action: str) -> None:
    """``RunStateError`` when run ``info`` cannot be resumed, abandoned or reverted
    (``action``) as it is."""
    message = refusal(info, action)
    if message is not None:
        raise state_error(message, info, action)


def refusal(info: RunInfo, action: str) -> str | None:
    """Why run ``info`` cannot be resumed, abandoned or reverted (``action``) as it is;
    None when it can."""
    run_id, by = info.run_id, info.reverted_by
    if by is not None:
        return {
            "resume": f"run {run_id} was reverted by run {by}; start it again instead of "
            "resuming it",
            "abandon": f"run {run_id} is reverted: there is nothing to abandon",
            "revert": f"run {run_id} was already reverted by run {by}; revert {by} to apply "
            "it again",
        }[action]
    if action == "resume" and info.status == DONE:
        return f"run {run_id} is finished; there is nothing to resume"
    if action == "resume" and info.status == PARTLY_REVERTED:
        return (
            f"run {run_id} was partly reverted: a revert restored its rows but those changed "
            f"while it ran; finish the revert with setwise.revert(bind, {run_id!r}, "
            f"force=True) (`setwise revert {run_id} --force`), or start the run again"
        )
    if action == "resume" and info.status == ABANDONED:
        return f"run {run_id} was abandoned; start it again instead of resuming it"
    if action == "abandon" and info.status not in OPEN:
        return f"run {run_id} is {info.status}: there is nothing to abandon"
    if action == "revert" and info.arguments.get("journal") is False:
        return f"run {run_id} kept no journal (journal=False): it cannot be reverted"
    return None


def control_refusal(info: RunInfo, action: str, command: str | None) -> str:
    """Why run ``info``, whose pending command is ``command``, does not take the command
    ``action`` (pause, continue, stop, tune)."""
    run_id = info.run_id
    if info.status != RUNNING:
        then = ": resume it, then give the command" if info.status in OPEN else ""
        return f"run {run_id} is {describe(info)}, not running: it takes no {action}{then}"
    if command == STOP:
        return f"run {run_id} is stopping after its current chunk: it takes no {action}"
    if action == CONTINUE:
        return f"run {run_id} is not paused: there is nothing to continue"
    return (
        f"run {run_id} takes no commands: the process running it keeps no control row "
        "(an earlier setwise started it); stop it with Ctrl-C in its own terminal"
    )


def refuse_resume(info: RunInfo, *, table: str, kind: str, arguments: Mapping[str, Any]) -> None:
    """``RunStateError`` when run ``info`` cannot be resumed by a run that is ``kind``
    of ``table`` with ``arguments``: as it is (``refuse``), or by another kind of run,
    on another table, or with other arguments."""
    refuse(info, "resume")
    if info.table != table or info.kind != kind:
        message = (
            f"run {info.run_id} was {_a(info.kind)} of {info.table!r}, not {_a(kind)} of {table!r}"
        )
        if info.reverts is not None:  # a revert resumes as a revert of its run
            message += (
                f": resume it with setwise.revert(bind, {info.reverts!r}, "
                f"resume={info.run_id!r}) (`setwise revert {info.reverts} --resume "
                f"{info.run_id}`)"
            )
        raise state_error(message, info, "resume")
    # What the run read (``source``) may be read again differently, or not at all.
    recorded = {k: v for k, v in info.arguments.items() if k not in ("journal", "source")}
    given = {k: v for k, v in arguments.items() if k != "source"}
    if recorded != json.loads(json.dumps(given, default=str)):
        raise state_error(
            f"run {info.run_id} ran with other arguments ({info.arguments}); resume it "
            "with the same statement or changes",
            info,
            "resume",
        )


def refuse_resumed_revert(info: RunInfo, resumed: RunInfo) -> None:
    """``RunStateError`` when run ``resumed`` is not a revert of run ``info`` that can
    go on."""
    if resumed.kind != REVERT_KIND or resumed.reverts != info.run_id:
        what = f"it reverts run {resumed.reverts}" if resumed.reverts else f"{resumed.kind!r}"
        raise state_error(
            f"run {resumed.run_id} is not a revert of run {info.run_id} ({what}): resume a "
            "revert of it with resume= set to that revert's run id",
            resumed,
            "resume",
        )
    refuse(resumed, "resume")


def refuse_second_revert(info: RunInfo, unfinished: RunInfo | None) -> None:
    """``RunStateError`` when run ``info`` has a revert that has not ended,
    ``unfinished``: it resumes instead, from where it stopped (a new one would take the
    rows it restored for rows changed since)."""
    if unfinished is not None:
        raise state_error(
            f"run {info.run_id} has a revert that has not ended, run {unfinished.run_id} "
            f"({describe(unfinished)}): resume it with resume={unfinished.run_id!r} "
            f"(`setwise revert {info.run_id} --resume {unfinished.run_id}`), or abandon it "
            "first",
            unfinished,
            "revert",
        )


def taken_on(info: RunInfo, chunk: int) -> bool:
    """Whether run ``info`` is no longer the process's that would write its chunk
    ``chunk``: another process went on past chunk ``chunk - 1``, or ended it."""
    return info.status != RUNNING or info.chunks >= chunk


def stage_unwanted(run_id: str, status: str | None, now: dt.datetime) -> bool:
    """Whether no run can go on from a staging table kept under run ``run_id``, whose
    record says ``status`` (None: it has none): the run ended, or it has no record and
    started ``ORPHAN_AFTER`` before ``now`` or more. False for an id setwise does not
    give (``records.new_run_id``)."""
    try:
        started = dt.datetime.strptime(run_id[:15], "%Y%m%d-%H%M%S")
    except ValueError:
        return False
    return status in ENDED or (status is None and now - started >= ORPHAN_AFTER)


def state_error(message: str, info: RunInfo, action: str) -> RunStateError:
    """The ``RunStateError`` of ``action`` on run ``info``, as found."""
    return RunStateError(
        message, run_id=info.run_id, action=action, status=info.status, chunks=info.chunks
    )


def describe(info: RunInfo) -> str:
    """Where run ``info`` is: its status after its chunks."""
    return f"{info.status} after {info.chunks} chunk(s)"


def _a(kind: str) -> str:
    """``kind`` (apply, update, revert, delete) with its article."""
    return f"{'an' if kind[:1] in 'aeiou' else 'a'} {kind}"
