"""The alert queries on both databases: outbox, retraction recipients, suppression,
content-state transitions, replay and lease release."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from agent.model.finding import DenyBasis
from agent.model.signals import SignalType
from agent.model.status import ItemState
from agent.store import FindingRow, ItemRow, LocationRow, NewEvent, Store, SubscriptionRow


def created_for_all(new: list[FindingRow], _loc: LocationRow | None, subs: list[SubscriptionRow]) -> list[NewEvent]:
    return [
        NewEvent(
            f"evt_created_{f.id}",
            "finding.created",
            {"id": f.id},
            tuple(s.id for s in subs),
            finding_id=f.id,
            item_key=f.item_key,
        )
        for f in new
    ]


async def _alerted_finding(store: Store) -> tuple[FindingRow, SubscriptionRow, SubscriptionRow]:
    early = await store.subscriptions.add("https://a.example/hook", "whsec_a")
    (finding,) = await store.items.record(
        ItemRow(key="k1", status=ItemState.VERIFIED, cid="bafk1"),
        LocationRow(item_key="k1", path="p.jpg"),
        [FindingRow("k1", "tcap", "tcap:1", "abc", SignalType.MD5, 0.0)],
        outbox=created_for_all,
    )
    late = await store.subscriptions.add("https://b.example/hook", "whsec_b")
    return finding, early, late


async def test_the_outbox_writes_event_and_deliveries_with_the_finding(store: Store) -> None:
    finding, early, _late = await _alerted_finding(store)
    (event,) = await store.outbox.events()
    assert event.type == "finding.created" and event.finding_id == finding.id
    assert [(d.subscription_id, d.status) for d in await store.outbox.deliveries_of(event_id=event.id)] == [
        (early.id, "pending")
    ]


async def test_a_false_positive_is_retracted_to_those_alerted_and_suppressed(store: Store) -> None:
    finding, early, late = await _alerted_finding(store)
    assert finding.id is not None
    sent_to: list[list[int]] = []

    def retraction(recipients: list[int]) -> NewEvent:
        sent_to.append(recipients)
        return NewEvent("evt_retracted", "finding.retracted", {}, tuple(recipients), finding_id=finding.id)

    await store.reviews.review(finding.id, "false_positive", note="no", reviewer="a", retraction=retraction)
    assert sent_to == [[early.id]], "only the subscription that received the finding"
    assert finding.id in await store.reviews.retracted_ids()
    # A second review keeps the audit trail but retracts nothing twice.
    await store.reviews.review(finding.id, "false_positive", note="again", reviewer="b", retraction=retraction)
    assert len(sent_to) == 1 and len(await store.reviews.of(finding.id)) == 2
    # The same item and list entry, matched by another signal: never recorded (nor alerted) again.
    again = await store.findings.add(
        "k1", [FindingRow("k1", "tcap", "tcap:1", "abc", SignalType.SHA256, 0.0)], outbox=created_for_all
    )
    assert again == []
    other_entry = await store.findings.add("k1", [FindingRow("k1", "tcap", "tcap:2", "def", SignalType.SHA256, 0.0)])
    assert len(other_entry) == 1, "suppression is per entry, not per item"
    assert late.id not in {d.subscription_id for d in await store.outbox.deliveries_of()}


async def test_content_state_changes_are_announced_once_to_those_alerted(store: Store) -> None:
    _finding, early, _late = await _alerted_finding(store)
    first = datetime.now(UTC) - timedelta(hours=1)
    calls: list[list[int]] = []

    def follow_up(recipients: list[int]) -> NewEvent:
        calls.append(recipients)
        return NewEvent(f"evt_state_{len(calls)}", "content.unavailable", {}, tuple(recipients), item_key="k1")

    (watched,) = await store.content.watched()
    assert watched[:2] == ("k1", "bafk1") and watched[3] is None
    assert await store.content.set_state("k1", "available", first_alert_at=first, detail={}, follow_up=follow_up) == (
        None,
        "available",
    )
    assert calls == [], "content presumed available when alerted: no change"
    await store.content.set_state("k1", "unavailable", first_alert_at=first, detail={"x": 1}, follow_up=follow_up)
    await store.content.set_state("k1", "unavailable", first_alert_at=first, detail={"x": 2}, follow_up=follow_up)
    assert calls == [[early.id]]
    (watched,) = await store.content.watched()
    assert watched[3] is not None and watched[3].state == "unavailable" and watched[3].detail == {"x": 2}


async def test_replay_and_lease_release_make_deliveries_due_again(store: Store) -> None:
    await _alerted_finding(store)
    (job,) = await store.outbox.lease("node-a", limit=10, lease_s=60)
    assert await store.outbox.lease("node-b", limit=10, lease_s=60) == [], "a leased delivery is not handed out twice"
    assert await store.outbox.release_leases("node-a") == 1
    (again,) = await store.outbox.lease("node-b", limit=10, lease_s=60)
    assert again.delivery.id == job.delivery.id
    await store.outbox.record_attempt(job.delivery.id, outcome="succeeded", http_status=204, error=None, duration_ms=3)
    assert await store.outbox.lease("node-b", limit=10, lease_s=60) == []
    assert await store.outbox.replay(datetime.now(UTC) - timedelta(minutes=5)) == 1
    (replayed,) = await store.outbox.lease("node-b", limit=10, lease_s=60)
    assert replayed.event.id == job.event.id, "a replay keeps the webhook-id"


async def test_finding_views_carry_item_provenance_review_and_retraction(store: Store) -> None:
    target = await store.targets.add("ipns://k51example", "ipns", 600)
    await store.subscriptions.add("https://a.example/hook", "whsec_a")
    # Seen first under a target, later in a one-off place: the first place is the provenance.
    (first,) = await store.items.record(
        ItemRow(key="k1", status=ItemState.VERIFIED, cid="bafk1", size=5, media_type="image/jpeg"),
        LocationRow(
            item_key="k1",
            path="dir/a.jpg",
            target_id=target.id,
            root_cid="bafyroot",
            gateway="http://gw.example",
            first_seen_at=datetime(2026, 1, 1, tzinfo=UTC),
        ),
        [FindingRow("k1", "tcap", "tcap:1", "abc", SignalType.PDQ, 6.0, labels=("ideology:far-right",), query="abd")],
        outbox=created_for_all,
    )
    await store.items.record(
        ItemRow(key="k1", status=ItemState.VERIFIED),
        LocationRow(
            item_key="k1", path="copy.jpg", root_cid="bafyother", first_seen_at=datetime(2026, 2, 1, tzinfo=UTC)
        ),
    )
    (second,) = await store.items.record(
        ItemRow(key="k2", status=ItemState.VERIFIED, cid="bafk2"),
        None,
        [FindingRow("k2", "deny", "deny:1", "/ipfs/bafk2", DenyBasis.CID, 0.0)],
    )
    assert first.id is not None and second.id is not None
    await store.reviews.review(first.id, "confirmed", note=None, reviewer="a1")
    await store.reviews.review(first.id, "false_positive", note="a bridge", reviewer="a2")

    views = {v.finding.id: v for v in await store.views.recent()}
    assert list(views) == [second.id, first.id], "newest first"
    one = views[first.id]
    assert (one.cid, one.media_type, one.size, one.finding.query) == ("bafk1", "image/jpeg", 5, "abd")
    where = one.provenance
    assert (where.path, where.root_cid, where.target_id, where.target_url, where.gateway, where.source) == (
        "dir/a.jpg",
        "bafyroot",
        target.id,
        "ipns://k51example",
        "http://gw.example",
        "location",
    )
    assert one.review is not None and (one.review.verdict, one.review.reviewer) == ("false_positive", "a2")
    assert one.retraction is not None and one.retraction.reason == "false_positive"
    other = views[second.id]
    assert other.review is None and other.retraction is None and other.provenance.source == "none"
    assert [v.finding.id for v in await store.views.recent(list_name="deny")] == [second.id]
    assert len(await store.views.recent(limit=1)) == 1

    trail = await store.reviews.audit_trail()
    assert [(a.review.verdict, a.list_name, a.entry_id, a.item_key) for a in trail] == [
        ("false_positive", "tcap", "tcap:1", "k1"),
        ("confirmed", "tcap", "tcap:1", "k1"),
    ]

    detail = await store.views.detail(first.id)
    assert detail is not None and detail.item is not None and detail.item.cid == "bafk1"
    assert [(p.location.path, p.target_url) for p in detail.locations] == [
        ("dir/a.jpg", "ipns://k51example"),
        ("copy.jpg", None),
    ]
    assert [r.verdict for r in detail.reviews] == ["confirmed", "false_positive"]
    assert [e.type for e in detail.events] == ["finding.created"]
    assert [(d.event_type, d.subscription_url, d.delivery.status) for d in detail.deliveries] == [
        ("finding.created", "https://a.example/hook", "pending")
    ]
    assert detail.content is None
    assert await store.views.detail(999) is None


async def test_a_removed_target_leaves_the_provenance_the_alert_carried(store: Store) -> None:
    target = await store.targets.add("ipns://k51gone", "ipns", 600)

    def alert(new: list[FindingRow], loc: LocationRow | None, subs: list[SubscriptionRow]) -> list[NewEvent]:
        assert loc is not None
        return [
            NewEvent(
                f"evt_{f.id}",
                "finding.created",
                {
                    "item": {"key": f.item_key, "path": loc.path},
                    "root": loc.root_cid,
                    "target": {"id": loc.target_id, "url": "ipns://k51gone"},
                },
                (),
                finding_id=f.id,
                item_key=f.item_key,
            )
            for f in new
        ]

    (finding,) = await store.items.record(
        ItemRow(key="k3", status=ItemState.VERIFIED, cid="bafk3"),
        LocationRow(item_key="k3", path="x/y.png", target_id=target.id, root_cid="bafyroot3"),
        [FindingRow("k3", "tcap", "tcap:3", "abc", SignalType.MD5, 0.0)],
        outbox=alert,
    )
    assert await store.targets.remove(target.id)
    (view,) = await store.views.recent()
    assert (view.provenance.path, view.provenance.root_cid, view.provenance.target_url, view.provenance.source) == (
        "x/y.png",
        "bafyroot3",
        "ipns://k51gone",
        "event",
    )
    assert finding.id is not None
    detail = await store.views.detail(finding.id)
    assert detail is not None and detail.locations == ()


async def test_a_narrowed_lease_takes_only_the_named_events_and_subscription(store: Store) -> None:
    """What `webhooks test` and `replay --now` lease: their own deliveries, nothing else due."""
    a = await store.subscriptions.add("https://a.example/hook", "whsec_a")
    b = await store.subscriptions.add("https://b.example/hook", "whsec_b")
    # More events than one IN list holds on SQLite (900), so there the lease reads them in chunks.
    names = [f"evt_{i:05d}" for i in range(905)]
    await store.outbox.emit([NewEvent(n, "webhook.test", {}, (a.id, b.id)) for n in names])
    mine = {names[0], names[-1]}
    jobs = await store.outbox.lease("cli", limit=10, lease_s=60, events_only=mine, subscription_only=a.id)
    assert sorted((j.event.id, j.subscription.id) for j in jobs) == sorted((n, a.id) for n in mine)
    others = await store.outbox.lease("agent", limit=10_000, lease_s=60)
    assert len(others) == 2 * len(names) - 2, "nothing outside the narrowed lease was taken"
