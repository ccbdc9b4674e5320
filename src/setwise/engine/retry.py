"""Run work again after a rollback the database resolves by itself, with backoff.

``retrying`` is the one loop: a run in one transaction on a snapshot, each chunk of a
chunked run, and the short transactions that start, resume or stop a run all retry
through it, with the same backoff and the same warning.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError

from setwise.dialects import Strategy
from setwise.engine.waiting import wait
from setwise.errors import KeysTakenError

log = logging.getLogger("setwise")

T = TypeVar("T")

#: Backoff before retry n is BACKOFF_S * 2**n (plus up to 50% jitter): 0.05, 0.1, 0.2 …
BACKOFF_S = 0.05
#: Retries of a transaction the database rolled back by itself (a deadlock, Galera's
#: certification, SQLite's busy database): with the backoff above, 1.6 s of waiting.
RETRIES = 5


def backoff(attempt: int) -> float:
    """Seconds to wait before retry ``attempt``: doubling, with jitter."""
    return float(BACKOFF_S * 2**attempt * (1 + random.random() / 2))


Retryable = Callable[[DBAPIError | KeysTakenError], bool]
"""Whether work that failed with this error may succeed when run again."""


def after_rollback(strategy: Strategy) -> Retryable:
    """What a chunk runs again after: a rollback the database resolves by itself
    (``Strategy.is_retryable``), or keys another writer inserted since the chunk
    counted them (``engine.taken``)."""
    return lambda exc: isinstance(exc, KeysTakenError) or strategy.is_retryable(exc)


def retrying(
    attempt_once: Callable[[int], T],
    *,
    retryable: Retryable,
    retries: int,
    rolled_back: str,
    on_retry: Callable[[], None] | None = None,
) -> T:
    """``attempt_once(attempt)`` (0, then the number of the retry), run again after a
    DBAPIError or ``KeysTakenError`` that ``retryable`` accepts, up to ``retries`` times
    with backoff; each retry is logged as ``"{rolled_back} (the error); retry n of N in s"``."""
    attempt = 0
    while True:
        try:
            return attempt_once(attempt)
        except (DBAPIError, KeysTakenError) as exc:
            if not retryable(exc) or attempt >= retries:
                raise
            attempt += 1
            if on_retry is not None:
                on_retry()
            delay = backoff(attempt)
            log.warning(
                "%s (%s); retry %d of %d in %.2f s",
                rolled_back,
                first_line(exc),
                attempt,
                retries,
                delay,
            )
            wait(delay)


def retried(
    connection: Connection,
    strategy: Strategy,
    work: Callable[[Connection], T],
    *,
    retries: int,
    what: str,
    on_retry: Callable[[], None] | None = None,
) -> T:
    """``work`` in a transaction of its own on ``connection`` (outside one), run again
    after a rollback the database resolves by itself (``Strategy.is_retryable``: a
    deadlock, a lock wait, SQLite's busy database), up to ``retries`` times with backoff."""

    def once(_attempt: int) -> T:
        with connection.begin():
            return work(connection)

    return retrying(
        once,
        retryable=lambda exc: isinstance(exc, DBAPIError) and strategy.is_retryable(exc),
        retries=retries,
        rolled_back=f"{what} was rolled back",
        on_retry=on_retry,
    )


def first_line(error: BaseException) -> str:
    """The first line of an error's message (the driver's, for a DBAPIError)."""
    text = str(getattr(error, "orig", None) or error)
    return text.strip().splitlines()[0] if text.strip() else type(error).__name__
