"""Migration 3 moves stored denylist findings and their suppressions from the
old `<file path>:<line>` ids to `<list>:<rule hash>`, on SQLite and PostgreSQL:
a finding an investigator suppressed as a false positive must stay suppressed
after the upgrade, not be alerted again under its new id."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa

from agent.lists.denylist.ids import deny_entry_id
from agent.model.status import ItemState
from agent.store import ItemRow
from agent.store.migrations import LATEST_VERSION
from agent.store.schema import findings, schema_migrations, suppressions
from tests.integration.store.conftest import StoreOpener

RULE = "/ipfs/bafybeihchr7vmgjaasntayyatmp5sv6xza57iy2h4xj7g46bpjij6yhrmy/dir/*"


async def test_old_denylist_ids_and_their_suppressions_move_to_the_new_ids(open_store: StoreOpener) -> None:
    store = await open_store()
    at = datetime(2026, 11, 20, tzinfo=UTC)
    await store.items.record(ItemRow(key="k1", status=ItemState.VERIFIED), None, [])
    await store.items.record(ItemRow(key="k2", status=ItemState.VERIFIED), None, [])
    old = "/home/op/lists/my.deny:7"
    async with store._engine.begin() as conn:
        common = {"list_name": "my", "entry_value": RULE, "signal_type": "path", "distance": 0.0, "created_at": at}
        await conn.execute(
            sa.insert(findings),
            [
                {"item_key": "k1", "entry_id": old, **common},
                # the same rule reached through another spelling of the path: one id afterwards, history kept
                {"item_key": "k1", "entry_id": "lists/my.deny:7", **common},
                {"item_key": "k2", "entry_id": old, **common},
                # a hash-list finding is left alone
                {
                    "item_key": "k2",
                    "list_name": "te",
                    "entry_id": "md5:abc",
                    "entry_value": "abc",
                    "signal_type": "md5",
                    "distance": 0.0,
                    "created_at": at,
                },
            ],
        )
        await conn.execute(sa.insert(suppressions).values(item_key="k1", list_name="my", entry_id=old, created_at=at))
        # As a database of version 2 would be: migration 3 not applied yet.
        await conn.execute(sa.delete(schema_migrations).where(schema_migrations.c.version == 3))
    await store.close()

    upgraded = await open_store()
    assert await upgraded.schema_version() == LATEST_VERSION  # later migrations came after; 3 ran again
    new = deny_entry_id("my", RULE)
    async with upgraded._engine.connect() as conn:
        ids = sorted(
            (r.item_key, r.entry_id) for r in await conn.execute(sa.select(findings.c.item_key, findings.c.entry_id))
        )
        kept = {
            r.entry_id
            for r in await conn.execute(sa.select(suppressions.c.entry_id).where(suppressions.c.item_key == "k1"))
        }
    assert ids == sorted([("k1", new), ("k1", "lists/my.deny:7"), ("k2", new), ("k2", "md5:abc")])
    assert new in kept  # still suppressed under the id new findings carry
    assert "/home/op" not in new
