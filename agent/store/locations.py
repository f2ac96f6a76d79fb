"""Where items were seen (their provenance): the pieces the items and findings
repositories share inside their transactions."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from agent.model.records import LocationRow
from agent.store.engine import Engine, Excluded, later
from agent.store.schema import LOCATION_CONFLICT_TARGET, item_locations

# Oldest first: the first location is the one an item's first alert was built from.
IN_SEEN_ORDER = (item_locations.c.first_seen_at, item_locations.c.id)


def location_from_row(r: RowMapping) -> LocationRow:
    return LocationRow(
        id=r["id"],
        item_key=r["item_key"],
        target_id=r["target_id"],
        root_cid=r["root_cid"],
        path=r["path"],
        gateway=r["gateway"],
        first_seen_at=r["first_seen_at"],
        last_seen_at=r["last_seen_at"],
    )


def upsert_location(db: Engine, location: LocationRow) -> sa.Insert:
    """Insert a place, or move its last_seen_at forward (never back) and keep a known gateway."""
    values = {
        "item_key": location.item_key,
        "target_id": location.target_id,
        "root_cid": location.root_cid,
        "path": location.path,
        "gateway": location.gateway,
        "first_seen_at": location.first_seen_at,
        "last_seen_at": location.last_seen_at,
    }

    def update(excluded: Excluded) -> dict[str, Any]:
        return {
            "last_seen_at": later(excluded.last_seen_at, item_locations.c.last_seen_at),
            "gateway": sa.func.coalesce(excluded.gateway, item_locations.c.gateway),
        }

    return db.upsert(item_locations, values, LOCATION_CONFLICT_TARGET, update)


async def first_location(conn: AsyncConnection, item_key: str) -> LocationRow | None:
    query = sa.select(item_locations).where(item_locations.c.item_key == item_key).order_by(*IN_SEEN_ORDER).limit(1)
    row = (await conn.execute(query)).mappings().first()
    return None if row is None else location_from_row(row)


async def locations_of(conn: AsyncConnection, item_key: str) -> list[LocationRow]:
    query = sa.select(item_locations).where(item_locations.c.item_key == item_key).order_by(*IN_SEEN_ORDER)
    return [location_from_row(r) for r in (await conn.execute(query)).mappings()]
