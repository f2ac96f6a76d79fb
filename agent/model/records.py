"""Plain frozen rows: what the store takes and returns.

Callers never see SQLAlchemy rows, so the store's tables can change (new
columns, a new dialect) without touching the code that reads these."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from agent.model.finding import Finding, MatchedOn
from agent.model.signals import ItemSignals
from agent.model.status import (
    ContentState,
    DeliveryStatus,
    ItemState,
    ProvenanceSource,
    RetractionReason,
    ReviewState,
    ScanStatus,
    Verdict,
)
from agent.model.time import utcnow

JSONObject = dict[str, Any]


@dataclass(frozen=True, slots=True)
class TargetRow:
    id: int
    url: str
    kind: str
    interval_s: int
    options: JSONObject
    enabled: bool
    created_at: datetime
    last_poll_at: datetime | None
    last_success_at: datetime | None
    last_error: str | None
    consecutive_failures: int
    next_run_at: datetime | None
    # Per-source cursors (last root CID, Arweave cursor/height, seen pins...).
    state: JSONObject


@dataclass(frozen=True, slots=True)
class ScanRow:
    id: int
    target_id: int | None
    target_url: str
    started_at: datetime
    finished_at: datetime | None
    status: ScanStatus
    root_cid: str | None
    summary: JSONObject
    error: str | None
    node: str | None


@dataclass(frozen=True, slots=True)
class ItemRow:
    """One piece of content. `key` is the hex multihash for IPFS content (so
    CIDv0 and v1 of the same bytes are one item) or 'ar:<txid>'."""

    key: str
    status: ItemState
    cid: str | None = None
    size: int | None = None
    media_type: str | None = None
    # The vPDQ frames of a video are inside (`signals.frames`), kept for re-matching.
    signals: ItemSignals = field(default_factory=ItemSignals)
    first_seen_at: datetime = field(default_factory=utcnow)
    last_seen_at: datetime = field(default_factory=utcnow)


@dataclass(frozen=True, slots=True)
class LocationRow:
    """Where an item was seen: provenance for findings and alerts."""

    item_key: str
    path: str
    target_id: int | None = None
    root_cid: str | None = None
    gateway: str | None = None
    first_seen_at: datetime = field(default_factory=utcnow)
    last_seen_at: datetime = field(default_factory=utcnow)
    id: int | None = None


@dataclass(frozen=True, slots=True)
class FindingRow:
    """A match of an item against one list entry. (item_key, list_name,
    entry_id, signal_type) is its identity; `id` is None until stored.

    `list_source`, `list_line` and `compared_percent` are kept in the table's
    `detail` JSON column (see `detail_view`), so adding one needs no migration."""

    item_key: str
    list_name: str
    entry_id: str
    entry_value: str
    signal_type: MatchedOn
    distance: float
    labels: tuple[str, ...] = ()
    query: str | None = None
    list_source: str | None = None
    list_line: int | None = None
    compared_percent: float | None = None
    created_at: datetime = field(default_factory=utcnow)
    retroactive: bool = False
    id: int | None = None

    @property
    def identity(self) -> tuple[str, str, str, str]:
        return (self.item_key, self.list_name, self.entry_id, self.signal_type.value)

    @classmethod
    def from_finding(cls, item_key: str, finding: Finding, *, retroactive: bool = False) -> FindingRow:
        return cls(
            item_key=item_key,
            list_name=finding.list_name,
            entry_id=finding.entry_id,
            entry_value=finding.entry,
            signal_type=finding.signal_type,
            distance=float(finding.distance),
            labels=tuple(finding.labels),
            query=finding.query,
            list_source=finding.list_source,
            list_line=finding.list_line,
            compared_percent=finding.compared_percent,
            retroactive=retroactive,
        )

    def to_finding(self) -> Finding:
        return Finding(
            list_name=self.list_name,
            entry=self.entry_value,
            entry_id=self.entry_id,
            signal_type=self.signal_type,
            distance=self.distance,
            labels=self.labels,
            query=self.query,
            list_source=self.list_source,
            list_line=self.list_line,
            compared_percent=self.compared_percent,
        )

    def detail_view(self) -> JSONObject:
        """The `detail` JSON column (and `findings show`'s `detail` object): the keys
        a report finding has beyond the table's own columns, in the report's order."""
        # An absent value is left out rather than written as null: a list without line
        # numbers (TCAP, an API) says nothing about lines, and `findings show` prints this.
        values = {
            "list_source": self.list_source,
            "list_line": self.list_line,
            "compared_percent": self.compared_percent,
        }
        return {key: value for key, value in values.items() if value is not None}


@dataclass(frozen=True, slots=True)
class ListVersionRow:
    id: int
    name: str
    source: str
    content_hash: str
    entries: int
    deny_rules: int
    problems: int
    # Last time this exact content became the list's current content.
    loaded_at: datetime


@dataclass(frozen=True, slots=True)
class ListStateRow:
    """Sync state of a remote list (HTTP validators, TCAP checkpoint)."""

    name: str
    source: str
    etag: str | None = None
    last_modified: str | None = None
    checkpoint: str | None = None
    content_hash: str | None = None
    updated_at: datetime = field(default_factory=utcnow)


# ----------------------------------------------------------------- alerts


@dataclass(frozen=True, slots=True)
class SubscriptionRow:
    id: int
    url: str
    secret: str = field(repr=False)
    previous_secret: str | None = field(default=None, repr=False)
    previous_secret_until: datetime | None = None
    lists: tuple[str, ...] = ()
    labels: tuple[str, ...] = ()
    targets: tuple[int, ...] = ()
    event_types: tuple[str, ...] = ()
    enabled: bool = True
    disabled_reason: str | None = None
    failing_since: datetime | None = None
    max_in_flight: int = 4
    description: str | None = None
    created_at: datetime = field(default_factory=utcnow)
    # The principal that created it through the API; None: created with the CLI.
    owner: str | None = None

    def secrets(self, now: datetime) -> tuple[str, ...]:
        """Secrets to sign with now: the current one, and the previous one during its grace period."""
        if self.previous_secret and self.previous_secret_until and self.previous_secret_until > now:
            return (self.secret, self.previous_secret)
        return (self.secret,)


@dataclass(frozen=True, slots=True)
class NewEvent:
    """An event to write to the outbox, with the subscriptions that get a delivery."""

    id: str
    type: str
    payload: JSONObject
    subscription_ids: tuple[int, ...]
    finding_id: int | None = None
    item_key: str | None = None


@dataclass(frozen=True, slots=True)
class EventRow:
    id: str
    type: str
    created_at: datetime
    payload: JSONObject
    finding_id: int | None
    item_key: str | None


@dataclass(frozen=True, slots=True)
class DeliveryRow:
    id: int
    event_id: str
    subscription_id: int
    status: DeliveryStatus
    attempts: int
    next_attempt_at: datetime
    last_attempt_at: datetime | None
    last_status: int | None
    last_error: str | None
    created_at: datetime
    succeeded_at: datetime | None


@dataclass(frozen=True, slots=True)
class DeliveryAttemptView:
    """One attempt at sending a webhook delivery, with the event it carried and where
    the delivery stands now."""

    attempt: int  # 1 for a delivery's first attempt
    at: datetime
    http_status: int | None  # None: no answer (a refused connection, a timeout)
    error: str | None
    duration_ms: int
    event_id: str
    event_type: str
    delivery_id: int
    delivery_status: DeliveryStatus


@dataclass(frozen=True, slots=True)
class DeliveryJob:
    """A leased delivery with what sending it needs."""

    delivery: DeliveryRow
    event: EventRow
    subscription: SubscriptionRow


@dataclass(frozen=True, slots=True)
class ReviewRow:
    id: int
    finding_id: int
    verdict: Verdict
    note: str | None
    reviewer: str | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class ContentStatusRow:
    item_key: str
    state: ContentState
    first_alert_at: datetime
    changed_at: datetime
    last_checked_at: datetime
    detail: JSONObject


@dataclass(frozen=True, slots=True)
class RetractionRow:
    finding_id: int
    reason: RetractionReason
    detail: str | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Provenance:
    """Where a finding's item was seen: its first recorded location, or, once that
    location is gone (its target was removed), what the finding.created event said."""

    path: str | None
    root_cid: str | None
    target_id: int | None
    target_url: str | None
    gateway: str | None
    source: ProvenanceSource


@dataclass(frozen=True, slots=True)
class FindingView:
    """A finding with what an analyst needs beside it: the item, where it was seen,
    its latest review and its retraction."""

    finding: FindingRow
    cid: str | None
    media_type: str | None
    size: int | None
    provenance: Provenance
    review: ReviewRow | None  # the latest
    retraction: RetractionRow | None


@dataclass(frozen=True, slots=True)
class FindingFilter:
    """Which findings a page holds; every field narrows, None leaves it open."""

    list_name: str | None = None
    label: str | None = None  # one label exactly as stored ("terrorism", "key=value")
    target_id: int | None = None  # the item was seen at a location of this target
    review: ReviewState | None = None  # by the finding's latest review
    since: datetime | None = None  # recorded at or after
    # Only findings whose finding.created event has a delivery (any status) to a
    # subscription owned by this principal.
    delivered_to: str | None = None
    # By the item's takedown tracking (its content status); an item never checked has
    # no state, so any value here leaves its findings out.
    content: ContentState | None = None


class FindingOrder(StrEnum):
    """The order a findings page is in: NEWEST recorded first (behind an id cursor), or
    PRIORITY: exact and denylist matches before perceptual ones, then by label weight
    (heaviest first), then closest match first, then newest (paged by offset)."""

    NEWEST = "newest"
    PRIORITY = "priority"


# The list name of weights that apply to every list.
ALL_LISTS = "*"


@dataclass(frozen=True, slots=True)
class LabelWeight:
    """How much one label weighs in the priority queue, on one list or on every list (ALL_LISTS)."""

    list_name: str
    label: str
    weight: float


@dataclass(frozen=True, slots=True)
class LabelWeights:
    """The queue's label weights: a finding weighs the largest weight of its labels, each
    label weighing what its own list gives it, or else what ALL_LISTS gives it; a finding
    none of whose labels is weighted weighs 0. Labels are matched exactly, as stored."""

    entries: tuple[LabelWeight, ...] = ()

    @classmethod
    def from_config(cls, by_list: Mapping[str, Mapping[str, float]]) -> LabelWeights:
        """From `[console.label_weights]` (list name or "*" -> label -> weight); ValueError
        for a weight that is not a finite number (NaN has no place in an order)."""
        entries: list[LabelWeight] = []
        for list_name, labels in by_list.items():
            for label, weight in labels.items():
                if not math.isfinite(weight):
                    raise ValueError(f"console.label_weights.{list_name}.{label}: {weight} is not a finite number")
                entries.append(LabelWeight(list_name, label, float(weight)))
        return cls(tuple(entries))

    def overridden(self, entry: LabelWeight) -> tuple[str, ...]:
        """The lists whose own weight for `entry`'s label replaces this ALL_LISTS one (none
        for a list's own entry)."""
        if entry.list_name != ALL_LISTS:
            return ()
        return tuple(sorted({e.list_name for e in self.entries if e.label == entry.label and e.list_name != ALL_LISTS}))

    def of(self, list_name: str, labels: Iterable[str]) -> float:
        """What a finding of `list_name` with `labels` weighs."""
        own = {e.label: e.weight for e in self.entries if e.list_name == list_name}
        every = {e.label: e.weight for e in self.entries if e.list_name == ALL_LISTS}
        weights = [own[label] if label in own else every[label] for label in labels if label in own or label in every]
        return max(weights, default=0.0)


@dataclass(frozen=True, slots=True)
class FindingFacets:
    """What the findings can be filtered by: the distinct list names and labels among them,
    sorted; `more_lists` / `more_labels`: there are more than the bound kept."""

    lists: tuple[str, ...]
    labels: tuple[str, ...]
    more_lists: bool = False
    more_labels: bool = False


@dataclass(frozen=True, slots=True)
class PlacedLocation:
    location: LocationRow
    target_url: str | None


@dataclass(frozen=True, slots=True)
class DeliveryReport:
    delivery: DeliveryRow
    event_type: str
    subscription_url: str | None  # None once the subscription was removed


@dataclass(frozen=True, slots=True)
class FindingDetail:
    """Everything known about one finding: provenance, review history, content state, deliveries."""

    view: FindingView
    item: ItemRow | None
    locations: tuple[PlacedLocation, ...]
    reviews: tuple[ReviewRow, ...]
    content: ContentStatusRow | None
    events: tuple[EventRow, ...]
    deliveries: tuple[DeliveryReport, ...]


@dataclass(frozen=True, slots=True)
class AuditedReview:
    """A review with what it was about (the audit trail across findings)."""

    review: ReviewRow
    list_name: str
    entry_id: str
    item_key: str
