"""The service layer (agent.services) against a real SQLite store: the rules the CLI and
the daemon share, and the webhook commands sending only what they queued."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from agent.alerts.events import FindingOutbox, new_event_id
from agent.config import AgentSettings, AlertSettings, ListSettings, Settings
from agent.model.events import ItemContext
from agent.model.records import NewEvent
from agent.model.signals import ItemSignals, Signal, SignalType
from agent.model.status import DeliveryStatus, ItemState, Verdict
from agent.model.time import utcnow
from agent.services import Invalid, NotFound, Services
from agent.services.findings import ReviewRequest
from agent.services.webhooks import SubscriptionRequest
from agent.store import FindingRow, ItemRow, LocationRow, Store
from tests.support.webhook_receiver import WebhookReceiver

CID = "bafybeihchr7vmgjaasntayyatmp5sv6xza57iy2h4xj7g46bpjij6yhrmy"


def settings(tmp_path: Path, *, allow_local_hooks: bool = True, lists: list[str] | None = None) -> Settings:
    return Settings(
        agent=AgentSettings(data_dir=tmp_path / "data", health_port=0),
        alerts=AlertSettings(allow_hosts=["127.0.0.1"] if allow_local_hooks else [], delivery_timeout_s=5),
        lists=ListSettings(sources=lists or []),
    )


@pytest.fixture
async def svc(tmp_path: Path) -> AsyncIterator[Services]:
    async with Services.open(settings(tmp_path)) as services:
        yield services


async def other_due_delivery(store: Store, subscription_id: int) -> str:
    """A finding.created delivery due now for `subscription_id`, as the daemon would queue it."""
    event = NewEvent(new_event_id(), "finding.created", {"finding": {"id": 0}}, (subscription_id,))
    await store.outbox.emit([event])
    return event.id


# ------------------------------------------------------------------ targets


async def test_adding_a_watched_target_again_returns_it_unchanged(svc: Services) -> None:
    first = await svc.targets.add(f"/ipfs/{CID}", 120)
    again = await svc.targets.add(f"ipfs://{CID}", 30)
    assert first.created and not again.created
    assert again.target.id == first.target.id and again.target.interval_s == 120
    assert [t.url for t in await svc.targets.all()] == [f"ipfs://{CID}"]


async def test_a_target_is_removed_by_any_spelling_and_an_unknown_one_is_not_found(svc: Services) -> None:
    await svc.targets.add(f"ipfs://{CID}")
    with pytest.raises(Invalid, match="neither an IPNS key nor a DNS name"):
        await svc.targets.add("ipns://not a name")
    await svc.targets.remove(f"/ipfs/{CID}")
    assert await svc.targets.all() == []
    with pytest.raises(NotFound, match="no target 42"):
        await svc.targets.remove("42")


async def test_a_target_can_be_disabled_and_enabled(svc: Services) -> None:
    added = await svc.targets.add(f"ipfs://{CID}")
    await svc.targets.set_enabled(str(added.target.id), False)
    assert await svc.targets.all(enabled_only=True) == []
    await svc.targets.set_enabled(f"ipfs://{CID}", True)
    assert [t.id for t in await svc.targets.all(enabled_only=True)] == [added.target.id]


# ----------------------------------------------------------------- findings


async def record_finding(store: Store) -> int:
    """A finding recorded as the daemon records one, with its finding.created alert queued."""
    target = await store.targets.add("ipns://k51example", "ipns", 600)
    signals = ItemSignals((Signal(SignalType.MD5, "0" * 32),))
    context = ItemContext(
        key="1220aa",
        cid="bafkreiexample",
        path="a.jpg",
        root="bafybeiroot",
        target_id=target.id,
        target_url=target.url,
        size=4,
        media_type="image/jpeg",
        signals=signals,
    )
    new = await store.items.record(
        ItemRow(key="1220aa", status=ItemState.VERIFIED, cid="bafkreiexample", signals=signals),
        LocationRow(item_key="1220aa", path="a.jpg", target_id=target.id, root_cid="bafybeiroot"),
        [FindingRow("1220aa", "tcap", "tcap:1", "0" * 32, SignalType.MD5, 0.0, list_source="tcap.json")],
        outbox=FindingOutbox(context, ["http://127.0.0.1:8080"]),
    )
    assert new[0].id is not None
    return new[0].id


async def test_a_false_positive_review_queues_a_retraction_to_who_got_the_finding(svc: Services) -> None:
    alerted = await svc.store.subscriptions.add("https://platform.example/hook", "whsec_" + "A" * 43)
    finding_id = await record_finding(svc.store)
    # Subscribed after the alert went out: it never heard of the finding, so it gets no retraction.
    await svc.store.subscriptions.add("https://late.example/hook", "whsec_" + "B" * 43)

    confirmed = await svc.findings.review(ReviewRequest(finding_id, Verdict.CONFIRMED, reviewer="ana"))
    assert confirmed.verdict == Verdict.CONFIRMED
    assert await svc.store.outbox.events(event_type="finding.retracted") == []

    await svc.findings.review(ReviewRequest(finding_id, Verdict.FALSE_POSITIVE, note="a logo", reviewer="ana"))
    [retraction] = await svc.store.outbox.events(event_type="finding.retracted")
    assert retraction.finding_id == finding_id and retraction.payload["note"] == "a logo"
    assert [d.subscription_id for d in await svc.store.outbox.deliveries_of(event_id=retraction.id)] == [alerted.id]

    trail = await svc.findings.reviews(finding_id)
    assert [(a.review.verdict, a.review.reviewer) for a in trail] == [
        (Verdict.CONFIRMED, "ana"),
        (Verdict.FALSE_POSITIVE, "ana"),
    ]
    shown = await svc.findings.show(finding_id)
    assert shown.view.retraction is not None


async def test_reviewing_or_showing_an_unknown_finding_is_not_found(svc: Services) -> None:
    with pytest.raises(NotFound, match="no finding 7"):
        await svc.findings.review(ReviewRequest(7, Verdict.CONFIRMED))
    with pytest.raises(NotFound):
        await svc.findings.show(7)
    with pytest.raises(NotFound):
        await svc.findings.reviews(7)


# ----------------------------------------------------------------- webhooks


async def test_add_refuses_what_could_never_be_delivered(tmp_path: Path) -> None:
    async with Services.open(settings(tmp_path, allow_local_hooks=False, lists=["lists/tcap.json"])) as svc:
        with pytest.raises(Invalid, match=r"127\.0\.0\.1"):
            await svc.webhooks.add(SubscriptionRequest("http://127.0.0.1:9/hook"))
        with pytest.raises(Invalid, match="unknown event types"):
            await svc.webhooks.add(SubscriptionRequest("https://platform.example/hook", events=("finding.made",)))
        with pytest.raises(Invalid, match="unknown list tcpa; known: tcap"):
            await svc.webhooks.add(SubscriptionRequest("https://platform.example/hook", lists=("tcpa",)))
        assert await svc.webhooks.all() == []

        later = await svc.webhooks.add(
            SubscriptionRequest("https://platform.example/hook", lists=("next-list",), allow_unknown_lists=True)
        )
        known = await svc.webhooks.add(
            SubscriptionRequest("https://platform.example/hook", lists=("tcap",), labels=("ideology=far-right",))
        )
    assert later.subscription.lists == ("next-list",)
    assert known.subscription.labels == ("ideology:far-right",)
    assert known.relabelled == (("ideology=far-right", "ideology:far-right"),)
    assert known.secret.startswith("whsec_")


async def test_test_sends_its_own_delivery_and_leaves_every_other_due_one_as_it_was(svc: Services) -> None:
    async with WebhookReceiver([]) as receiver:
        tested = await svc.webhooks.add(SubscriptionRequest(receiver.url("/tested")))
        other = await svc.webhooks.add(SubscriptionRequest(receiver.url("/other")))
        receiver.secrets = [tested.secret, other.secret]
        # Due now: one for the tested subscription itself, one for another subscription.
        waiting = [
            await other_due_delivery(svc.store, tested.subscription.id),
            await other_due_delivery(svc.store, other.subscription.id),
        ]
        before = {e: await svc.store.outbox.deliveries_of(event_id=e) for e in waiting}

        result = await svc.webhooks.test(tested.subscription.id)

        assert result.delivered and result.delivery.attempts == 1
        assert [(r.path, r.verified) for r in receiver.received] == [("/tested", True)]
        assert '"webhook.test"' in receiver.received[0].body
    for event_id, rows in before.items():
        assert await svc.store.outbox.deliveries_of(event_id=event_id) == rows
    # Their leases were handed back: the daemon can lease both at once.
    leased = await svc.store.outbox.lease("daemon", limit=10, lease_s=60)
    assert sorted(job.event.id for job in leased) == sorted(waiting)


async def test_test_of_a_disabled_or_unknown_subscription_is_refused(svc: Services) -> None:
    sub = await svc.store.subscriptions.add("https://platform.example/hook", "whsec_" + "A" * 43)
    await svc.store.subscriptions.set_enabled(sub.id, False, "gone")
    with pytest.raises(Invalid, match=r"disabled \(gone\)"):
        await svc.webhooks.test(sub.id)
    with pytest.raises(NotFound):
        await svc.webhooks.test(sub.id + 1)
    assert await svc.store.outbox.events() == []


async def test_replay_now_sends_only_what_it_queued_again(svc: Services) -> None:
    async with WebhookReceiver([]) as receiver:
        replayed = await svc.webhooks.add(SubscriptionRequest(receiver.url("/replayed")))
        other = await svc.webhooks.add(SubscriptionRequest(receiver.url("/other")))
        receiver.secrets = [replayed.secret, other.secret]
        older = await other_due_delivery(svc.store, other.subscription.id)
        [old_row] = await svc.store.outbox.deliveries_of(event_id=older)
        since = old_row.created_at + timedelta(microseconds=1)
        newer = await other_due_delivery(svc.store, replayed.subscription.id)
        [new_row] = await svc.store.outbox.deliveries_of(event_id=newer)
        assert new_row.created_at >= since

        count = await svc.webhooks.replay(since, now=True)

        assert count == 1
        assert [r.path for r in receiver.received] == ["/replayed"]
    [sent] = await svc.store.outbox.deliveries_of(event_id=newer)
    assert sent.status == DeliveryStatus.SUCCEEDED
    assert await svc.store.outbox.deliveries_of(event_id=older) == [old_row]


async def test_rotate_and_enable_say_what_changed(svc: Services) -> None:
    sub = await svc.store.subscriptions.add("https://platform.example/hook", "whsec_" + "A" * 43)
    await svc.store.subscriptions.set_enabled(sub.id, False, "failing for 5 days")
    await other_due_delivery(svc.store, sub.id)
    enabled = await svc.webhooks.enable(sub.id)
    assert not enabled.before.enabled and enabled.before.disabled_reason == "failing for 5 days"
    assert enabled.pending == 1
    start = utcnow()
    rotation = await svc.webhooks.rotate(sub.id, grace_s=60)
    assert rotation.secret.startswith("whsec_") and rotation.previous_until >= start + timedelta(seconds=60)
    with pytest.raises(NotFound):
        await svc.webhooks.rotate(sub.id + 1)
    with pytest.raises(NotFound):
        await svc.webhooks.remove(sub.id + 1)
