"""Items (content by multihash or Arweave id), where they were seen, and the
directories remembered as examined."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import RowMapping

from agent.model.records import FindingRow, ItemRow, LocationRow
from agent.model.signals import ItemSignals, VideoFrameHash
from agent.model.status import ItemState
from agent.model.time import utcnow
from agent.store import locations
from agent.store.engine import Engine, Excluded, later
from agent.store.findings import insert_findings, queue_alerts
from agent.store.outbox import Outbox
from agent.store.schema import items


def _frames(raw: Any) -> tuple[VideoFrameHash, ...]:
    if raw is None:
        return ()
    return tuple(VideoFrameHash(int(f), int(q), str(h), float(t)) for f, q, h, t in raw)


def item_from_row(r: RowMapping) -> ItemRow:
    return ItemRow(
        key=r["key"],
        status=ItemState(r["status"]),
        cid=r["cid"],
        size=r["size"],
        media_type=r["media_type"],
        signals=ItemSignals.from_view(dict(r["signals"] or {}), _frames(r["video_frames"])),
        first_seen_at=r["first_seen_at"],
        last_seen_at=r["last_seen_at"],
    )


class ItemRepository:
    def __init__(self, engine: Engine) -> None:
        self._db = engine

    async def seen_keys(self, keys: Iterable[str]) -> set[str]:
        """The subset of `keys` already stored as items."""
        wanted = list(dict.fromkeys(keys))
        seen: set[str] = set()
        if not wanted:
            return seen
        chunk = self._db.in_chunk
        async with self._db.read() as conn:
            for start in range(0, len(wanted), chunk):
                part = wanted[start : start + chunk]
                result = await conn.execute(sa.select(items.c.key).where(items.c.key.in_(part)))
                seen.update(result.scalars())
        return seen

    async def get_many(self, keys: Iterable[str]) -> dict[str, ItemRow]:
        wanted = list(dict.fromkeys(keys))
        found: dict[str, ItemRow] = {}
        chunk = self._db.in_chunk
        async with self._db.read() as conn:
            for start in range(0, len(wanted), chunk):
                part = wanted[start : start + chunk]
                result = await conn.execute(sa.select(items).where(items.c.key.in_(part)))
                for row in result.mappings():
                    found[row["key"]] = item_from_row(row)
        return found

    async def record(
        self,
        item: ItemRow,
        location: LocationRow | None,
        findings_: Sequence[FindingRow] = (),
        outbox: Outbox | None = None,
    ) -> list[FindingRow]:
        """Store what a scan learned about one item, in ONE transaction: the
        item (re-recording updates status, last_seen_at, and signals, size,
        media type, CID and video frames when the new values are present, so a
        later failed fetch never erases hashes), where it was seen, its
        findings and their events. A finding already stored is skipped. Returns
        the findings that are new, as stored (with id and created_at): exactly
        those need alerts."""
        if location is not None and location.item_key != item.key:
            raise ValueError(f"location is for {location.item_key!r}, item is {item.key!r}")
        for finding in findings_:
            if finding.item_key != item.key:
                raise ValueError(f"finding is for {finding.item_key!r}, item is {item.key!r}")
        async with self._db.write() as conn:
            await conn.execute(self._upsert(item))
            if location is not None:
                await conn.execute(locations.upsert_location(self._db, location))
            new = await insert_findings(self._db, conn, findings_, retroactive=None)
            await queue_alerts(conn, new, location, outbox)
            return new

    async def record_directory(self, key: str, cid: str | None) -> None:
        """Remember a directory (or HAMT shard) whose every entry was examined, by its
        multihash, so a later root that still contains it skips it unfetched. Kept in
        the items table with status 'directory' (no signals, no findings); a content
        item already stored under the same multihash is left as it is."""
        now = utcnow()
        values: dict[str, Any] = {
            "key": key,
            "cid": cid,
            "size": None,
            "media_type": "inode/directory",
            "status": ItemState.DIRECTORY.value,
            "signals": {},
            "video_frames": None,
            "first_seen_at": now,
            "last_seen_at": now,
        }
        async with self._db.write() as conn:
            await conn.execute(self._db.upsert(items, values, (items.c.key,)))

    def _upsert(self, item: ItemRow) -> sa.Insert:
        # The columns keep the report's `signals` object and the frames as
        # [frame, quality, pdq_hex, timestamp] lists, as older agents wrote them.
        signals_view = item.signals.to_view()
        frames = [[f.frame, f.quality, f.pdq_hex, f.timestamp] for f in item.signals.frames] or None
        values = {
            "key": item.key,
            "cid": item.cid,
            "size": item.size,
            "media_type": item.media_type,
            "status": ItemState(item.status).value,
            "signals": signals_view,
            "video_frames": frames,
            "first_seen_at": item.first_seen_at,
            "last_seen_at": item.last_seen_at,
        }

        def update(excluded: Excluded) -> dict[str, Any]:
            changes: dict[str, Any] = {
                "status": excluded.status,
                "last_seen_at": later(excluded.last_seen_at, items.c.last_seen_at),
                "cid": sa.func.coalesce(excluded.cid, items.c.cid),
                "size": sa.func.coalesce(excluded.size, items.c.size),
                "media_type": sa.func.coalesce(excluded.media_type, items.c.media_type),
            }
            # Decided here rather than in SQL: JSON has no portable "is empty"
            # test, and the caller's values are known now.
            if signals_view:
                changes["signals"] = excluded.signals
            if frames is not None:
                changes["video_frames"] = excluded.video_frames
            return changes

        return self._db.upsert(items, values, (items.c.key,), update)

    async def iter_with_signals(self, batch: int = 1000) -> AsyncIterator[list[ItemRow]]:
        """Every item that has signals or video frames, in key order, `batch`
        at a time, each exactly once (keyset pagination, so items added while
        iterating do not shift pages; one short transaction per page)."""
        if batch < 1:
            raise ValueError("batch must be >= 1")
        has_signals = sa.or_(
            # Stored JSON text of an empty object is exactly '{}' on both
            # dialects (PostgreSQL json keeps the text as sent).
            sa.cast(items.c.signals, sa.Text) != "{}",
            items.c.video_frames.is_not(None),
        )
        after: str | None = None
        while True:
            query = sa.select(items).where(has_signals).order_by(items.c.key).limit(batch)
            if after is not None:
                query = query.where(items.c.key > after)
            async with self._db.read() as conn:
                page = [item_from_row(r) for r in (await conn.execute(query)).mappings()]
            if not page:
                return
            yield page
            if len(page) < batch:
                return
            after = page[-1].key

    async def count(self) -> int:
        """Content items; directories remembered by `record_directory` are not items."""
        query = sa.select(sa.func.count()).select_from(items).where(items.c.status != ItemState.DIRECTORY.value)
        async with self._db.read() as conn:
            return int(await conn.scalar(query) or 0)

    async def locations_of(self, item_key: str) -> list[LocationRow]:
        """Where the item was seen, oldest first."""
        async with self._db.read() as conn:
            return await locations.locations_of(conn, item_key)
