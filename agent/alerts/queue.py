"""The part of the store the delivery worker uses, as a port.

`agent.store.Store` satisfies it structurally (its `outbox` and `subscriptions`
repositories; nothing here imports the store), so alerts stay importable without
SQLAlchemy and a caller may hand the worker a narrower queue (`dweb-agent webhooks
test` delivers only its own event)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from agent.model.records import DeliveryJob


class DeliveryLeases(Protocol):
    """The outbox: deliveries leased to a worker, and the end of each lease."""

    async def lease(
        self,
        node: str,
        *,
        limit: int,
        lease_s: float,
        now: datetime | None = None,
        skip_subscriptions: Sequence[int] = (),
    ) -> Sequence[DeliveryJob]:
        """Due deliveries of enabled subscriptions, leased to `node` for `lease_s`."""
        ...

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
        """End the lease with the attempt's outcome (and audit it)."""
        ...


class SubscriptionHealth(Protocol):
    """What the worker records of a subscription: its failure streak, and disabling it."""

    async def set_failing_since(self, subscription_id: int, since: datetime | None) -> None:
        """Start (only if not started) or clear a subscription's failure streak."""
        ...

    async def set_enabled(self, subscription_id: int, enabled: bool, reason: str | None = None) -> object: ...


class DeliveryQueue(Protocol):
    @property
    def outbox(self) -> DeliveryLeases: ...

    @property
    def subscriptions(self) -> SubscriptionHealth: ...
