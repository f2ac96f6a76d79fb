"""The services the daemon's jobs call (recording, list refresh with retraction and
rematch, takedown recheck), each used once with no scheduler, against a real SQLite store."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from agent.alerts.signing import new_secret
from agent.config import AgentSettings, ListSettings, Settings
from agent.model.finding import Finding
from agent.model.report import ItemReport, ItemSource, ItemStatus, ScanReport
from agent.model.signals import ItemSignals, Signal, SignalType
from agent.model.status import ContentState, ItemState
from agent.net.http import Purpose, client_session
from agent.services.findings import FindingsService
from agent.services.list_refresh import ListRefresher, list_syncer
from agent.services.recording import ItemRecorder, NewFindings
from agent.services.rematch import Rematcher
from agent.services.takedown import TakedownService
from agent.store import Store

CID = "bafybeihchr7vmgjaasntayyatmp5sv6xza57iy2h4xj7g46bpjij6yhrmy"
ROOT = "bafybeiroot"
MD5_A, MD5_B = "a" * 32, "b" * 32


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    s = await Store.open(f"sqlite+aiosqlite:///{tmp_path / 'agent.db'}")
    try:
        yield s
    finally:
        await s.close()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with client_session(Purpose.DAEMON) as session:
        yield session


def item(path: str, md5: str, *, findings: list[Finding] | None = None, seen_before: bool = False) -> ItemReport:
    return ItemReport(
        path=path,
        cid=CID,
        size=4,
        media_type="image/jpeg",
        status=ItemStatus.VERIFIED,
        source=ItemSource(gateway="http://127.0.0.1:1"),
        signals=ItemSignals((Signal(SignalType.MD5, md5),)),
        findings=findings or [],
        seen_before=seen_before,
    )


def md5_finding(md5: str) -> Finding:
    return Finding(list_name="list", entry=md5, entry_id=f"md5:{md5}", signal_type=SignalType.MD5, distance=0.0)


def report() -> ScanReport:
    return ScanReport(target=f"ipfs://{ROOT}", root=ROOT, started_at="2026-01-01T00:00:00Z")


async def test_a_recorded_item_is_known_its_new_findings_are_told_once_and_its_alert_is_queued(store: Store) -> None:
    await store.subscriptions.add("https://platform.example/hook", new_secret())
    target = await store.targets.add(f"ipfs://{ROOT}", "ipfs", 600)
    seen: list[tuple[ItemStatus, bool]] = []
    told: list[NewFindings] = []
    recorder = ItemRecorder(
        store,
        ["http://127.0.0.1:1"],
        target,
        on_item=lambda status, reused: seen.append((status, reused)),
        on_findings=told.append,
    )
    assert await recorder.known("1220aa") is None, "nothing stored yet"

    await recorder.record(item("a.jpg", MD5_A, findings=[md5_finding(MD5_A)]), "1220aa", report())
    await recorder.record(item("a.jpg", MD5_A, findings=[md5_finding(MD5_A)], seen_before=True), "1220aa", report())
    await recorder.record(item("local.jpg", MD5_B), None, report())  # local content: no key, nothing stored

    known = await recorder.known("1220aa")
    assert known is not None and known.status is ItemState.VERIFIED
    assert known.signals == item("a.jpg", MD5_A).signals, "its stored signals answer for it"
    assert seen == [(ItemStatus.VERIFIED, False), (ItemStatus.VERIFIED, True)]
    assert [len(t.findings) for t in told] == [1, 0], "the second record of the same finding is not new"
    assert (told[0].path, told[0].root) == ("a.jpg", ROOT)
    (location,) = await store.items.locations_of("1220aa")
    assert location.target_id == target.id
    assert [e.type for e in await store.outbox.events()] == ["finding.created"]

    failed = item("broken.jpg", MD5_B)
    failed.status, failed.signals = ItemStatus.ERROR, ItemSignals()
    await recorder.record(failed, "1220ee", report())
    assert await recorder.known("1220ee") is None, "an error without its digests is fetched again"


async def test_a_list_refresh_matches_added_entries_records_the_version_and_retracts_deleted_ones(
    store: Store, http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    sub = await store.subscriptions.add("https://platform.example/hook", new_secret())
    recorder = ItemRecorder(store, [])
    await recorder.record(item("a.jpg", MD5_A), "1220aa", report())
    await recorder.record(item("b.jpg", MD5_B), "1220bb", report())
    listing = tmp_path / "list.txt"
    listing.write_text(f"md5 {MD5_A}\nmd5 {MD5_B}\n")
    settings = Settings(agent=AgentSettings(data_dir=tmp_path), lists=ListSettings(sources=[str(listing)]))
    refresher = ListRefresher(
        store, list_syncer(settings, store, http), FindingsService(store), Rematcher(store, settings.gateways.urls)
    )

    result = await refresher.sync()
    assert result.changed
    outcome = await refresher.apply(result)
    assert outcome.fresh == {"list"} and dict(outcome.added) == {"list": 2}
    assert sorted((f.item_key, f.retroactive, ctx.path) for f, ctx in outcome.new_findings) == [
        ("1220aa", True, "a.jpg"),
        ("1220bb", True, "b.jpg"),
    ]
    assert [v.name for v in await store.lists.latest_versions()] == ["list"]
    assert not (await refresher.sync()).changed, "the same list again is no change"

    listing.write_text(f"md5 {MD5_A}\n")  # the publisher deleted entry b
    result = await refresher.sync()
    outcome = await refresher.apply(result)
    (b_finding,) = [f for f in await store.findings.recent() if f.item_key == "1220bb"]
    assert dict(outcome.retracted) == {"list": [b_finding.id]}
    assert outcome.new_findings == [] and dict(outcome.added) == {}
    assert await store.reviews.retracted_ids() == {b_finding.id}
    retracted = await store.outbox.events(event_type="finding.retracted")
    assert len(retracted) == 1 and sub.id is not None


async def test_rematching_finds_stored_items_once_and_nothing_for_an_empty_addition(
    store: Store, http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    target = await store.targets.add(f"ipfs://{ROOT}", "ipfs", 600)
    await ItemRecorder(store, [], target).record(item("dir/a.jpg", MD5_A), "1220aa", report())
    listing = tmp_path / "list.txt"
    listing.write_text(f"md5 {MD5_A}\n")
    settings = Settings(agent=AgentSettings(data_dir=tmp_path), lists=ListSettings(sources=[str(listing)]))
    synced = await list_syncer(settings, store, http).refresh()
    rematcher = Rematcher(store, ["http://127.0.0.1:1"])

    assert await rematcher.rematch(synced.catalog, {}) == []
    ((finding, context),) = await rematcher.rematch(synced.catalog, synced.added)
    assert finding.retroactive and finding.entry_id == f"md5:{MD5_A}"
    assert (context.path, context.root, context.target_url) == ("dir/a.jpg", ROOT, target.url)
    assert isinstance(context.signals, ItemSignals)
    assert await rematcher.rematch(synced.catalog, synced.added) == [], "a finding is stored once"


@pytest.fixture
async def gone_gateway() -> AsyncIterator[str]:
    """A gateway on 127.0.0.1 that answers 410 Gone for every CID (a takedown)."""

    async def gone(_request: web.Request) -> web.Response:
        return web.Response(status=410)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", gone)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    try:
        yield f"http://{host}:{port}"
    finally:
        await runner.cleanup()


async def test_a_recheck_records_a_takedown_once_and_a_claimed_slot_runs_once(
    store: Store, http: aiohttp.ClientSession, gone_gateway: str
) -> None:
    await ItemRecorder(store, []).record(item("a.jpg", MD5_A, findings=[md5_finding(MD5_A)]), "1220aa", report())
    assert await TakedownService(store, http, []).recheck() == [], "no gateway: nothing can be probed"
    takedown = TakedownService(store, http, [gone_gateway])

    (change,) = await takedown.recheck(slot=7, node="a")
    assert change.item_key == "1220aa" and change.state is ContentState.UNAVAILABLE and "410" in change.reason
    assert await takedown.recheck() == [], "still gone: no change"

    # A second matched item: a round that runs would announce its takedown.
    await ItemRecorder(store, []).record(item("b.jpg", MD5_B, findings=[md5_finding(MD5_B)]), "1220bb", report())
    assert await takedown.recheck(slot=7, node="b") == [], "slot 7 was claimed by node a's round"
    assert [c.item_key for c in await takedown.recheck()] == ["1220bb"], "a manual recheck always runs"
