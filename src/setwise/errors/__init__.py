"""Every error setwise raises, importable from ``setwise``.

    SetwiseError
    ├── UnboundedUpdateError   an UPDATE or DELETE with no WHERE and no ``all_rows=True``
    ├── TooManyRowsError       more rows would change than ``max_rows`` allows
    ├── TransactionTooLargeError  one transaction would pass the server's cap (Galera's write set)
    ├── NotFoundError          a row that must exist does not, or fewer rows matched than required
    ├── ConflictError          a version moved under an optimistic lock, or rows changed since a run
    ├── RunError               a chunk failed: that chunk was rolled back, earlier ones are kept
    ├── PausedTooLongError     a chunked run waited past ``max_wait`` for a health signal
    ├── RunStateError          a run's state refuses the change, or another process changed it first
    │   └── RunInUseError      another process went on with the same run (a second resume)
    ├── ValidationError        values that do not fit their columns: a bounded list of
    │                          ``Problem``, the exact ``total`` and ``counts`` by ``ProblemKind``
    ├── StagingError           the database did not stage a changeset's rows as sent
    ├── SchemaError            an unknown table, column or key
    ├── SQLTextError           ``--where`` / ``--set`` text refused; points at the token
    ├── PlanTimeoutError       a statement of a plan ran past its time limit
    ├── InvalidArgumentError   an argument missing or unusable; nothing was run
    ├── WriteCheckError        the database wrote other rows than it was given to write
    │   └── KeysTakenError     another writer inserted keys a run was inserting
    ├── VerificationError      rows a run wrote do not hold what it wrote (``verify=True``)
    ├── JournalTableError      a journal table kept in another layout, or missing columns
    └── MissingExtraError      an optional dependency is not installed; names the extra to add
                               (also an ``ImportError``)

    KeyboardInterrupt
    └── RunInterrupted         Ctrl-C (or ``setwise stop``) stopped a chunked run; carries
                               the run to resume

Errors carry data (the table, the key, the versions, the problems) as attributes, so a
program can act on them without parsing the message. A message shows keys and values
as a person writes them (``shown``) and names an argument as Python passes it
(``chunk_rows=300``); ``explain`` names it as another caller does (``--chunk-rows 300``).
"""

from setwise.errors.base import SetwiseError
from setwise.errors.inputs import (
    InvalidArgumentError,
    MissingExtraError,
    PlanTimeoutError,
    SchemaError,
    SQLTextError,
    StagingError,
    ValidationError,
)
from setwise.errors.runs import (
    JournalTableError,
    PausedTooLongError,
    RunError,
    RunInterrupted,
    RunInUseError,
    RunStateError,
)
from setwise.errors.writes import (
    ConflictError,
    KeysTakenError,
    Mismatch,
    NotFoundError,
    RowConflict,
    TooManyRowsError,
    TransactionTooLargeError,
    UnboundedUpdateError,
    VerificationError,
    WriteCheckError,
)

__all__ = [
    "ConflictError",
    "InvalidArgumentError",
    "JournalTableError",
    "KeysTakenError",
    "Mismatch",
    "MissingExtraError",
    "NotFoundError",
    "PausedTooLongError",
    "PlanTimeoutError",
    "RowConflict",
    "RunError",
    "RunInUseError",
    "RunInterrupted",
    "RunStateError",
    "SQLTextError",
    "SchemaError",
    "SetwiseError",
    "StagingError",
    "TooManyRowsError",
    "TransactionTooLargeError",
    "UnboundedUpdateError",
    "ValidationError",
    "VerificationError",
    "WriteCheckError",
]
