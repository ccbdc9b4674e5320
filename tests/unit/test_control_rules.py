"""What a run's state says to a command from another process (``states.control_refusal``),
and how a tuning moves the chunk sizer: pure logic, no database."""

from __future__ import annotations

import pytest

from setwise.engine.sizing import AUTO_START_ROWS, ChunkSizer
from setwise.journal.states import CONTINUE, PAUSE, STOP, TUNE, control_refusal
from tests.unit.test_records import run_in


@pytest.mark.parametrize("status", ["done", "interrupted", "failed", "abandoned", "reverted"])
@pytest.mark.parametrize("action", [PAUSE, CONTINUE, STOP, TUNE])
def test_a_run_that_is_not_running_takes_no_command(status: str, action: str) -> None:
    said = control_refusal(run_in(status), action, None)
    assert said.startswith(f"run r1 is {status} after 3 chunk(s), not running: it takes no")
    assert ("resume it" in said) == (status in ("interrupted", "failed"))


def test_a_stopping_run_takes_no_pause_or_tuning_and_a_running_one_no_continue() -> None:
    running = run_in("running")
    for action in (PAUSE, TUNE, CONTINUE):
        assert "is stopping after its current chunk" in control_refusal(running, action, STOP)
    assert control_refusal(running, CONTINUE, None) == (
        "run r1 is not paused: there is nothing to continue"
    )
    assert "takes no commands" in control_refusal(running, PAUSE, None)


def test_tuning_fixes_the_size_or_aims_at_a_time_under_the_cap() -> None:
    sizer = ChunkSizer("auto", 0.5, cap=800)
    sizer.fixed(5_000)
    assert (sizer.auto, sizer.rows) == (False, 800)
    sizer.record(800, 10.0)  # a fixed size stays, however slow
    assert sizer.rows == 800
    sizer.aim(0.1)
    assert (sizer.auto, sizer.seconds) == (True, 0.1)
    sizer.record(800, 1.0)  # ten times the new target: smaller at once
    assert sizer.rows < 800
    fixed = ChunkSizer(50, 0.5)
    fixed.aim(0.2)
    assert fixed.auto and fixed.rows == 50 < AUTO_START_ROWS
