"""Webhook subscriptions: add (validated), list, remove, rotate, enable, test, replay, and
their recent delivery attempts.

What is refused is refused here, so every front door refuses the same: a URL the SSRF guard
blocks, an unknown event type, a list name nothing configures or synced (a subscription that
could never fire).

Owners: a subscription made through the API has its principal as `owner` (None: the CLI).
Every call taking `visible_to` acts as that principal: another's subscription is NotFound,
exactly as a missing one (its existence is not disclosed). Admins and the CLI pass none."""

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
    from aiohttp.abc import AbstractResolver

    from agent.config import Settings
    from agent.model.records import DeliveryAttemptView, DeliveryRow, SubscriptionRow
    from agent.store import Store


# The most delivery attempts one `attempts` call lists.
MAX_ATTEMPTS = 500


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
    # The API principal subscribing (None: the CLI). An owner's URL is an untrusted
    # caller's: its host name is also resolved now, and refused if it names a private address.
    owner: str | None = None


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
    def __init__(
        self, store: Store, settings: Settings, lists: ListsService, *, resolver: AbstractResolver | None = None
    ) -> None:
        self._store = store
        self._settings = settings
        self._lists = lists
        # What an owner's URL host is resolved with (None: the system's); tests pass a table.
        self._resolver = resolver

    async def add(self, request: SubscriptionRequest) -> NewSubscription:
        from agent.alerts.events import normalise_label
        from agent.alerts.signing import new_secret
        from agent.model.events import EVENT_TYPES

        await self._check_url(request.url, resolve=request.owner is not None)
        unknown = [k for k in request.events if k not in EVENT_TYPES]
        if unknown:
            raise Invalid(f"unknown event types {unknown}; known: {', '.join(EVENT_TYPES)}", field="events")
        if request.lists and not request.allow_unknown_lists:
            known = await self._lists.known_names()
            missing = [name for name in request.lists if name not in known]
            if missing:
                # A misspelt list would make a subscription that never fires, silently.
                raise Invalid(
                    f"unknown list{'s' if len(missing) > 1 else ''} {', '.join(missing)}; known: "
                    f"{', '.join(known) if known else 'none (no [lists] source configured and none synced yet)'}. "
                    "Use --allow-unknown-lists (API: allow_unknown_lists) for a list not synced yet.",
                    field="lists",
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
            owner=request.owner,
        )
        pairs = zip(request.labels, labels, strict=True)
        relabelled = tuple((given, stored) for given, stored in pairs if given != stored)
        return NewSubscription(row, secret, relabelled)

    async def all(self, *, visible_to: str | None = None) -> list[SubscriptionRow]:
        return list(await self._store.subscriptions.all(owner=visible_to))

    async def get(self, subscription_id: int, *, visible_to: str | None = None) -> SubscriptionRow:
        """One subscription; NotFound if there is none, or it is not `visible_to`'s."""
        sub = await self._store.subscriptions.get(subscription_id)
        if sub is None or (visible_to is not None and sub.owner != visible_to):
            raise NotFound(f"no subscription {subscription_id}")
        return sub

    async def attempts(
        self, subscription_id: int, *, visible_to: str | None = None, limit: int = 50
    ) -> list[DeliveryAttemptView]:
        """The subscription's latest delivery attempts, newest first (when, the receiver's
        HTTP status, how long it took, what was sent); NotFound as `get`."""
        if not 1 <= limit <= MAX_ATTEMPTS:
            raise Invalid(f"limit must be between 1 and {MAX_ATTEMPTS}, not {limit}", field="limit")
        await self.get(subscription_id, visible_to=visible_to)
        return list(await self._store.outbox.attempts_of(subscription_id, limit=limit))

    async def remove(self, subscription_id: int, *, visible_to: str | None = None) -> None:
        """Remove a subscription and its pending deliveries."""
        if visible_to is not None:
            await self.get(subscription_id, visible_to=visible_to)
        if not await self._store.subscriptions.remove(subscription_id):
            raise NotFound(f"no subscription {subscription_id}")

    async def rotate(
        self, subscription_id: int, grace_s: int | None = None, *, visible_to: str | None = None
    ) -> Rotation:
        """A new secret; the old one signs beside it for `grace_s` (default from the config)."""
        from agent.alerts.signing import new_secret

        if visible_to is not None:
            await self.get(subscription_id, visible_to=visible_to)
        secret = new_secret()
        grace = self._settings.alerts.rotation_grace_s if grace_s is None else grace_s
        until = utcnow() + timedelta(seconds=grace)
        if await self._store.subscriptions.rotate_secret(subscription_id, secret, until) is None:
            raise NotFound(f"no subscription {subscription_id}")
        return Rotation(secret, until)

    async def enable(self, subscription_id: int) -> Enabled:
        """Re-enable (same secret, failure streak cleared); its kept pending deliveries go out again."""
        store = self._store
        before = await self.get(subscription_id)
        await store.subscriptions.set_enabled(subscription_id, True)
        kept = await store.outbox.deliveries_of(subscription_id=subscription_id)
        return Enabled(before, sum(1 for d in kept if d.status == DeliveryStatus.PENDING))

    async def test(self, subscription_id: int, *, visible_to: str | None = None) -> TestDelivery:
        """Queue a signed webhook.test event for this subscription and send that delivery
        (and no other) now; wait, bounded, if another agent leased it first."""
        from agent.alerts.events import test_event

        store = self._store
        sub = await self.get(subscription_id, visible_to=visible_to)
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

    async def replay(
        self,
        since: datetime,
        subscription_id: int | None = None,
        *,
        now: bool = False,
        visible_to: str | None = None,
    ) -> int:
        """Queue again every delivery of the events created since `since` (same webhook-id, so
        receivers can de-duplicate); with `now`, send those (and only those) at once.
        With `visible_to` and no subscription id: only that principal's subscriptions'."""
        store = self._store
        if visible_to is None:
            scope: list[int | None] = [subscription_id]
        elif subscription_id is not None:
            scope = [(await self.get(subscription_id, visible_to=visible_to)).id]
        else:
            # The outbox replays one subscription or all: an owner's are replayed one by one.
            scope = [s.id for s in await self.all(visible_to=visible_to)]
        # Chosen before the replay: what is sent now is a subset of what this call re-queued.
        event_ids = [e.id for e in await store.outbox.events(limit=2**31 - 1, since=since)] if now and scope else []
        count = 0
        for sub_id in scope:
            count += int(await store.outbox.replay(since, sub_id))
            if now:
                await deliver_now(self._settings, store, event_ids, sub_id)
        return count

    async def _check_url(self, url: str, *, resolve: bool) -> None:
        """Invalid unless the SSRF guard ([alerts] allow_hosts) allows `url`; with `resolve`,
        also unless its host name resolves to allowed addresses now. Delivery checks again
        at every connection, so a name that does not resolve now is no danger."""
        from agent.net.guard import NetGuard
        from agent.services.untrusted import refusal

        guard = NetGuard.from_settings(self._settings.alerts)
        if (refused := await refusal(guard, url, resolve=resolve, resolver=self._resolver)) is not None:
            raise Invalid(
                f"{url}: {refused.reason} (an operator may allow the host in [alerts] allow_hosts)", field="url"
            )
