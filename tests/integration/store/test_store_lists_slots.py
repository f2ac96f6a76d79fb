"""List sync state and job slots, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from agent.store import ListStateRow, Store


async def test_list_versions_and_state_round_trip(store: Store) -> None:
    assert await store.lists.latest_versions() == []
    assert await store.lists.record_version("tcap", "https://tcap.example/list", "h1", 10, 0, 1)
    assert not await store.lists.record_version("tcap", "https://tcap.example/list", "h1", 10, 0, 1)
    assert await store.lists.record_version("tcap", "https://tcap.example/list", "h2", 12, 0, 0)
    assert await store.lists.record_version("badbits", "file:badbits.deny", "d1", 0, 500, 2)

    latest = {v.name: v for v in await store.lists.latest_versions()}
    assert set(latest) == {"tcap", "badbits"}
    assert (latest["tcap"].content_hash, latest["tcap"].entries, latest["tcap"].problems) == ("h2", 12, 0)
    assert (latest["badbits"].deny_rules, latest["badbits"].source) == (500, "file:badbits.deny")

    # The publisher rolls back to the first content: that is what is loaded now.
    assert not await store.lists.record_version("tcap", "https://tcap.example/list", "h1", 10, 0, 1)
    latest = {v.name: v for v in await store.lists.latest_versions()}
    assert latest["tcap"].content_hash == "h1"

    assert await store.lists.get_state("tcap") is None
    state = ListStateRow(
        name="tcap",
        source="https://tcap.example/list",
        etag='"abc"',
        last_modified="Wed, 01 May 2024 10:00:00 GMT",
        checkpoint="page-7",
        content_hash="h1",
    )
    await store.lists.put_state(state)
    assert await store.lists.get_state("tcap") == state
    moved = ListStateRow(
        name="tcap",
        source="https://tcap.example/list",
        checkpoint="page-8",
        updated_at=state.updated_at + timedelta(seconds=5),
    )
    await store.lists.put_state(moved)
    assert await store.lists.get_state("tcap") == moved


async def test_claim_slot_has_exactly_one_winner_under_concurrency(
    store: Store, open_store: Callable[[], Awaitable[Store]]
) -> None:
    # 20 agents, each with its own engine and connections, race for the same
    # slots of the same job.
    agents = [store, *await asyncio.gather(*(open_store() for _ in range(19)))]
    for slot in range(1_000, 1_003):
        won = await asyncio.gather(
            *(agent.slots.claim("retro-match", slot, f"node-{n}") for n, agent in enumerate(agents))
        )
        assert won.count(True) == 1, (slot, won)

    # A different job or a later slot is a separate claim.
    assert await store.slots.claim("list-sync", 1_000, "node-0")
    assert not await store.slots.claim("list-sync", 1_000, "node-1")


async def test_prune_slots_forgets_old_claims(store: Store) -> None:
    assert await store.slots.claim("job", 1, "n")
    assert await store.slots.prune(datetime.now(UTC) - timedelta(hours=1)) == 0
    assert await store.slots.prune(datetime.now(UTC) + timedelta(seconds=1)) == 1
    assert await store.slots.claim("job", 1, "n")  # claimable again once forgotten
