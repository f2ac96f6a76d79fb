"""Delivering a chosen few deliveries now, from a command, and nothing else.

`webhooks test` and `webhooks replay --now` send what they themselves queued. The worker
(agent.alerts.delivery.WebhookDelivery) leases whatever is due; given a `ScopedQueue` in
place of the store, its leases are narrowed in the store's query to the chosen events (and
subscription), so no other delivery is touched."""

from __future__ import annotations

import secrets
from collections.abc import Collection, Sequence
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from agent.config import Settings
    from agent.model.records import DeliveryJob
    from agent.store import Store


class ScopedQueue:
    """The store as the delivery worker sees it, its outbox limited to the deliveries of
    `event_ids` (and of `subscription_id` when given)."""

    def __init__(self, store: Store, event_ids: Collection[str], subscription_id: int | None = None) -> None:
        self._store = store
        self._events = frozenset(event_ids)
        self._subscription_id = subscription_id
        self.attempted = 0
        # The worker's port (agent.alerts.queue.DeliveryQueue): the scoped outbox is this
        # object; a subscription's failure streak and disabling go to the store as they are.
        self.outbox = self
        self.subscriptions = store.subscriptions

    async def lease(
        self,
        node: str,
        *,
        limit: int,
        lease_s: float,
        now: datetime | None = None,
        skip_subscriptions: Sequence[int] = (),
    ) -> list[DeliveryJob]:
        jobs = await self._store.outbox.lease(
            node,
            limit=limit,
            lease_s=lease_s,
            now=now,
            skip_subscriptions=skip_subscriptions,
            events_only=self._events,
            subscription_only=self._subscription_id,
        )
        self.attempted += len(jobs)
        return jobs

    async def record_attempt(
        self,
        delivery_id: int,
        *,
        outcome: str,
        http_status: int | None,
        error: str | None,
        duration_ms: int,
        next_attempt_at: datetime | None = None,
    ) -> object:
        return await self._store.outbox.record_attempt(
            delivery_id,
            outcome=outcome,
            http_status=http_status,
            error=error,
            duration_ms=duration_ms,
            next_attempt_at=next_attempt_at,
        )


async def deliver_now(
    settings: Settings, store: Store, event_ids: Collection[str], subscription_id: int | None = None
) -> int:
    """Send the due deliveries of `event_ids` now, round after round until none is left due;
    returns how many were attempted. Other deliveries stay as they were."""
    from agent.alerts.delivery import WebhookDelivery
    from agent.net.guard import NetGuard

    if not event_ids:
        return 0
    queue = ScopedQueue(store, event_ids, subscription_id)
    # A node name of this call only: a lease left by a command that died expires by itself
    # and never looks like an agent's own at its restart.
    node = f"cli-{settings.agent.node_name or 'local'}-{secrets.token_hex(4)}"
    async with WebhookDelivery(
        queue, NetGuard.from_settings(settings.alerts), node, timeout_s=settings.alerts.delivery_timeout_s
    ) as worker:
        while True:
            before = queue.attempted
            await worker.run_once()
            if queue.attempted == before:
                return queue.attempted
