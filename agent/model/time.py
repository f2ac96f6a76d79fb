"""The agent's one reading of the wall clock, and the ways the agent spells a time
(the report's, the webhook payloads', the CLI's JSON), each a public shape.

Everything that records "when" (the store, the daemon, delivery, the scan report)
takes its time from `utcnow`, so there is one aware-UTC source to reason about
(and one place a test would look to see what "now" means).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal


def utcnow() -> datetime:
    """Now, aware, in UTC."""
    return datetime.now(UTC)


def iso_utc(at: datetime, timespec: Literal["milliseconds", "microseconds"] = "milliseconds") -> str:
    """`at` as the JSON report writes times: ISO 8601, UTC, milliseconds, a 'Z' suffix
    (a webhook body's `timestamp` is the same with microseconds).

    The spelling is part of the report's public shape (README); a naive datetime is
    refused rather than guessed to be UTC.
    """
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"naive datetime {at.isoformat()}: the report's times are UTC")
    return at.astimezone(UTC).isoformat(timespec=timespec).replace("+00:00", "Z")


def iso_z(value: datetime | None) -> str | None:
    """A time as the webhook payloads write it: `isoformat()` with `+00:00` as `Z`
    (microseconds only when there are some); None stays None.

    The spelling is part of docs/events.schema.json's public shape, so it is kept as
    the first payloads wrote it: the value is not converted (the store returns UTC)."""
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


def iso_seconds(value: datetime | None) -> str | None:
    """ISO 8601 UTC to the second (`2026-11-23T14:56:08Z`), as the CLI's JSON shows times."""
    if value is None:
        return None
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
