"""How a run runs: chunking, journal, retries, guards, as the api checked them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy import Column

from setwise.engine.health import Health
from setwise.engine.retry import RETRIES
from setwise.errors import InvalidArgumentError
from setwise.journal.runtables import LABEL_CHARS
from setwise.report import ProgressCallback

Missing = Literal["report", "error", "insert"]
"""What a changeset's keys with no row do; see ``RunOptions.missing``."""
MISSING_MODES: tuple[Missing, ...] = ("report", "error", "insert")


@dataclass(frozen=True)
class RunOptions:
    """How to run: chunking, journal, retries, guards. See ``setwise.update``."""

    chunk_rows: int | Literal["auto"] | None = None
    chunk_seconds: float = 0.5
    throttle_seconds: float = 0.0
    journal: bool = True
    journal_prefix: str = "setwise_"
    retries: int = RETRIES
    progress: ProgressCallback | None = None
    resume: str | None = None
    actor: str | None = None
    expect_rows: int | None = None
    max_rows: int | None = None
    stamps: dict[Column[Any], Any] = field(default_factory=dict)
    arguments: dict[str, Any] = field(default_factory=dict)
    health: Health | None = None
    """The health signals a chunked run waits on between chunks (``engine.health``)."""
    run_id: str | None = None
    """The id a new chunked run records, when its writer was named for it beforehand."""
    missing: Missing = "report"
    """What a changeset's keys with no row do (``apply(missing=...)``): "report" (listed
    in ``Report.missing_keys``), "error" (``NotFoundError`` before anything is written)
    or "insert" (inserted, in the chunks of their keys)."""
    chunked: bool = field(init=False)
    """The run goes chunk by chunk (``chunk_rows`` given, or a resume)."""

    def __post_init__(self) -> None:
        chunked = self.chunk_rows is not None or self.resume is not None
        object.__setattr__(self, "chunked", chunked)
        for name, value in (("actor", self.actor), ("tag", self.arguments.get("tag"))):
            if isinstance(value, str) and len(value) > LABEL_CHARS:
                raise InvalidArgumentError(
                    f"{name} is {len(value):,} characters: a run's record keeps at most "
                    f"{LABEL_CHARS} ({value[:40]!r}...)",
                    argument=name,
                    value=value,
                )
