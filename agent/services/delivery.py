"""Delivering a chosen few deliveries now, from a command, and nothing else.

`webhooks test` and `webhooks replay --now` send what they themselves queued. The worker
(agent.alerts.delivery.WebhookDelivery) leases whatever is due; given a `ScopedQueue` in
place of the store, it sees only the deliveries of the chosen events. A lease can take rows
outside the scope (the store has no per-event lease): those are handed back untouched
(same status, attempts and due time) after each round, and their lease, taken under a node
name of this call only, would expire by itself if the command died in between."""

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
        skip = set(skip_subscriptions)
        if self._subscription_id is not None:
            # Rows of other subscriptions are never leased at all.
            skip.update(s.id for s in await self._store.subscriptions.all() if s.id != self._subscription_id)
        jobs = await self._store.outbox.lease(
            node, limit=limit, lease_s=lease_s, now=now, skip_subscriptions=sorted(skip)
        )
        mine = [job for job in jobs if self._in_scope(job)]
        self.attempted += len(mine)
        return mine

    def _in_scope(self, job: DeliveryJob) -> bool:
        if self._subscription_id is not None and job.subscription.id != self._subscription_id:
            return False
        return job.event.id in self._events

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
    # A node name of this call only, so handing back what it leased touches nothing else.
    node = f"cli-{settings.agent.node_name or 'local'}-{secrets.token_hex(4)}"
    async with WebhookDelivery(
        queue,
        NetGuard.from_settings(settings.alerts),
        node,
        timeout_s=settings.alerts.delivery_timeout_s,
        # One lease round takes every due row ahead of ours at once (handed back after),
        # so the chosen deliveries are reached in the first round.
        batch=10_000,
    ) as worker:
        while True:
            before = queue.attempted
            try:
                await worker.run_once()
            finally:
                # Out-of-scope rows the lease took; the scoped ones have had their attempt recorded.
                await store.outbox.release_leases(node)
            if queue.attempted == before:
                return queue.attempted
