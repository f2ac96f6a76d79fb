"""Items, locations and findings, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from agent.model.signals import ItemSignals, Signal, SignalType, VideoFrameHash
from agent.model.status import ItemState
from agent.store import FindingRow, ItemRow, LocationRow, Store
from agent.store.schema import items

PDQ = "f" * 64


def _md5(value: str) -> ItemSignals:
    return ItemSignals((Signal(SignalType.MD5, value),))


def _finding(key: str, entry: str = "pdq:" + PDQ, list_name: str = "tcap", **kw: object) -> FindingRow:
    return FindingRow(
        item_key=key,
        list_name=list_name,
        entry_id=entry,
        entry_value=PDQ,
        signal_type=SignalType.PDQ,
        distance=kw.pop("distance", 4),  # type: ignore[arg-type]
        labels=("terrorism",),
        query=PDQ,
        list_source="tcap.csv",
        list_line=7,
        **kw,  # type: ignore[arg-type]
    )


async def test_recording_the_same_item_and_finding_twice_stores_one_finding(store: Store) -> None:
    item = ItemRow(
        key="1220ab",
        cid="bafyitem",
        size=1234,
        media_type="image/jpeg",
        status=ItemState.VERIFIED,
        signals=ItemSignals((Signal(SignalType.PDQ, PDQ, quality=100),)),
    )
    where = LocationRow(item_key="1220ab", path="/pics/a.jpg", root_cid="bafyroot", gateway="https://gw.example")

    first = await store.items.record(item, where, [_finding("1220ab")])
    second = await store.items.record(item, where, [_finding("1220ab")])

    assert len(first) == 1 and first[0].id is not None
    assert (first[0].list_name, first[0].signal_type, first[0].distance, first[0].labels) == (
        "tcap",
        SignalType.PDQ,
        4.0,
        ("terrorism",),
    )
    assert (first[0].list_source, first[0].list_line, first[0].compared_percent) == ("tcap.csv", 7, None)
    assert (await store.items.get_many(["1220ab"]))["1220ab"].signals == item.signals
    assert second == []
    assert await store.findings.count() == 1
    assert await store.items.count() == 1
    # Same place twice, with target_id NULL (a one-off scan): still one row.
    assert len(await store.items.locations_of("1220ab")) == 1
    assert await store.findings.recent() == first


async def test_new_findings_are_returned_alongside_known_ones(store: Store) -> None:
    item = ItemRow(key="k", status=ItemState.VERIFIED, signals=_md5("00" * 16))
    await store.items.record(item, None, [_finding("k", "e1")])
    new = await store.items.record(item, None, [_finding("k", "e1"), _finding("k", "e2"), _finding("k", "e2")])
    assert [f.entry_id for f in new] == ["e2"]
    assert await store.findings.count() == 2

    retro = await store.findings.add(
        "k", [_finding("k", "e2"), _finding("k", "e3", list_name="gifct")], retroactive=True
    )
    assert [(f.entry_id, f.list_name, f.retroactive) for f in retro] == [("e3", "gifct", True)]
    assert await store.findings.add("k", [_finding("k", "e3", list_name="gifct")], retroactive=True) == []

    assert [f.entry_id for f in await store.findings.recent(list_name="gifct")] == ["e3"]
    newest_first = await store.findings.recent()
    assert [f.entry_id for f in newest_first] == ["e3", "e2", "e1"]
    assert await store.findings.recent(since=datetime.now(UTC) + timedelta(hours=1)) == []
    assert len(await store.findings.recent(since=newest_first[-1].created_at)) == 3
    assert len(await store.findings.recent(limit=2)) == 2


async def test_re_recording_updates_the_item_but_never_erases_its_hashes(store: Store) -> None:
    t0 = datetime(2024, 1, 1, tzinfo=UTC)
    t1 = t0 + timedelta(days=1)
    frames = (VideoFrameHash(0, 100, PDQ, 0.0), VideoFrameHash(1, 90, "0" * 64, 1.0))
    await store.items.record(
        ItemRow(
            key="v",
            cid="bafyv",
            size=10,
            media_type="video/mp4",
            status=ItemState.VERIFIED,
            signals=ItemSignals((Signal(SignalType.MD5, "11" * 16),), frames=frames),
            first_seen_at=t0,
            last_seen_at=t0,
        ),
        LocationRow(item_key="v", path="/v.mp4", first_seen_at=t0, last_seen_at=t0),
        [],
    )
    # Seen again later, but this time the fetch failed: no size, no hashes.
    await store.items.record(
        ItemRow(key="v", status=ItemState.INCOMPLETE, first_seen_at=t1, last_seen_at=t1),
        LocationRow(item_key="v", path="/v.mp4", gateway="https://other.example", first_seen_at=t1, last_seen_at=t1),
        [],
    )
    item = (await store.items.get_many(["v"]))["v"]
    assert item.status is ItemState.INCOMPLETE
    assert (item.first_seen_at, item.last_seen_at) == (t0, t1)
    assert (item.cid, item.size, item.media_type) == ("bafyv", 10, "video/mp4")
    assert item.signals.hashes == (Signal(SignalType.MD5, "11" * 16),)
    assert item.signals.frames == frames
    [loc] = await store.items.locations_of("v")
    assert (loc.first_seen_at, loc.last_seen_at, loc.gateway) == (t0, t1, "https://other.example")

    # A replay of an older observation does not move last_seen_at back.
    await store.items.record(
        ItemRow(key="v", status=ItemState.VERIFIED, signals=_md5("22" * 16), first_seen_at=t0, last_seen_at=t0),
        None,
        [],
    )
    item = (await store.items.get_many(["v"]))["v"]
    assert item.last_seen_at == t1 and item.status is ItemState.VERIFIED
    assert item.signals.hashes == _md5("22" * 16).hashes and item.signals.frames == frames


async def test_locations_are_kept_per_target_root_and_path(store: Store) -> None:
    target = await store.targets.add("ipfs://bafyroot", "ipfs", 60)
    await store.items.record(ItemRow(key="k", status=ItemState.VERIFIED), None, [])
    places = [
        LocationRow(item_key="k", path="/a", target_id=target.id, root_cid="bafyroot"),
        LocationRow(item_key="k", path="/a", target_id=None, root_cid="bafyroot"),
        LocationRow(item_key="k", path="/a", target_id=None, root_cid=None),
        LocationRow(item_key="k", path="/b", target_id=None, root_cid=None),
    ]
    for _ in range(2):
        for place in places:
            await store.items.record(ItemRow(key="k", status=ItemState.VERIFIED), place, [])
    got = {(loc.target_id, loc.root_cid, loc.path) for loc in await store.items.locations_of("k")}
    assert got == {(p.target_id, p.root_cid, p.path) for p in places}
    assert len(await store.items.locations_of("k")) == 4


async def _bulk_items(store: Store, keys: list[str], signals: dict[str, object]) -> None:
    """Test data in one statement; record_item per row would spend the test's
    time on thousands of fsyncs."""
    now = datetime.now(UTC)
    rows = [
        {
            "key": k,
            "status": "verified",
            "signals": signals,
            "video_frames": None,
            "first_seen_at": now,
            "last_seen_at": now,
        }
        for k in keys
    ]
    async with store._engine.begin() as conn:
        await conn.execute(sa.insert(items), rows)


async def test_seen_keys_over_five_thousand_keys(store: Store) -> None:
    stored = {f"1220{i:060x}" for i in range(0, 10_000, 2)}  # 5,000 items
    await _bulk_items(store, sorted(stored), {})
    asked = [f"1220{i:060x}" for i in range(5_000)]  # 2,500 of them stored

    assert await store.items.seen_keys(asked) == stored & set(asked)
    assert await store.items.seen_keys(iter(asked + asked)) == stored & set(asked)  # any iterable, duplicates
    assert await store.items.seen_keys([]) == set()
    # Many more keys than one IN (...) may carry on either dialect.
    many = [f"1220{i:060x}" for i in range(25_000)]
    assert await store.items.seen_keys(many) == stored
    got = await store.items.get_many(asked[:1_000])
    assert set(got) == stored & set(asked[:1_000]) and all(i.status is ItemState.VERIFIED for i in got.values())


async def test_iter_items_with_signals_pages_through_everything_exactly_once(store: Store) -> None:
    with_signals = [f"k{i:05d}" for i in range(2_500)]
    without = [f"k{i:05d}x" for i in range(300)]  # no hashes: nothing to re-match
    await _bulk_items(store, with_signals, {"md5": "00" * 16})
    await _bulk_items(store, without, {})
    video = ItemSignals(frames=(VideoFrameHash(0, 90, PDQ, 0.0),))
    await store.items.record(ItemRow(key="video", status=ItemState.VERIFIED, signals=video), None, [])

    pages = [page async for page in store.items.iter_with_signals(batch=100)]
    keys = [item.key for page in pages for item in page]
    assert len(keys) == len(set(keys)) == 2_501
    assert set(keys) == set(with_signals) | {"video"}
    assert keys == sorted(keys)
    assert all(len(page) == 100 for page in pages[:-1]) and 1 <= len(pages[-1]) <= 100
    assert await store.items.count() == 2_801

    # Exact multiple of the batch size: no empty trailing page.
    pages = [page async for page in store.items.iter_with_signals(batch=2_501)]
    assert [len(p) for p in pages] == [2_501]


async def test_iter_items_on_an_empty_store_yields_nothing(store: Store) -> None:
    assert [page async for page in store.items.iter_with_signals()] == []


async def test_a_finding_is_found_by_its_id(store: Store) -> None:
    new = await store.items.record(
        ItemRow(key="k-get", status=ItemState.VERIFIED),
        None,
        [FindingRow("k-get", "tcap", "tcap:9", "abc", SignalType.MD5, 0.0)],
    )
    assert new[0].id is not None
    assert await store.findings.get(new[0].id) == new[0]
    assert await store.findings.get(new[0].id + 1000) is None
