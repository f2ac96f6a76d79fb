"""A poll cancelled by a graceful stop releases its claim when its scan is closed as
interrupted (SQLite and PostgreSQL); a poll that ran to its end keeps it."""

from __future__ import annotations

from agent.store import Store


async def test_closing_a_scan_as_interrupted_releases_its_poll_claim(store: Store) -> None:
    t = await store.targets.add("ipfs://bafyinterrupted", "ipfs", 3600)
    other = await store.targets.add("ipfs://bafyother", "ipfs", 3600)
    assert await store.targets.claim_poll(t.id, "node-a", min_gap_s=1800)
    assert await store.targets.claim_poll(other.id, "node-a", min_gap_s=1800)
    cancelled = await store.scans.start(t.id, t.url, node="node-a")
    finished = await store.scans.start(other.id, other.url, node="node-a")

    assert await store.scans.finish(cancelled, "interrupted", error="agent stopped during the poll")
    assert await store.scans.finish(finished, "ok")
    assert await store.targets.claim_poll(t.id, "node-b", min_gap_s=1800), (
        "the interrupted target is polled again at once"
    )
    assert not await store.targets.claim_poll(other.id, "node-b", min_gap_s=1800), "a finished poll keeps its claim"
    assert not await store.scans.finish(cancelled + 1000, "interrupted")
    scan = await store.scans.get(cancelled)
    assert scan is not None and scan.status == "interrupted"
