"""What stops a chunked run as Ctrl-C does, and letting go of what an interrupt holds."""

from __future__ import annotations

import traceback
from asyncio import CancelledError

#: What stops a chunked run as Ctrl-C does: a cancelled asyncio task (setwise.asyncio)
#: gets its CancelledError inside the driver call it was waiting for.
INTERRUPTS = (KeyboardInterrupt, CancelledError)


def release_frames(error: BaseException) -> None:
    """Let go of what the frames of ``error``'s traceback (and of the errors it chains)
    hold in their local variables; the traceback still shows where each line was.

    A KeyboardInterrupt inside a statement leaves SQLAlchemy closing the connection
    without closing the statement's cursor. Since Python 3.11, sqlite3 then keeps the
    database open behind the closed connection, its transaction and write lock with it,
    until that cursor is freed, and the traceback's frames hold it: until then no other
    connection could write (mark the run interrupted) and gets "database is locked"."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        traceback.clear_frames(current.__traceback__)
        current = current.__cause__ or current.__context__
