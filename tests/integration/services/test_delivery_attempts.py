"""A webhook's recent delivery attempts, as the console shows them, on SQLite and PostgreSQL:
newest first, each with when, the receiver's status, how long it took and what was sent;
another platform's subscription is not found."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.alerts.events import new_event_id
from agent.config import AgentSettings, AlertSettings, Settings
from agent.model.records import NewEvent
from agent.model.status import AttemptOutcome, DeliveryStatus
from agent.model.time import utcnow
from agent.services import Invalid, NotFound, Services
from agent.services.webhooks import SubscriptionRequest
from agent.store import Store
from tests.support.webhook_receiver import WebhookReceiver


def _services(tmp_path: Path, store: Store) -> Services:
    settings = Settings(
        agent=AgentSettings(data_dir=tmp_path / "data", health_port=0),
        alerts=AlertSettings(allow_hosts=["127.0.0.1"], delivery_timeout_s=5),
    )
    return Services(settings, store)


async def _queue(store: Store, subscription_id: int, event_type: str = "finding.created") -> str:
    event = NewEvent(new_event_id(), event_type, {"finding": {"id": 0}}, (subscription_id,))
    await store.outbox.emit([event])
    return event.id


async def test_attempts_are_listed_newest_first_with_status_latency_and_what_was_sent(
    store: Store, tmp_path: Path
) -> None:
    """Two failed tries and a success of one delivery, a refused connection of another, and a
    real test delivery to a receiver: listed newest first, each with its attempt number, HTTP
    status (None without an answer), error, duration, event and the delivery's status now."""
    svc = _services(tmp_path, store)
    async with WebhookReceiver([]) as receiver:
        made = await svc.webhooks.add(SubscriptionRequest(receiver.url("/hook")))
        receiver.secrets = [made.secret]
        sub = made.subscription
        other = await store.subscriptions.add("https://other.example/h", "whsec_" + "B" * 43)
        first = await _queue(store, sub.id)
        second = await _queue(store, sub.id, "content.unavailable")
        elsewhere = await _queue(store, other.id)
        [d1] = await store.outbox.deliveries_of(event_id=first)
        [d2] = await store.outbox.deliveries_of(event_id=second)
        [d3] = await store.outbox.deliveries_of(event_id=elsewhere)
        out = store.outbox
        later = utcnow()
        await out.record_attempt(
            d1.id, outcome="retry", http_status=503, error="busy", duration_ms=120, next_attempt_at=later
        )
        await out.record_attempt(
            d2.id, outcome="retry", http_status=None, error="refused", duration_ms=4, next_attempt_at=later
        )
        await out.record_attempt(
            d1.id, outcome="retry", http_status=500, error="oops", duration_ms=250, next_attempt_at=later
        )
        await out.record_attempt(
            d3.id, outcome=AttemptOutcome.FAILED.value, http_status=410, error="gone", duration_ms=9
        )
        await out.record_attempt(d1.id, outcome="succeeded", http_status=204, error=None, duration_ms=31)
        tested = await svc.webhooks.test(sub.id)
    assert tested.delivered

    attempts = await svc.webhooks.attempts(sub.id)

    seen = [(a.event_id, a.attempt, a.http_status, a.error, a.delivery_status) for a in attempts]
    assert seen == [
        (tested.delivery.event_id, 1, 204, None, DeliveryStatus.SUCCEEDED),
        (first, 3, 204, None, DeliveryStatus.SUCCEEDED),
        (first, 2, 500, "oops", DeliveryStatus.SUCCEEDED),
        (second, 1, None, "refused", DeliveryStatus.PENDING),
        (first, 1, 503, "busy", DeliveryStatus.SUCCEEDED),
    ]
    assert [a.duration_ms for a in attempts[1:]] == [31, 250, 4, 120]
    assert attempts[0].duration_ms >= 0 and attempts[0].event_type == "webhook.test"
    assert [a.event_type for a in attempts[1:]] == ["finding.created"] * 2 + ["content.unavailable", "finding.created"]
    assert [a.delivery_id for a in attempts[1:]] == [d1.id, d1.id, d2.id, d1.id]
    assert [a.at for a in attempts] == sorted((a.at for a in attempts), reverse=True)
    assert len(await svc.webhooks.attempts(sub.id, limit=2)) == 2
    assert [a.http_status for a in await svc.webhooks.attempts(other.id)] == [410]


async def test_another_platforms_subscription_and_a_missing_one_are_not_found(store: Store, tmp_path: Path) -> None:
    """A platform sees its own subscription's attempts; another's is NotFound to it, as one
    that does not exist; the CLI (no principal) sees every one; a bad limit is refused."""
    svc = _services(tmp_path, store)
    acme = await store.subscriptions.add("https://acme.example/h", "whsec_" + "A" * 43, owner="acme")
    [delivery] = await store.outbox.deliveries_of(event_id=await _queue(store, acme.id))
    await store.outbox.record_attempt(delivery.id, outcome="succeeded", http_status=200, error=None, duration_ms=7)

    assert [a.http_status for a in await svc.webhooks.attempts(acme.id, visible_to="acme")] == [200]
    assert [a.http_status for a in await svc.webhooks.attempts(acme.id)] == [200]
    with pytest.raises(NotFound, match=f"no subscription {acme.id}"):
        await svc.webhooks.attempts(acme.id, visible_to="other")
    with pytest.raises(NotFound, match=f"no subscription {acme.id + 1}"):
        await svc.webhooks.attempts(acme.id + 1)
    with pytest.raises(Invalid, match="limit"):
        await svc.webhooks.attempts(acme.id, limit=0)
    assert (
        await svc.webhooks.attempts((await store.subscriptions.add("https://x.example/h", "whsec_" + "C" * 43)).id)
        == []
    )
