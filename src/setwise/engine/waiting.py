"""One way for a run to wait: a throttle, a pause, a retry's backoff, a health signal.

A run called from ``setwise.asyncio`` runs in SQLAlchemy's greenlet on the event loop:
``time.sleep`` there would stop every other task of the program (a web service's
requests) for as long as the run waits, and a cancelled task would not stop until the
sleep ended. ``wait`` awaits ``asyncio.sleep`` on the loop instead when there is one,
so other tasks go on and a cancellation reaches the run at once (as Ctrl-C does).
"""

from __future__ import annotations

import asyncio
import time

from sqlalchemy.exc import MissingGreenlet
from sqlalchemy.util import await_only


def wait(seconds: float) -> None:
    """Wait ``seconds``: on the event loop when called from ``setwise.asyncio``, else
    by sleeping."""
    if seconds <= 0:
        return
    sleeping = asyncio.sleep(seconds)
    try:
        await_only(sleeping)
    except MissingGreenlet:  # not inside setwise.asyncio: no loop to wait on
        sleeping.close()
        time.sleep(seconds)
