"""The states things move through, as enums (their values are what the store and the JSON hold)."""

from __future__ import annotations

from enum import StrEnum


class ItemState(StrEnum):
    """What the store remembers of an item: an `ItemStatus` of the report, or DIRECTORY for a
    directory or HAMT shard whose every entry was examined (a later root skips it whole)."""

    VERIFIED = "verified"
    INCOMPLETE = "incomplete"
    BLOCKED = "blocked"
    ERROR = "error"
    SKIPPED = "skipped"
    DIRECTORY = "directory"


class ScanStatus(StrEnum):
    RUNNING = "running"
    OK = "ok"
    FAILED = "failed"
    INTERRUPTED = "interrupted"


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


class ContentState(StrEnum):
    """Whether matched content can still be fetched (takedown tracking)."""

    AVAILABLE = "available"
    UNAVAILABLE = "unavailable"
    UNKNOWN = "unknown"


class Verdict(StrEnum):
    """An investigator's review of a finding."""

    CONFIRMED = "confirmed"
    FALSE_POSITIVE = "false_positive"


class ReviewState(StrEnum):
    """Where a finding stands by its latest review (UNREVIEWED: it has none)."""

    UNREVIEWED = "unreviewed"
    CONFIRMED = "confirmed"
    FALSE_POSITIVE = "false_positive"


class RetractionReason(StrEnum):
    """Why a finding was withdrawn (its retraction row and the finding.retracted event)."""

    FALSE_POSITIVE = "false_positive"
    ENTRY_DELETED = "entry_deleted"


class AttemptOutcome(StrEnum):
    """What one webhook delivery attempt decided: RETRY leaves the delivery pending."""

    SUCCEEDED = "succeeded"
    RETRY = "retry"
    FAILED = "failed"
    CANCELLED = "cancelled"


class ProvenanceSource(StrEnum):
    """Where a finding view's provenance came from: a stored location, the
    finding.created event (once the location is gone), or nowhere."""

    LOCATION = "location"
    EVENT = "event"
    NONE = "none"
