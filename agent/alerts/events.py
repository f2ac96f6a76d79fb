"""Alert events: their types, ids, payloads and who receives them.

The delivered body is `{"type", "timestamp", "data"}` (Standard Webhooks'
recommended envelope); `data` is built here and documented by
docs/events.schema.json. Events carry hashes and locators, never media bytes."""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from agent.store import FindingRow, LocationRow, NewEvent, SubscriptionRow

FINDING_CREATED = "finding.created"
FINDING_RETRACTED = "finding.retracted"
CONTENT_UNAVAILABLE = "content.unavailable"
CONTENT_AVAILABLE = "content.available"
WEBHOOK_TEST = "webhook.test"
EVENT_TYPES = (FINDING_CREATED, FINDING_RETRACTED, CONTENT_UNAVAILABLE, CONTENT_AVAILABLE, WEBHOOK_TEST)


def new_event_id() -> str:
    """`evt_` + 48-bit milliseconds + 80 random bits (hex): unique and sortable by time."""
    return f"evt_{int(time.time() * 1000):012x}{os.urandom(10).hex()}"


def iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


def iso_seconds(value: datetime | None) -> str | None:
    """ISO 8601 UTC to the second (`2026-11-23T14:56:08Z`), as the CLI's JSON shows times."""
    if value is None:
        return None
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
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
    signals: dict[str, Any]
    first_seen_at: datetime | None = None


def gateway_links(gateways: Sequence[str], cid: str | None, root: str | None, path: str) -> list[str]:
    """Where a human can look at the content (path form under the root, and the item's own CID)."""
    links: list[str] = []
    for gw in gateways:
        base = gw.rstrip("/")
        if root and path and not path.startswith("ar:"):
            links.append(f"{base}/ipfs/{root}/{quote(path)}")
        if cid:
            links.append(f"{base}/ipfs/{cid}")
    return list(dict.fromkeys(links))


def finding_summary(f: FindingRow) -> dict[str, Any]:
    return {
        "id": f.id,
        "list": f.list_name,
        "entry": f.entry_value,
        "entry_id": f.entry_id,
        "signal_type": f.signal_type,
        "distance": f.distance,
        "labels": list(f.labels),
        "query": f.query,
        "retroactive": f.retroactive,
        "created_at": iso(f.created_at),
    }


def normalise_label(label: str) -> str:
    """A `--labels` value as stored in a subscription: `key=value` becomes the
    hash lists' `key:value` (TCAP and ThreatExchange CSV store
    `ideology:far-right`, `category:x`); a bare tag stays as it is."""
    label = label.strip()
    eq, colon = label.find("="), label.find(":")
    if eq > 0 and (colon < 0 or eq < colon):
        label = f"{label[:eq]}:{label[eq + 1 :]}"
    return label


def label_key(label: str) -> str:
    """The form labels are compared in: case-insensitive, `key=value` equal to
    `key:value`. Lists spell the same idea both ways (denylist hints are
    `reason=x`), and an operator should not have to know which list a label
    came from for a filter to fire."""
    return normalise_label(label).casefold()


def subscribed(
    sub: SubscriptionRow,
    event_type: str,
    *,
    list_name: str | None = None,
    labels: Iterable[str] = (),
    target_id: int | None = None,
) -> bool:
    """A subscription's filters: each empty filter means "all"."""
    if sub.event_types and event_type not in sub.event_types:
        return False
    if list_name is not None and sub.lists and list_name not in sub.lists:
        return False
    if sub.labels and not {label_key(x) for x in sub.labels} & {label_key(x) for x in labels}:
        return False
    if sub.targets and (target_id is None or target_id not in sub.targets):
        return False
    return True


def finding_created(
    f: FindingRow, item: ItemContext, gateways: Sequence[str], subs: Sequence[SubscriptionRow]
) -> NewEvent | None:
    recipients = tuple(
        s.id
        for s in subs
        if subscribed(s, FINDING_CREATED, list_name=f.list_name, labels=f.labels, target_id=item.target_id)
    )
    payload = {
        "finding": finding_summary(f),
        "item": {
            "key": item.key,
            "cid": item.cid,
            "path": item.path,
            "size": item.size,
            "media_type": item.media_type,
            "signals": item.signals,
            "first_seen_at": iso(item.first_seen_at),
        },
        "target": {"id": item.target_id, "url": item.target_url} if item.target_url else None,
        "root": item.root,
        "links": gateway_links(gateways, item.cid, item.root, item.path),
    }
    return NewEvent(new_event_id(), FINDING_CREATED, payload, recipients, finding_id=f.id, item_key=f.item_key)


def finding_retracted(
    f: FindingRow,
    reason: str,
    note: str | None,
    subs: Sequence[SubscriptionRow],
    recipients: Sequence[int],
    at: datetime,
) -> NewEvent | None:
    """Sent to the subscriptions that received the finding (and still want retractions)."""
    by_id = {s.id: s for s in subs}
    to = tuple(i for i in recipients if i in by_id and subscribed(by_id[i], FINDING_RETRACTED))
    if not to:
        return None
    payload = {"finding": finding_summary(f), "reason": reason, "note": note, "retracted_at": iso(at)}
    return NewEvent(new_event_id(), FINDING_RETRACTED, payload, to, finding_id=f.id, item_key=f.item_key)


def content_changed(
    item_key: str,
    cid: str,
    available: bool,
    first_alert_at: datetime,
    at: datetime,
    detail: dict[str, Any],
    subs: Sequence[SubscriptionRow],
    recipients: Sequence[int],
) -> NewEvent | None:
    event_type = CONTENT_AVAILABLE if available else CONTENT_UNAVAILABLE
    by_id = {s.id: s for s in subs}
    to = tuple(i for i in recipients if i in by_id and subscribed(by_id[i], event_type))
    if not to:
        return None
    payload: dict[str, Any] = {
        "item": {"key": item_key, "cid": cid},
        "first_alert_at": iso(first_alert_at),
        "checked_at": iso(at),
        "gateways": detail.get("gateways", {}),
        "providers": detail.get("providers"),
        "reason": detail.get("reason"),
    }
    if not available:
        # The figure takedown work is judged by: how long the content stayed up after the first alert.
        payload["time_to_removal_s"] = round((at - first_alert_at).total_seconds(), 3)
    return NewEvent(new_event_id(), event_type, payload, to, item_key=item_key)


def test_event(sub: SubscriptionRow) -> NewEvent:
    return NewEvent(
        new_event_id(),
        WEBHOOK_TEST,
        {"subscription_id": sub.id, "message": "a test delivery from dweb-agent"},
        (sub.id,),
    )


class FindingOutbox:
    """The store's outbox callback for one scanned item: builds finding.created events."""

    def __init__(self, item: ItemContext, gateways: Sequence[str]) -> None:
        self.item = item
        self.gateways = list(gateways)

    def __call__(
        self, new: list[FindingRow], location: LocationRow | None, subs: list[SubscriptionRow]
    ) -> list[NewEvent]:
        out = []
        for f in new:
            event = finding_created(f, self.item, self.gateways, subs)
            if event is not None:
                out.append(event)
        return out
