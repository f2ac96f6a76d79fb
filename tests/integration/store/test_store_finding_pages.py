"""Findings as the API pages them, on SQLite and PostgreSQL: newest first behind a stable
cursor, narrowed by list, label, target, review state, time and by the platform they were
delivered to, with a matching count."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from agent.model.records import FindingView
from agent.model.signals import SignalType
from agent.model.status import AttemptOutcome, ItemState, ReviewState
from agent.store import FindingFilter, FindingRow, ItemRow, LocationRow, NewEvent, Store, SubscriptionRow
from agent.store.schema import findings

T0 = datetime(2026, 11, 1, tzinfo=UTC)


async def _record(
    store: Store,
    key: str,
    *,
    list_name: str = "tcap",
    labels: Sequence[str] = (),
    target_id: int | None = None,
    to: Sequence[SubscriptionRow] = (),
) -> FindingRow:
    """One item with one finding, its finding.created event delivered to `to`."""

    def outbox(new: list[FindingRow], _loc: LocationRow | None, _subs: list[SubscriptionRow]) -> list[NewEvent]:
        return [
            NewEvent(f"evt_{f.id}", "finding.created", {"id": f.id}, tuple(s.id for s in to), f.id, f.item_key)
            for f in new
        ]

    (finding,) = await store.items.record(
        ItemRow(key=key, status=ItemState.VERIFIED, cid=f"bafy{key}"),
        LocationRow(item_key=key, path=f"{key}.jpg", target_id=target_id),
        [FindingRow(key, list_name, f"{list_name}:{key}", "abc", SignalType.MD5, 0.0, labels=tuple(labels))],
        outbox=outbox,
    )
    assert finding.id is not None
    return finding


def _ids(views: Sequence[FindingView]) -> list[int | None]:
    return [v.finding.id for v in views]


async def _check(store: Store, flt: FindingFilter, expected: Sequence[FindingRow]) -> None:
    """The page holds exactly `expected`, newest first, and count() agrees."""
    want: list[int | None] = [f.id for f in sorted(expected, key=lambda f: f.id or 0, reverse=True)]
    assert _ids(await store.views.page(flt, limit=100)) == want, flt
    assert await store.views.count(flt) == len(want), flt


async def test_pages_are_newest_first_and_the_cursor_is_stable_across_new_findings(store: Store) -> None:
    """Following before_id from page to page visits every finding once even when findings
    are recorded between pages; a page's views are the same as recent() shows."""
    made = [await _record(store, f"k{i}") for i in range(5)]
    first = await store.views.page(FindingFilter(), limit=2)
    assert _ids(first) == [made[4].id, made[3].id]
    late = await _record(store, "late")
    second = await store.views.page(FindingFilter(), limit=2, before_id=_ids(first)[-1])
    third = await store.views.page(FindingFilter(), limit=2, before_id=_ids(second)[-1])
    assert _ids(second) + _ids(third) == [made[2].id, made[1].id, made[0].id]
    assert await store.views.page(FindingFilter(), limit=2, before_id=_ids(third)[-1]) == []
    assert _ids(await store.views.page(FindingFilter(), limit=1)) == [late.id]
    assert await store.views.count(FindingFilter()) == 6
    recent = {v.finding.id: v for v in await store.views.recent(limit=10)}
    for view in first + second + third:
        assert view == recent[view.finding.id]
    assert first[0].cid == "bafyk4" and first[0].provenance.path == "k4.jpg"


async def test_the_list_and_time_filters(store: Store) -> None:
    """list_name keeps one list's findings; since keeps those recorded at or after it."""
    a = await _record(store, "a", list_name="tcap")
    b = await _record(store, "b", list_name="ncmec")
    c = await _record(store, "c", list_name="tcap")
    async with store._engine.begin() as conn:
        for f, at in ((a, T0), (b, T0 + timedelta(hours=1)), (c, T0 + timedelta(hours=2))):
            await conn.execute(sa.update(findings).where(findings.c.id == f.id).values(created_at=at))
    await _check(store, FindingFilter(list_name="tcap"), [a, c])
    await _check(store, FindingFilter(list_name="none"), [])
    await _check(store, FindingFilter(since=T0 + timedelta(hours=1)), [b, c])
    await _check(store, FindingFilter(list_name="tcap", since=T0 + timedelta(minutes=1)), [c])


async def test_the_label_filter_matches_a_label_exactly_whatever_it_contains(store: Store) -> None:
    """A label is matched as a whole string: quotes, %, _ and backslashes are not patterns,
    and a label never matches part of another."""
    tricky = ['it\'s "quoted"', "100%", "a_b", "back\\slash", "key=value"]
    hits = {label: await _record(store, f"hit{i}", labels=[label, "other"]) for i, label in enumerate(tricky)}
    await _record(store, "near1", labels=["100%x", "aXb", "it's", "back\\\\slash"])
    await _record(store, "near2", labels=["100", "a_bc", "key=value2", '"quoted"'])
    none = await _record(store, "none")
    for label, finding in hits.items():
        await _check(store, FindingFilter(label=label), [finding])
    await _check(store, FindingFilter(label="other"), list(hits.values()))
    await _check(store, FindingFilter(label="%"), [])
    await _check(store, FindingFilter(label="_"), [])
    assert none.labels == ()


async def test_the_target_filter_keeps_findings_of_items_seen_at_that_target(store: Store) -> None:
    """target_id keeps findings whose item has a location of that target, wherever else it was seen."""
    one = await store.targets.add("ipfs://bafyone", "ipfs", 300)
    two = await store.targets.add("ipfs://bafytwo", "ipfs", 300)
    at_one = await _record(store, "x", target_id=one.id)
    at_two = await _record(store, "y", target_id=two.id)
    await _record(store, "z")
    # Item x is also seen at target two later: it belongs to both.
    await store.items.record(ItemRow(key="x", status=ItemState.VERIFIED), LocationRow("x", "again.jpg", two.id))
    await _check(store, FindingFilter(target_id=one.id), [at_one])
    await _check(store, FindingFilter(target_id=two.id), [at_one, at_two])
    await _check(store, FindingFilter(target_id=two.id + 10), [])


async def test_the_review_filter_goes_by_the_latest_review(store: Store) -> None:
    """Unreviewed findings have no review; a confirmed finding later marked a false
    positive counts as a false positive only."""
    never = await _record(store, "n")
    confirmed = await _record(store, "c")
    changed = await _record(store, "f")
    assert confirmed.id is not None and changed.id is not None
    await store.reviews.review(confirmed.id, "confirmed", note=None, reviewer="ann")
    await store.reviews.review(changed.id, "confirmed", note=None, reviewer="ann")
    await store.reviews.review(changed.id, "false_positive", note="benign", reviewer="bob")
    await _check(store, FindingFilter(review=ReviewState.UNREVIEWED), [never])
    await _check(store, FindingFilter(review=ReviewState.CONFIRMED), [confirmed])
    await _check(store, FindingFilter(review=ReviewState.FALSE_POSITIVE), [changed])


async def test_delivered_to_keeps_findings_sent_to_that_principals_subscriptions(store: Store) -> None:
    """A platform sees the findings whose finding.created event went to one of its own
    subscriptions, whatever became of the delivery; not another platform's, nor the CLI's."""
    acme = await store.subscriptions.add("https://acme.example/a", "whsec_a", owner="acme")
    acme2 = await store.subscriptions.add("https://acme.example/b", "whsec_b", owner="acme")
    other = await store.subscriptions.add("https://other.example/h", "whsec_o", owner="other")
    cli = await store.subscriptions.add("https://cli.example/h", "whsec_c")
    to_acme = await _record(store, "a", to=[acme])
    to_both = await _record(store, "b", to=[acme2, other])
    to_other = await _record(store, "o", to=[other, cli])
    await _record(store, "nobody")
    # A delivery that failed for good still counts as "delivered to" the platform.
    (failing,) = await store.outbox.deliveries_of(subscription_id=acme.id)
    await store.outbox.record_attempt(
        failing.id, outcome=AttemptOutcome.FAILED.value, http_status=410, error="gone", duration_ms=3
    )
    await _check(store, FindingFilter(delivered_to="acme"), [to_acme, to_both])
    await _check(store, FindingFilter(delivered_to="other"), [to_both, to_other])
    await _check(store, FindingFilter(delivered_to="nobody"), [])
    await _check(store, FindingFilter(delivered_to="acme", list_name="tcap"), [to_acme, to_both])
    assert to_acme.id is not None and to_other.id is not None
    assert await store.findings.delivered_to(to_acme.id, "acme")
    assert not await store.findings.delivered_to(to_other.id, "acme")
    assert await store.findings.delivered_to(to_other.id, "other")
    assert not await store.findings.delivered_to(to_other.id + 100, "other")


async def test_filters_combine_and_the_cursor_pages_a_filtered_list(store: Store) -> None:
    """Several filters narrow together, and before_id pages within the filtered findings."""
    made = [await _record(store, f"k{i}", labels=["t"] if i % 2 else ["u"]) for i in range(6)]
    odd = [f for i, f in enumerate(made) if i % 2]
    page1 = await store.views.page(FindingFilter(label="t"), limit=2)
    page2 = await store.views.page(FindingFilter(label="t"), limit=2, before_id=_ids(page1)[-1])
    assert _ids(page1) + _ids(page2) == [odd[2].id, odd[1].id, odd[0].id]
    await _check(store, FindingFilter(label="t", review=ReviewState.UNREVIEWED, list_name="tcap"), odd)
    await _check(store, FindingFilter(label="t", list_name="other"), [])
