"""Webhook events: their types and typed payloads.

A delivered body is `{"type", "timestamp", "data"}`; each payload class here is one
event type's `data`, and its `to_json()` is the JSON edge: it renders exactly the
object docs/events.schema.json documents (receivers parse it, so a renamed or
reordered key is a breaking change). Events carry hashes and locators, never media
bytes. Who receives an event and its id are decided in agent.alerts.events."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, ClassVar

from agent.model.finding import MatchedOn
from agent.model.records import FindingRow
from agent.model.signals import ItemSignals
from agent.model.status import RetractionReason
from agent.model.time import iso_z


class EventType(StrEnum):
    FINDING_CREATED = "finding.created"
    FINDING_RETRACTED = "finding.retracted"
    CONTENT_UNAVAILABLE = "content.unavailable"
    CONTENT_AVAILABLE = "content.available"
    WEBHOOK_TEST = "webhook.test"


# In the order `webhooks add --events` lists them in its error message.
EVENT_TYPES: tuple[EventType, ...] = tuple(EventType)


@dataclass(frozen=True, slots=True)
class FindingRef:
    """A finding as an alert names it: enough to review it and to know what matched."""

    id: int | None
    list_name: str
    entry: str
    entry_id: str
    signal_type: MatchedOn
    distance: float
    labels: tuple[str, ...]
    query: str | None
    retroactive: bool
    created_at: datetime | None

    @classmethod
    def of(cls, f: FindingRow) -> FindingRef:
        return cls(
            id=f.id,
            list_name=f.list_name,
            entry=f.entry_value,
            entry_id=f.entry_id,
            signal_type=f.signal_type,
            distance=f.distance,
            labels=tuple(f.labels),
            query=f.query,
            retroactive=f.retroactive,
            created_at=f.created_at,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "list": self.list_name,
            "entry": self.entry,
            "entry_id": self.entry_id,
            "signal_type": self.signal_type.value,
            "distance": self.distance,
            "labels": list(self.labels),
            "query": self.query,
            "retroactive": self.retroactive,
            "created_at": iso_z(self.created_at),
        }


@dataclass(frozen=True, slots=True)
class ItemContext:
    """What the alert says about the content, besides the finding."""

    key: str
    cid: str | None
    path: str
    root: str | None
    target_id: int | None
    target_url: str | None
    size: int | None
    media_type: str | None
    signals: ItemSignals
    first_seen_at: datetime | None = None

    def signals_view(self) -> dict[str, Any]:
        """The report's `signals` object, as the alert sends it."""
        return self.signals.to_view()


@dataclass(frozen=True, slots=True)
class FindingCreated:
    """A new match; `links` are the gateway URLs where a human can look at the content."""

    type: ClassVar[EventType] = EventType.FINDING_CREATED

    finding: FindingRef
    item: ItemContext
    links: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        item = self.item
        return {
            "finding": self.finding.to_json(),
            "item": {
                "key": item.key,
                "cid": item.cid,
                "path": item.path,
                "size": item.size,
                "media_type": item.media_type,
                "signals": item.signals_view(),
                "first_seen_at": iso_z(item.first_seen_at),
            },
            # A target without a URL is one that no longer exists: said as null, not {"id": n}.
            "target": {"id": item.target_id, "url": item.target_url} if item.target_url else None,
            "root": item.root,
            "links": list(self.links),
        }


@dataclass(frozen=True, slots=True)
class FindingRetracted:
    """A finding.created alert withdrawn: reviewed as a false positive, or its entry deleted."""

    type: ClassVar[EventType] = EventType.FINDING_RETRACTED

    finding: FindingRef
    reason: RetractionReason
    note: str | None
    retracted_at: datetime

    def to_json(self) -> dict[str, Any]:
        return {
            "finding": self.finding.to_json(),
            "reason": self.reason.value,
            "note": self.note,
            "retracted_at": iso_z(self.retracted_at),
        }


@dataclass(frozen=True, slots=True)
class ContentChanged:
    """Matched content became unavailable (taken down) or available again.

    `gateways` is the probe's per-gateway answer as stored (`{url: {status, verdict}}`),
    passed through as the JSON it already is."""

    available: bool
    item_key: str
    cid: str
    first_alert_at: datetime
    checked_at: datetime
    gateways: Mapping[str, Any]
    providers: int | None
    reason: str | None

    @property
    def type(self) -> EventType:
        return EventType.CONTENT_AVAILABLE if self.available else EventType.CONTENT_UNAVAILABLE

    @property
    def time_to_removal_s(self) -> float:
        """The figure takedown work is judged by: how long the content stayed up after the first alert."""
        return round((self.checked_at - self.first_alert_at).total_seconds(), 3)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "item": {"key": self.item_key, "cid": self.cid},
            "first_alert_at": iso_z(self.first_alert_at),
            "checked_at": iso_z(self.checked_at),
            "gateways": dict(self.gateways),
            "providers": self.providers,
            "reason": self.reason,
        }
        if not self.available:
            data["time_to_removal_s"] = self.time_to_removal_s
        return data


@dataclass(frozen=True, slots=True)
class WebhookTest:
    """`webhooks test`: a delivery that announces nothing, to check the endpoint."""

    type: ClassVar[EventType] = EventType.WEBHOOK_TEST

    subscription_id: int
    message: str = "a test delivery from dweb-agent"

    def to_json(self) -> dict[str, Any]:
        return {"subscription_id": self.subscription_id, "message": self.message}


__all__ = [
    "EVENT_TYPES",
    "ContentChanged",
    "EventPayload",
    "EventType",
    "FindingCreated",
    "FindingRef",
    "FindingRetracted",
    "ItemContext",
    "WebhookTest",
]

EventPayload = FindingCreated | FindingRetracted | ContentChanged | WebhookTest
