"""The agent's one reading of the wall clock, and the one way the report spells a time.

Everything that records "when" (the store, the daemon, delivery, the scan report)
takes its time from `utcnow`, so there is one aware-UTC source to reason about
(and one place a test would look to see what "now" means).
"""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    """Now, aware, in UTC."""
    return datetime.now(UTC)


def iso_utc(at: datetime) -> str:
    """`at` as the JSON report writes times: ISO 8601, UTC, milliseconds, a 'Z' suffix.

    The spelling is part of the report's public shape (README); a naive datetime is
    refused rather than guessed to be UTC.
    """
    if at.tzinfo is None:
        raise ValueError(f"naive datetime {at.isoformat()}: the report's times are UTC")
    return at.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
