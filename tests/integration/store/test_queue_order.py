"""The findings queue as the console pages it, on SQLite and PostgreSQL: the priority order
(exact and denylist matches before perceptual ones, heavier labels first, closest first),
offset paging that visits every finding once, the content-state filter, counts that agree
with what is paged through, and the list names and labels offered as filters."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pytest

from agent.model.finding import DenyBasis, MatchedOn
from agent.model.records import FindingOrder, FindingView, LabelWeights
from agent.model.signals import SignalType
from agent.model.status import ContentState, ItemState, ReviewState
from agent.model.time import utcnow
from agent.services.errors import Invalid
from agent.services.findings import FindingsService
from agent.store import FindingFilter, FindingRow, ItemRow, LocationRow, Store

HOSTILE = ["'; DROP TABLE findings; --", "100%", "a_b", 'it\'s "quoted"', "back\\slash", "%", "_", "*"]


@dataclass(frozen=True)
class Made:
    """A recorded finding with what the test knows of it."""

    row: FindingRow
    id: int


async def _record(
    store: Store,
    key: str,
    signal_type: MatchedOn = SignalType.PDQ,
    distance: float = 0.0,
    *,
    list_name: str = "tcap",
    labels: Sequence[str] = (),
    target_id: int | None = None,
) -> Made:
    """One item with one finding."""
    (finding,) = await store.items.record(
        ItemRow(key=key, status=ItemState.VERIFIED, cid=f"bafy{key}"),
        LocationRow(item_key=key, path=f"{key}.jpg", target_id=target_id),
        [FindingRow(key, list_name, f"{list_name}:{key}", "abc", signal_type, distance, labels=tuple(labels))],
    )
    assert finding.id is not None
    return Made(finding, finding.id)


def _ids(views: Sequence[FindingView]) -> list[int]:
    return [v.finding.id for v in views if v.finding.id is not None]


async def _priority(store: Store, weights: LabelWeights, flt: FindingFilter | None = None) -> list[int]:
    views = await store.views.page(flt or FindingFilter(), limit=500, order=FindingOrder.PRIORITY, weights=weights)
    return _ids(views)


async def test_exact_and_denylist_matches_come_before_perceptual_ones_and_closer_before_farther(
    store: Store,
) -> None:
    """Without weights: md5/sha1/sha256 and denylisted CIDs and paths first (newest first among
    them), then perceptual matches closest first; a vPDQ match of every frame is the closest."""
    far_pdq = await _record(store, "far", SignalType.PDQ, 30)
    md5 = await _record(store, "md5", SignalType.MD5, 0)
    near_pdq = await _record(store, "near", SignalType.PDQ, 2)
    cid = await _record(store, "cid", DenyBasis.CID, 0)
    video_all = await _record(store, "vall", SignalType.VPDQ, 100)
    phash = await _record(store, "phash", SignalType.PHASH, 5)
    path = await _record(store, "path", DenyBasis.PATH, 0)
    video_most = await _record(store, "vmost", SignalType.VPDQ, 85)  # 15 from a full match
    sha256 = await _record(store, "sha", SignalType.SHA256, 0)
    sha1 = await _record(store, "sha1", SignalType.SHA1, 0)

    exact = [sha1, sha256, path, cid, md5]
    perceptual = [video_all, near_pdq, phash, video_most, far_pdq]
    assert await _priority(store, LabelWeights()) == [m.id for m in exact + perceptual]
    # The newest-first order is untouched by it.
    newest = await store.views.page(FindingFilter(), limit=500)
    assert _ids(newest) == sorted(_ids(newest), reverse=True)


async def test_heavier_labels_come_first_a_lists_own_weight_beats_the_every_list_one_and_labels_match_whole(
    store: Store,
) -> None:
    """Within a tier the heaviest label decides; "tcap"'s own csam weight replaces the "*" one
    for tcap only; "terrorism" does not get "terror"'s weight; equal weights go closest first;
    and no weight lifts a perceptual match above an exact one."""
    weights = LabelWeights.from_config({"*": {"terror": 5.0, "csam": 9.0}, "tcap": {"csam": 1.0}})
    tcap_csam = await _record(store, "a", distance=3, list_name="tcap", labels=["csam"])
    other_csam = await _record(store, "b", distance=3, list_name="ncmec", labels=["csam"])
    terrorism = await _record(store, "c", distance=3, list_name="ncmec", labels=["terrorism", "terror2"])
    terror_far = await _record(store, "d", distance=7, list_name="ncmec", labels=["terror"])
    both = await _record(store, "e", distance=3, list_name="tcap", labels=["csam", "terror"])
    bare = await _record(store, "f", distance=3, list_name="x")
    exact = await _record(store, "g", SignalType.MD5, list_name="x")
    exact_heavy = await _record(store, "h", SignalType.SHA256, list_name="ncmec", labels=["csam"])

    expected = [exact_heavy, exact, other_csam, both, terror_far, tcap_csam, bare, terrorism]
    assert await _priority(store, weights) == [m.id for m in expected]
    service = FindingsService(store, {"*": {"terror": 5.0, "csam": 9.0}, "tcap": {"csam": 1.0}})
    page = await service.page(FindingFilter(), limit=100, order=FindingOrder.PRIORITY)
    assert [service.weight(v) for v in page.findings] == [9.0, 0.0, 9.0, 5.0, 5.0, 1.0, 0.0, 0.0]
    # A negative weight sinks a finding below the unweighted ones.
    sunk = LabelWeights.from_config({"ncmec": {"terrorism": -1.0}})
    assert (await _priority(store, sunk))[-1] == terrorism.id


async def test_hostile_label_and_list_strings_are_only_ever_themselves(store: Store) -> None:
    """Quotes, %, _, backslashes and SQL in weights' labels and list names, and in filters,
    weigh and select exactly the findings that carry that very string, and break nothing."""
    hits = [await _record(store, f"h{i}", distance=5, list_name=s, labels=[s]) for i, s in enumerate(HOSTILE)]
    near = [
        await _record(store, f"n{i}", distance=1, list_name=f"{s}x", labels=[f"{s}x", s[:-1] or "y"])
        for i, s in enumerate(HOSTILE)
    ]
    weights = LabelWeights.from_config({s: {s: float(i + 1)} for i, s in enumerate(HOSTILE)})
    ordered = await _priority(store, weights)
    # Each hit carries the label its own list weighs: heaviest (last of HOSTILE) first; nothing
    # else is weighted, so the near misses follow, closest (all 1) newest first.
    assert ordered == [m.id for m in reversed(hits)] + [m.id for m in reversed(near)]
    for s, hit in zip(HOSTILE, hits, strict=True):
        for flt in (FindingFilter(label=s), FindingFilter(list_name=s), FindingFilter(label=s, list_name=s)):
            assert await _priority(store, weights, flt) == [hit.id], flt
            assert await store.views.count(flt) == 1, flt
    assert await store.views.count(FindingFilter()) == 2 * len(HOSTILE)


async def test_a_weight_that_is_not_a_finite_number_is_refused(store: Store) -> None:
    """NaN or infinity in [console.label_weights] is a clear error naming the setting."""
    with pytest.raises(ValueError, match=r"console.label_weights.tcap.x: nan is not a finite number"):
        FindingsService(store, {"tcap": {"x": float("nan")}})
    with pytest.raises(ValueError, match=r"console.label_weights.\*.y: inf is not a finite number"):
        FindingsService(store, {"*": {"y": float("inf")}})


async def test_the_content_filter_goes_by_the_items_availability(store: Store) -> None:
    """A content state keeps the findings whose item was last found in that state; an item
    never checked matches no state, only the open filter."""
    up = await _record(store, "up")
    down = await _record(store, "down")
    back = await _record(store, "back")
    unchecked = await _record(store, "new")
    at = utcnow()
    await store.content.set_state("up", "available", first_alert_at=at, detail={}, follow_up=None)
    await store.content.set_state("down", "unavailable", first_alert_at=at, detail={}, follow_up=None)
    await store.content.set_state("back", "unavailable", first_alert_at=at, detail={}, follow_up=None)
    await store.content.set_state("back", "available", first_alert_at=at, detail={}, follow_up=None)
    for state, want in (
        (ContentState.AVAILABLE, [back, up]),
        (ContentState.UNAVAILABLE, [down]),
        (ContentState.UNKNOWN, []),
        (None, [unchecked, back, down, up]),
    ):
        flt = FindingFilter(content=state)
        assert _ids(await store.views.page(flt, limit=100)) == [m.id for m in want], state
        assert await store.views.count(flt) == len(want), state


async def _page_through(service: FindingsService, flt: FindingFilter, limit: int) -> list[int]:
    """Follow next_offset from the first page to the last."""
    seen: list[int] = []
    offset: int | None = 0
    while offset is not None:
        page = await service.page(flt, limit=limit, order=FindingOrder.PRIORITY, offset=offset)
        assert page.next_before is None
        seen += _ids(page.findings)
        assert len(seen) <= 1000, "paging does not end"
        offset = page.next_offset
    return seen


async def test_offset_paging_visits_every_finding_once_and_counts_agree_for_every_filter(store: Store) -> None:
    """For each filter (and combinations) the pages, followed by next_offset, hold every
    finding it selects exactly once, in the order one big page has them, and count() is the
    number paged through."""
    one = await store.targets.add("ipfs://bafyone", "ipfs", 300)
    two = await store.targets.add("ipfs://bafytwo", "ipfs", 300)
    kinds: list[tuple[MatchedOn, float]] = [
        (SignalType.MD5, 0),
        (SignalType.PDQ, 4),
        (DenyBasis.CID, 0),
        (SignalType.PDQ, 4),
        (SignalType.PHASH, 9),
        (SignalType.VPDQ, 90),
    ]
    made: list[Made] = []
    for i in range(23):
        kind, distance = kinds[i % len(kinds)]
        made.append(
            await _record(
                store,
                f"k{i}",
                kind,
                distance,
                list_name="tcap" if i % 3 else "ncmec",
                labels=["csam"] if i % 2 else ["terror", "x"],
                target_id=one.id if i % 4 else two.id,
            )
        )
    for m in made[::5]:
        await store.reviews.review(m.id, "confirmed", note=None, reviewer="ann")
    for m in made[1::7]:
        await store.reviews.review(m.id, "false_positive", note=None, reviewer="ann")
    at = utcnow()
    for m in made[::3]:
        await store.content.set_state(m.row.item_key, "unavailable", first_alert_at=at, detail={}, follow_up=None)
    for m in made[1::3]:
        await store.content.set_state(m.row.item_key, "available", first_alert_at=at, detail={}, follow_up=None)
    service = FindingsService(store, {"*": {"csam": 2.0}, "ncmec": {"terror": 3.0}})
    filters = [
        FindingFilter(),
        FindingFilter(list_name="tcap"),
        FindingFilter(label="csam"),
        FindingFilter(label="x"),
        FindingFilter(target_id=two.id),
        FindingFilter(review=ReviewState.UNREVIEWED),
        FindingFilter(review=ReviewState.CONFIRMED),
        FindingFilter(review=ReviewState.FALSE_POSITIVE),
        FindingFilter(content=ContentState.AVAILABLE),
        FindingFilter(content=ContentState.UNAVAILABLE),
        FindingFilter(list_name="ncmec", label="terror", content=ContentState.UNAVAILABLE),
        FindingFilter(list_name="tcap", review=ReviewState.UNREVIEWED, target_id=one.id),
        FindingFilter(label="csam", content=ContentState.AVAILABLE, review=ReviewState.UNREVIEWED),
    ]
    sizes = []
    for flt in filters:
        whole = _ids((await service.page(flt, limit=500, order=FindingOrder.PRIORITY)).findings)
        for limit in (1, 4, 7):
            paged = await _page_through(service, flt, limit)
            assert paged == whole, (flt, limit)
        assert len(set(whole)) == len(whole) == await service.count(flt), flt
        sizes.append(len(whole))
    assert sizes[0] == len(made)
    assert all(0 < size < len(made) for size in sizes[1:]), sizes
    last = await service.page(FindingFilter(), limit=5, order=FindingOrder.PRIORITY, offset=len(made))
    assert last.findings == [] and last.next_offset is None


async def test_the_service_refuses_a_cursor_in_priority_order_and_a_negative_offset(store: Store) -> None:
    """The id cursor only means something newest first; an offset cannot be negative; the
    newest-first page still gives its cursor."""
    made = [await _record(store, f"k{i}") for i in range(3)]
    service = FindingsService(store)
    with pytest.raises(Invalid, match="priority order pages by offset"):
        await service.page(FindingFilter(), order=FindingOrder.PRIORITY, before_id=made[-1].id)
    with pytest.raises(Invalid, match="offset"):
        await service.page(FindingFilter(), order=FindingOrder.PRIORITY, offset=-1)
    newest = await service.page(FindingFilter(), limit=2)
    assert _ids(newest.findings) == [made[2].id, made[1].id]
    assert newest.next_before == made[1].id and newest.next_offset is None


async def test_facets_offer_each_list_and_label_once_sorted_and_say_when_there_are_more(store: Store) -> None:
    """The filter drop-downs: distinct list names and labels among the findings, sorted, any
    string as it is; beyond the bound, a flag says some were left out."""
    await _record(store, "a", list_name="tcap", labels=["csam", "a_b"])
    await _record(store, "b", list_name="ncmec", labels=["csam", 'it\'s "q"'])
    await _record(store, "c", list_name="tcap", labels=[])
    await _record(store, "d", list_name="100%", labels=["terror", "terrorism"])
    facets = await FindingsService(store).facets()
    assert facets.lists == ("100%", "ncmec", "tcap")
    assert facets.labels == ("a_b", "csam", 'it\'s "q"', "terror", "terrorism")
    assert not facets.more_lists and not facets.more_labels
    bounded = await store.views.facets(limit=2)
    assert len(bounded.lists) == 2 and len(bounded.labels) == 2
    assert bounded.more_lists and bounded.more_labels
    assert set(bounded.lists) <= set(facets.lists) and set(bounded.labels) <= set(facets.labels)
