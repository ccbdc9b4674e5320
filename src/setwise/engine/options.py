"""How a run runs: chunking, journal, retries, guards, as the api checked them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy import Column

from setwise.engine.health import Health
from setwise.engine.retry import RETRIES
from setwise.report import ProgressCallback


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
    chunked: bool = field(init=False)
    """The run goes chunk by chunk (``chunk_rows`` given, or a resume)."""

    def __post_init__(self) -> None:
        chunked = self.chunk_rows is not None or self.resume is not None
        object.__setattr__(self, "chunked", chunked)
