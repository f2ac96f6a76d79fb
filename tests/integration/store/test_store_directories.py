"""Directories remembered as examined (issue 8 item 20), on SQLite and PostgreSQL."""

from __future__ import annotations

from agent.model.signals import ItemSignals, Signal, SignalType
from agent.model.status import ItemState
from agent.pipeline import item_examined
from agent.store import ItemRow, Store


def _sha256(value: str) -> ItemSignals:
    return ItemSignals((Signal(SignalType.SHA256, value),))


async def test_a_recorded_directory_is_known_but_not_counted_as_an_item(store: Store) -> None:
    await store.items.record(ItemRow(key="1220f1", status=ItemState.VERIFIED, signals=_sha256("00" * 32)), None)
    await store.items.record_directory("1220d1", "bafydir")
    await store.items.record_directory("1220d1", "bafydir")  # again: one row, no error

    rows = await store.items.get_many(["1220d1", "1220f1"])
    directory = rows["1220d1"]
    assert (directory.status, directory.cid, directory.media_type, directory.signals) == (
        "directory",
        "bafydir",
        "inode/directory",
        ItemSignals(),
    )
    assert item_examined(directory.status, directory.signals)
    assert await store.items.count() == 1, "directories are not content items"


async def test_recording_a_directory_never_overwrites_content_of_the_same_multihash(store: Store) -> None:
    content = ItemRow(
        key="1220aa",
        status=ItemState.VERIFIED,
        cid="bafkraw",
        size=3,
        media_type="text/plain",
        signals=_sha256("11" * 32),
    )
    await store.items.record(content, None)
    await store.items.record_directory("1220aa", "bafydag")
    row = (await store.items.get_many(["1220aa"]))["1220aa"]
    assert (row.status, row.cid, row.signals) == ("verified", "bafkraw", _sha256("11" * 32))
