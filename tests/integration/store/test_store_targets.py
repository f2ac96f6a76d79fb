"""Targets and scans, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import pytest

from agent.model.signals import ItemSignals, Signal, SignalType
from agent.model.status import ItemState
from agent.store import DuplicateTarget, ItemRow, LocationRow, Store


async def test_target_crud_and_duplicate_url(store: Store) -> None:
    a = await store.targets.add("ipfs://bafya", "ipfs", 300, {"gateway": "https://gw.example"})
    b = await store.targets.add("ar://txid", "arweave", 60)
    assert (a.url, a.kind, a.interval_s, a.options, a.enabled, a.state) == (
        "ipfs://bafya",
        "ipfs",
        300,
        {"gateway": "https://gw.example"},
        True,
        {},
    )
    assert a.consecutive_failures == 0 and a.last_poll_at is None and a.next_run_at is None

    with pytest.raises(DuplicateTarget) as caught:
        await store.targets.add("ipfs://bafya", "ipfs", 10)
    assert caught.value.url == "ipfs://bafya"

    assert await store.targets.get(a.id) == a
    assert await store.targets.get("ar://txid") == b
    assert await store.targets.get("ipfs://nope") is None
    assert [t.url for t in await store.targets.all()] == ["ipfs://bafya", "ar://txid"]

    assert await store.targets.set_enabled("ar://txid", False)
    assert [t.url for t in await store.targets.all(enabled_only=True)] == ["ipfs://bafya"]

    assert await store.targets.remove(a.id)
    assert not await store.targets.remove(a.id)
    assert await store.targets.remove("ar://txid")
    assert await store.targets.all() == []
    # The URL is free again after removal.
    await store.targets.add("ipfs://bafya", "ipfs", 300)


async def test_record_poll_counts_failures_and_resets_on_success(store: Store) -> None:
    target = await store.targets.add("ipns://name.example", "ipns", 60)
    later = datetime(2030, 1, 1, tzinfo=UTC)

    first = await store.targets.record_poll(target.id, ok=False, error="timeout", next_run_at=later)
    second = await store.targets.record_poll(target.id, ok=False, error="502 from gateway", next_run_at=later)
    assert first is not None and second is not None
    assert (first.consecutive_failures, second.consecutive_failures) == (1, 2)
    assert second.last_error == "502 from gateway"
    assert second.last_success_at is None
    assert second.last_poll_at is not None and second.next_run_at == later
    assert second.state == {}  # not given: left alone

    ok = await store.targets.record_poll(
        target.id, ok=True, error=None, next_run_at=later + timedelta(minutes=1), state={"root": "bafyroot"}
    )
    assert ok is not None
    assert ok.consecutive_failures == 0
    assert ok.last_error is None
    assert ok.last_success_at is not None and ok.last_success_at == ok.last_poll_at
    assert ok.state == {"root": "bafyroot"}
    assert await store.targets.get(target.id) == ok

    failed_again = await store.targets.record_poll(target.id, ok=False, error="x", next_run_at=None)
    assert failed_again is not None
    assert failed_again.consecutive_failures == 1
    assert failed_again.state == {"root": "bafyroot"}  # cursors survive a failed poll
    assert failed_again.last_success_at == ok.last_success_at

    await store.targets.remove(target.id)
    assert await store.targets.record_poll(target.id, ok=True, error=None, next_run_at=None) is None


async def test_removing_a_target_drops_its_locations_but_keeps_scans_and_items(store: Store) -> None:
    target = await store.targets.add("ipfs://bafyroot", "ipfs", 60)
    scan_id = await store.scans.start(target.id, target.url)
    await store.items.record(
        ItemRow(key="k1", status=ItemState.VERIFIED, signals=ItemSignals((Signal(SignalType.MD5, "00" * 16),))),
        LocationRow(item_key="k1", path="/a.jpg", target_id=target.id, root_cid="bafyroot"),
        [],
    )
    assert len(await store.items.locations_of("k1")) == 1

    await store.targets.remove(target.id)
    assert await store.items.locations_of("k1") == []
    assert await store.items.seen_keys(["k1"]) == {"k1"}
    scan = await store.scans.get(scan_id)
    assert scan is not None and scan.target_id is None and scan.target_url == "ipfs://bafyroot"


async def test_scans_finish_and_restart_interrupts_only_running_ones(store: Store) -> None:
    t = await store.targets.add("ipfs://bafyscan", "ipfs", 60)
    done = await store.scans.start(t.id, t.url, node="node-a")
    mine = await store.scans.start(t.id, t.url, node="node-a")
    theirs = await store.scans.start(None, "ipfs://bafyoneoff", node="node-b")
    assert await store.scans.finish(done, "ok", root_cid="bafyroot", summary={"ok": 3})
    with pytest.raises(ValueError, match="a finished scan's status"):
        await store.scans.finish(mine, "running")

    assert await store.scans.interrupt_running(node="node-a") == 1
    by_id = {s.id: s for s in await store.scans.recent(10)}
    assert by_id[done].status == "ok" and by_id[done].summary == {"ok": 3}
    assert by_id[done].root_cid == "bafyroot" and by_id[done].finished_at is not None
    assert by_id[mine].status == "interrupted" and by_id[mine].finished_at is not None
    assert by_id[mine].error
    assert by_id[theirs].status == "running"  # another node's scan may really be running

    assert await store.scans.interrupt_running() == 1
    assert await store.scans.interrupt_running() == 0
    recent = await store.scans.recent(2)
    assert [s.id for s in recent] == [theirs, mine]  # newest first
    assert all(s.status != "running" for s in await store.scans.recent(10))


async def test_claim_poll_lets_one_agent_poll_a_target_per_gap(
    store: Store, open_store: Callable[[], Awaitable[Store]]
) -> None:
    target = await store.targets.add("ipfs://bafyclaim", "ipfs", 600)
    agents = [store, *await asyncio.gather(*(open_store() for _ in range(9)))]
    won = await asyncio.gather(
        *(a.targets.claim_poll(target.id, f"node-{n}", min_gap_s=300) for n, a in enumerate(agents))
    )
    assert won.count(True) == 1
    assert not await store.targets.claim_poll(target.id, "node-0", min_gap_s=300)
    claimed = await store.targets.get(target.id)
    assert claimed is not None and claimed.last_poll_at is not None
    # A zero gap lets the next poll through; a disabled or absent target never.
    assert await store.targets.claim_poll(target.id, "node-0", min_gap_s=0)
    await store.targets.set_enabled(target.id, False)
    assert not await store.targets.claim_poll(target.id, "node-0", min_gap_s=0)
    assert not await store.targets.claim_poll(target.id + 1000, "node-0", min_gap_s=0)


async def test_interrupting_a_scan_releases_its_poll_claim_so_a_restart_polls_at_once(store: Store) -> None:
    t = await store.targets.add("ipfs://bafyclaim", "ipfs", 3600)
    assert await store.targets.claim_poll(t.id, "node-a", min_gap_s=1800)
    await store.scans.start(t.id, t.url, node="node-a")
    # The agent dies here: the claim would hold the target for half an hour.
    assert not await store.targets.claim_poll(t.id, "node-a", min_gap_s=1800)
    assert await store.scans.interrupt_running(node="node-a") == 1
    assert await store.targets.claim_poll(t.id, "node-a", min_gap_s=1800), "the restarted agent polls again at once"
