"""Alert events: their ids, who receives them, and the outbox rows that carry them.

The payloads themselves are typed in agent.model.events; this module decides the
recipients (a subscription's filters) and turns a payload into the `NewEvent` the
store writes, rendering it with `to_json()` there, at the edge."""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import quote

from agent.model.events import (
    ContentChanged,
    EventPayload,
    EventType,
    FindingCreated,
    FindingRef,
    FindingRetracted,
    ItemContext,
    WebhookTest,
)
from agent.model.item_key import is_arweave_key
from agent.model.records import FindingRow, LocationRow, NewEvent, SubscriptionRow
from agent.model.status import RetractionReason

__all__ = [
    "FindingOutbox",
    "content_changed",
    "finding_created",
    "finding_retracted",
    "gateway_links",
    "label_key",
    "new_event",
    "new_event_id",
    "normalise_label",
    "subscribed",
    "test_event",
]


def new_event_id() -> str:
    """`evt_` + 48-bit milliseconds + 80 random bits (hex): unique and sortable by time."""
    return f"evt_{int(time.time() * 1000):012x}{os.urandom(10).hex()}"


def new_event(
    payload: EventPayload, recipients: Sequence[int], *, finding_id: int | None = None, item_key: str | None = None
) -> NewEvent:
    """The outbox row of one event: the typed payload becomes its JSON column here."""
    return NewEvent(
        new_event_id(),
        payload.type.value,
        payload.to_json(),
        tuple(recipients),
        finding_id=finding_id,
        item_key=item_key,
    )


def gateway_links(gateways: Sequence[str], cid: str | None, root: str | None, path: str) -> list[str]:
    """Where a human can look at the content (path form under the root, and the item's own CID)."""
    links: list[str] = []
    for gw in gateways:
        base = gw.rstrip("/")
        if root and path and not is_arweave_key(path):  # an Arweave item is at its key, under no root
            links.append(f"{base}/ipfs/{root}/{quote(path)}")
        if cid:
            links.append(f"{base}/ipfs/{cid}")
    return list(dict.fromkeys(links))


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
    return not sub.targets or (target_id is not None and target_id in sub.targets)


def _still_subscribed(
    event_type: EventType, subs: Sequence[SubscriptionRow], recipients: Sequence[int]
) -> tuple[int, ...]:
    """Of the subscriptions an earlier event went to, those that exist and still want this type."""
    by_id = {s.id: s for s in subs}
    return tuple(i for i in recipients if i in by_id and subscribed(by_id[i], event_type))


def finding_created(
    f: FindingRow, item: ItemContext, gateways: Sequence[str], subs: Sequence[SubscriptionRow]
) -> NewEvent | None:
    payload = FindingCreated(FindingRef.of(f), item, tuple(gateway_links(gateways, item.cid, item.root, item.path)))
    recipients = tuple(
        s.id
        for s in subs
        if subscribed(s, payload.type, list_name=f.list_name, labels=f.labels, target_id=item.target_id)
    )
    # Written even without recipients: the event is the finding's provenance
    # (`findings show` reads where the item was from it once its location is gone).
    return new_event(payload, recipients, finding_id=f.id, item_key=f.item_key)


def finding_retracted(
    f: FindingRow,
    reason: RetractionReason | str,
    note: str | None,
    subs: Sequence[SubscriptionRow],
    recipients: Sequence[int],
    at: datetime,
) -> NewEvent | None:
    """Sent to the subscriptions that received the finding (and still want retractions)."""
    to = _still_subscribed(EventType.FINDING_RETRACTED, subs, recipients)
    if not to:
        return None
    payload = FindingRetracted(FindingRef.of(f), RetractionReason(reason), note, at)
    return new_event(payload, to, finding_id=f.id, item_key=f.item_key)


def content_changed(
    item_key: str,
    cid: str,
    available: bool,
    first_alert_at: datetime,
    at: datetime,
    detail: Mapping[str, Any],
    subs: Sequence[SubscriptionRow],
    recipients: Sequence[int],
) -> NewEvent | None:
    """`detail` is the content state's stored JSON (`gateways`, `providers`, `reason`)."""
    payload = ContentChanged(
        available,
        item_key,
        cid,
        first_alert_at,
        at,
        gateways=detail.get("gateways", {}),
        providers=detail.get("providers"),
        reason=detail.get("reason"),
    )
    to = _still_subscribed(payload.type, subs, recipients)
    if not to:
        return None
    return new_event(payload, to, item_key=item_key)


def test_event(sub: SubscriptionRow) -> NewEvent:
    return new_event(WebhookTest(sub.id), (sub.id,))


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
