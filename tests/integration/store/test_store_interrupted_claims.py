"""A poll cancelled by a graceful stop releases its claim when its scan is closed as
interrupted (SQLite and PostgreSQL); a poll that ran to its end keeps it."""

from __future__ import annotations

from agent.store import Store


async def test_closing_a_scan_as_interrupted_releases_its_poll_claim(store: Store) -> None:
    t = await store.add_target("ipfs://bafyinterrupted", "ipfs", 3600)
    other = await store.add_target("ipfs://bafyother", "ipfs", 3600)
    assert await store.claim_poll(t.id, "node-a", min_gap_s=1800)
    assert await store.claim_poll(other.id, "node-a", min_gap_s=1800)
    cancelled = await store.start_scan(t.id, t.url, node="node-a")
    finished = await store.start_scan(other.id, other.url, node="node-a")

    assert await store.finish_scan(cancelled, "interrupted", error="agent stopped during the poll")
    assert await store.finish_scan(finished, "ok")
    assert await store.claim_poll(t.id, "node-b", min_gap_s=1800), "the interrupted target is polled again at once"
    assert not await store.claim_poll(other.id, "node-b", min_gap_s=1800), "a finished poll keeps its claim"
    assert not await store.finish_scan(cancelled + 1000, "interrupted")
    scan = await store.get_scan(cancelled)
    assert scan is not None and scan.status == "interrupted"
