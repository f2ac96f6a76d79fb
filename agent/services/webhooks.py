"""Webhook subscriptions: add (validated), list, remove, rotate, enable, test, replay.

What is refused is refused here, so every front door refuses the same: a URL the SSRF guard
blocks, an unknown event type, a list name nothing configures or synced (a subscription that
could never fire)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from agent.model.status import DeliveryStatus
from agent.model.time import utcnow
from agent.services.delivery import deliver_now
from agent.services.errors import Invalid, NotFound
from agent.services.lists import ListsService

if TYPE_CHECKING:
    from agent.config import Settings
    from agent.model.records import DeliveryRow, SubscriptionRow
    from agent.store import Store


@dataclass(frozen=True, slots=True)
class SubscriptionRequest:
    url: str
    lists: tuple[str, ...] = ()
    labels: tuple[str, ...] = ()
    targets: tuple[int, ...] = ()
    events: tuple[str, ...] = ()
    max_in_flight: int = 4
    description: str | None = None
    # Accept list names neither configured nor synced yet (a list about to be added).
    allow_unknown_lists: bool = False


@dataclass(frozen=True, slots=True)
class NewSubscription:
    subscription: SubscriptionRow
    # Shown once: the store keeps it for signing but no command shows it again.
    secret: str
    # Labels as given -> as stored, where the lists' spelling differs (key=value, case).
    relabelled: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class Rotation:
    secret: str
    # The previous secret keeps signing beside the new one until then.
    previous_until: datetime


@dataclass(frozen=True, slots=True)
class Enabled:
    before: SubscriptionRow
    pending: int


@dataclass(frozen=True, slots=True)
class TestDelivery:
    """What became of a webhook.test delivery, and of its subscription after it."""

    delivery: DeliveryRow
    subscription: SubscriptionRow | None
    waited_s: float
    delivered: bool = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "delivered", self.delivery.status == DeliveryStatus.SUCCEEDED)


class WebhooksService:
    def __init__(self, store: Store, settings: Settings, lists: ListsService) -> None:
        self._store = store
        self._settings = settings
        self._lists = lists

    async def add(self, request: SubscriptionRequest) -> NewSubscription:
        from agent.alerts.events import normalise_label
        from agent.alerts.signing import new_secret
        from agent.model.events import EVENT_TYPES
        from agent.net.addresses import BlockedDestination
        from agent.net.guard import NetGuard

        try:
            NetGuard.from_settings(self._settings.alerts).check_url(request.url)
        except BlockedDestination as exc:
            raise Invalid(f"{request.url}: {exc.reason}") from exc
        unknown = [k for k in request.events if k not in EVENT_TYPES]
        if unknown:
            raise Invalid(f"unknown event types {unknown}; known: {', '.join(EVENT_TYPES)}")
        if request.lists and not request.allow_unknown_lists:
            known = await self._lists.known_names()
            missing = [name for name in request.lists if name not in known]
            if missing:
                # A misspelt list would make a subscription that never fires, silently.
                raise Invalid(
                    f"unknown list{'s' if len(missing) > 1 else ''} {', '.join(missing)}; known: "
                    f"{', '.join(known) if known else 'none (no [lists] source configured and none synced yet)'}. "
                    "Use --allow-unknown-lists for a list not synced yet."
                )
        labels = [normalise_label(label) for label in request.labels]
        secret = new_secret()
        row = await self._store.subscriptions.add(
            request.url,
            secret,
            lists=list(request.lists),
            labels=list(dict.fromkeys(labels)),
            targets=list(request.targets),
            event_types=list(request.events),
            max_in_flight=request.max_in_flight,
            description=request.description,
        )
        pairs = zip(request.labels, labels, strict=True)
        relabelled = tuple((given, stored) for given, stored in pairs if given != stored)
        return NewSubscription(row, secret, relabelled)

    async def all(self) -> list[SubscriptionRow]:
        return list(await self._store.subscriptions.all())

    async def remove(self, subscription_id: int) -> None:
        """Remove a subscription and its pending deliveries."""
        if not await self._store.subscriptions.remove(subscription_id):
            raise NotFound(f"no subscription {subscription_id}")

    async def rotate(self, subscription_id: int, grace_s: int | None = None) -> Rotation:
        """A new secret; the old one signs beside it for `grace_s` (default from the config)."""
        from agent.alerts.signing import new_secret

        secret = new_secret()
        grace = self._settings.alerts.rotation_grace_s if grace_s is None else grace_s
        until = utcnow() + timedelta(seconds=grace)
        if await self._store.subscriptions.rotate_secret(subscription_id, secret, until) is None:
            raise NotFound(f"no subscription {subscription_id}")
        return Rotation(secret, until)

    async def enable(self, subscription_id: int) -> Enabled:
        """Re-enable (same secret, failure streak cleared); its kept pending deliveries go out again."""
        store = self._store
        before = await self._subscription(subscription_id)
        await store.subscriptions.set_enabled(subscription_id, True)
        kept = await store.outbox.deliveries_of(subscription_id=subscription_id)
        return Enabled(before, sum(1 for d in kept if d.status == DeliveryStatus.PENDING))

    async def test(self, subscription_id: int) -> TestDelivery:
        """Queue a signed webhook.test event for this subscription and send that delivery
        (and no other) now; wait, bounded, if another agent leased it first."""
        from agent.alerts.events import test_event

        store = self._store
        sub = await self._subscription(subscription_id)
        if not sub.enabled:
            # Deliveries of a disabled subscription are never leased: say so instead of queueing a test.
            raise Invalid(
                f"subscription {subscription_id} is disabled ({sub.disabled_reason}); "
                f"`dweb-agent webhooks enable {subscription_id}` re-enables it"
            )
        wait_s = self._settings.alerts.delivery_timeout_s + 10.0
        event = test_event(sub)
        await store.outbox.emit([event])
        await deliver_now(self._settings, store, [event.id], subscription_id)
        deadline = time.monotonic() + wait_s
        delivery = (await store.outbox.deliveries_of(event_id=event.id))[0]
        while delivery.attempts == 0 and delivery.status == DeliveryStatus.PENDING and time.monotonic() < deadline:
            await asyncio.sleep(0.2)  # another agent's answer, recorded in the shared database
            delivery = (await store.outbox.deliveries_of(event_id=event.id))[0]
        return TestDelivery(delivery, await store.subscriptions.get(subscription_id), wait_s)

    async def replay(self, since: datetime, subscription_id: int | None = None, *, now: bool = False) -> int:
        """Queue again every delivery of the events created since `since` (same webhook-id, so
        receivers can de-duplicate); with `now`, send those (and only those) at once."""
        store = self._store
        # Chosen before the replay: what is sent now is a subset of what this call re-queued.
        event_ids = [e.id for e in await store.outbox.events(limit=2**31 - 1, since=since)] if now else []
        count = int(await store.outbox.replay(since, subscription_id))
        if now:
            await deliver_now(self._settings, store, event_ids, subscription_id)
        return count

    async def _subscription(self, subscription_id: int) -> SubscriptionRow:
        sub = await self._store.subscriptions.get(subscription_id)
        if sub is None:
            raise NotFound(f"no subscription {subscription_id}")
        return sub
