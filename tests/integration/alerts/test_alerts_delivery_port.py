"""WebhookDelivery needs only its DeliveryQueue port: a queue that is not the store
(here an in-memory one) gets the same signed POSTs and the same outcomes recorded,
so an HTTP API or another outbox can drive the worker without SQLAlchemy."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest

from agent.alerts.delivery import WebhookDelivery
from agent.alerts.queue import DeliveryQueue
from agent.alerts.signing import new_secret
from agent.alerts.verdicts import GONE_REASON
from agent.model.records import DeliveryJob, DeliveryRow, EventRow, SubscriptionRow
from agent.model.status import DeliveryStatus
from agent.net.guard import NetGuard
from tests.support.webhook_receiver import WebhookReceiver

GUARD = NetGuard(allow_hosts=frozenset({"127.0.0.1"}))
NOW = datetime.now(UTC)


@dataclass
class Attempt:
    delivery_id: int
    outcome: str
    http_status: int | None
    error: str | None
    next_attempt_at: datetime | None


@dataclass
class MemoryQueue:
    """Leases every job once; records what the worker tells it."""

    jobs: list[DeliveryJob]
    attempts: list[Attempt] = field(default_factory=list)
    failing_since: dict[int, datetime | None] = field(default_factory=dict)
    disabled: dict[int, str | None] = field(default_factory=dict)

    @property
    def outbox(self) -> MemoryQueue:
        return self

    @property
    def subscriptions(self) -> MemoryQueue:
        return self

    async def lease(
        self,
        node: str,
        *,
        limit: int,
        lease_s: float,
        now: datetime | None = None,
        skip_subscriptions: Sequence[int] = (),
    ) -> list[DeliveryJob]:
        leased, self.jobs = self.jobs[:limit], self.jobs[limit:]
        return leased

    async def record_attempt(
        self,
        delivery_id: int,
        *,
        outcome: str,
        http_status: int | None,
        error: str | None,
        duration_ms: int,
        next_attempt_at: datetime | None = None,
    ) -> None:
        self.attempts.append(Attempt(delivery_id, outcome, http_status, error, next_attempt_at))

    async def set_failing_since(self, subscription_id: int, since: datetime | None) -> None:
        self.failing_since[subscription_id] = since

    async def set_enabled(self, subscription_id: int, enabled: bool, reason: str | None = None) -> bool:
        self.disabled[subscription_id] = None if enabled else reason
        return True


def job(delivery_id: int, sub: SubscriptionRow, attempts: int = 0) -> DeliveryJob:
    event = EventRow(
        f"evt_{delivery_id:04d}", "webhook.test", NOW, {"subscription_id": sub.id, "message": "hi"}, None, None
    )
    row = DeliveryRow(delivery_id, event.id, sub.id, DeliveryStatus.PENDING, attempts, NOW, None, None, None, NOW, None)
    return DeliveryJob(row, event, sub)


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[WebhookReceiver, str]]:
    secret = new_secret()
    async with WebhookReceiver([secret]) as r:
        yield r, secret


async def test_the_worker_runs_on_any_delivery_queue(receiver: tuple[WebhookReceiver, str]) -> None:
    rx, secret = receiver
    ok = SubscriptionRow(id=1, url=rx.url("/ok"), secret=secret)
    flaky = SubscriptionRow(id=2, url=rx.url("/flaky"), secret=secret)
    gone = SubscriptionRow(id=3, url=rx.url("/gone"), secret=secret)
    rx.script("/flaky", status=500)
    rx.script("/gone", status=410)
    queue = MemoryQueue([job(1, ok), job(2, flaky), job(3, gone)])
    port: DeliveryQueue = queue  # the port is structural: no base class, no registration
    async with WebhookDelivery(port, GUARD, "node-a", now=lambda: NOW, rng=random.Random(1), jitter=0.0) as worker:
        assert await worker.run_once() == 3
    assert all(r.verified for r in rx.received) and {r.webhook_id for r in rx.received} == {
        "evt_0001",
        "evt_0002",
        "evt_0003",
    }
    by_id = {a.delivery_id: a for a in queue.attempts}
    assert (by_id[1].outcome, by_id[1].http_status) == ("succeeded", 204)
    assert (by_id[2].outcome, by_id[2].error) == ("retry", "HTTP 500")
    assert by_id[2].next_attempt_at == NOW + timedelta(seconds=5)  # the schedule's second step
    assert queue.failing_since == {2: NOW}
    assert (by_id[3].outcome, queue.disabled) == ("cancelled", {3: GONE_REASON})
    # The outcome reaches the port as the plain string the store's column holds.
    assert all(type(a.outcome) is str for a in queue.attempts)
