"""Errors of a run as a whole: a failed chunk, a run state that refuses a change, Ctrl-C,
the journal's own tables."""

from __future__ import annotations

from setwise.errors.base import SetwiseError
from setwise.messages import Spelling, as_argument


class RunError(SetwiseError):
    """A chunk of a run failed. That chunk was rolled back; earlier chunks are committed
    and journaled, so the run can be resumed or reverted."""

    def __init__(self, run_id: str | None, chunk: int, cause: BaseException) -> None:
        self.run_id = run_id
        self.chunk = chunk
        self.cause = cause
        reason = str(getattr(cause, "orig", None) or cause).strip().splitlines()
        self.reason = reason[0] if reason else repr(cause)
        """Why the chunk failed: the first line of the cause (the database's message)."""
        message = f"chunk {chunk} failed and was rolled back: {self.reason}"
        if run_id is not None and chunk > 1:
            message += (
                f". Chunks 1 to {chunk - 1} of run {run_id} are committed: resume with "
                f"resume={run_id!r} or undo them with revert({run_id!r})"
            )
        super().__init__(message)


class RunStateError(SetwiseError):
    """A run cannot be changed as asked: its state does not allow it (resuming a finished
    run, abandoning an abandoned one), or another process changed it first (every change
    of a run's state is a compare-and-set, ``setwise.journal.records``). Nothing was changed.
    Carries the ``run_id``, the ``action`` (resume, abandon, revert, a stop's status, or
    chunk), and the run's ``status`` and ``chunks`` as found (None where not read)."""

    def __init__(
        self,
        message: str,
        *,
        run_id: str,
        action: str,
        status: str | None = None,
        chunks: int | None = None,
    ) -> None:
        super().__init__(message)
        self.run_id = run_id
        self.action = action
        self.status = status
        self.chunks = chunks


class RunInUseError(RunStateError):
    """Another process took the run further while this one was running it (the same
    run resumed twice at once). This process's chunk was rolled back and it stopped;
    the run is left as the other process leaves it."""

    def __init__(self, run_id: str, chunk: int) -> None:
        super().__init__(
            f"run {run_id} was taken on by another process: it recorded chunk {chunk}, or "
            f"ended or abandoned the run, first (resumed twice at once?). This process "
            f"rolled its chunk {chunk} back and stopped; `setwise show {run_id}` tells "
            "where the run is",
            run_id=run_id,
            action="chunk",
        )
        self.chunk = chunk


class PausedTooLongError(SetwiseError):
    """A chunked run waited longer than ``max_wait`` for a health signal to say go on
    (replica lag, load, a throttle query...). Every chunk before the wait is committed;
    the run is marked interrupted and resumes with ``resume=run_id``. Carries the
    ``run_id``, the ``chunks`` committed, the ``signal`` as last read ("replica lag 4.2 s
    > 1 s"), the seconds ``waited`` and ``max_wait``."""

    def __init__(
        self, run_id: str, chunks: int, *, signal: str, waited: float, max_wait: float
    ) -> None:
        self.run_id = run_id
        self.chunks = chunks
        self.signal = signal
        self.waited = waited
        self.max_wait = max_wait
        super().__init__(self._say(as_argument))

    def _say(self, spell: Spelling) -> str:
        return (
            f"run {self.run_id} waited {self.waited:.1f} s "
            f"({spell('max_wait', self.max_wait)}) while {self.signal}, and stopped after "
            f"{self.chunks} chunk(s), all committed; it is marked interrupted: resume it with "
            f"{spell('resume', self.run_id)} once the database is healthy"
        )


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C (or ``setwise stop`` from another terminal, ``by``) stopped a chunked run:
    the chunk in progress was rolled back, the chunks before it stay committed. A
    KeyboardInterrupt still (not an error: ``except Exception`` does not catch it),
    carrying what resuming the run takes.

    In asyncio code (``setwise.asyncio``) a cancelled task stops the run the same way;
    the task's ``CancelledError`` goes on to the caller, with this as its ``__cause__``.

    ``unmarked`` says why the journal does not record the stop, when it does not: the
    database stayed locked past every retry (the run then still says ``running``, and
    resumes or is abandoned all the same), or another process changed the run first."""

    def __init__(
        self, run_id: str, chunks: int, *, unmarked: str | None = None, by: str | None = None
    ) -> None:
        self.run_id = run_id
        self.chunks = chunks
        self.unmarked = unmarked
        self.by = by
        """What stopped the run when not Ctrl-C: ``"setwise stop"`` from another process."""
        state = "" if unmarked is None else f" (not recorded in the journal: {unmarked})"
        how = "interrupted" if by is None else f"stopped by `{by} {run_id}`"
        super().__init__(
            f"run {run_id} {how} after {chunks} chunk(s){state}; resume it with "
            f"resume={run_id!r} or undo its chunks with revert({run_id!r})"
        )

    @property
    def marked(self) -> bool:
        """Whether the journal says the run is ``interrupted``."""
        return self.unmarked is None


class JournalTableError(SetwiseError):
    """A journal table setwise cannot write as it is: one an earlier setwise kept in
    another layout, or one keeping columns the table it journals no longer has.
    Carries the journal ``table`` and the ``layout`` it keeps."""

    def __init__(self, message: str, *, table: str, layout: str) -> None:
        super().__init__(message)
        self.table = table
        self.layout = layout
