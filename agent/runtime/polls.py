"""How one target poll ended, as the scheduler and `targets poll` see it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class PollDone:
    """A poll recorded in the store; next_run is set when the scheduler must be told (a backoff)."""

    note: str
    error: str | None
    next_run: datetime | None


@dataclass
class PollResult:
    target_id: int
    ok: bool
    note: str
    error: str | None = None
