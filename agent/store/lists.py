"""Hash and deny lists: the versions loaded, and the sync state of remote lists."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import RowMapping

from agent.model.records import ListStateRow, ListVersionRow
from agent.model.time import utcnow
from agent.store.engine import Engine, Excluded, later
from agent.store.schema import list_state, list_versions


def list_version_from_row(r: RowMapping) -> ListVersionRow:
    return ListVersionRow(
        id=r["id"],
        name=r["name"],
        source=r["source"],
        content_hash=r["content_hash"],
        entries=r["entries"],
        deny_rules=r["deny_rules"],
        problems=r["problems"],
        loaded_at=r["loaded_at"],
    )


def list_state_from_row(r: RowMapping) -> ListStateRow:
    return ListStateRow(
        name=r["name"],
        source=r["source"],
        etag=r["etag"],
        last_modified=r["last_modified"],
        checkpoint=r["checkpoint"],
        content_hash=r["content_hash"],
        updated_at=r["updated_at"],
    )


class ListRepository:
    def __init__(self, engine: Engine) -> None:
        self._db = engine

    async def record_version(
        self, name: str, source: str, content_hash: str, entries: int, deny_rules: int, problems: int
    ) -> bool:
        """Note that list `name` now has this content. True when this content
        was never recorded for the list; a list that goes back to an earlier
        content gets that version's loaded_at refreshed (False), so
        latest_versions still names what is loaded now."""
        now = utcnow()
        values = {
            "name": name,
            "source": source,
            "content_hash": content_hash,
            "entries": entries,
            "deny_rules": deny_rules,
            "problems": problems,
            "loaded_at": now,
        }
        insert = self._db.upsert(list_versions, values, (list_versions.c.name, list_versions.c.content_hash)).returning(
            list_versions.c.id
        )
        async with self._db.write() as conn:
            if (await conn.execute(insert)).first() is not None:
                return True
            await conn.execute(
                sa.update(list_versions)
                .where(list_versions.c.name == name, list_versions.c.content_hash == content_hash)
                .values(loaded_at=later(sa.literal(now, list_versions.c.loaded_at.type), list_versions.c.loaded_at))
            )
            return False

    async def latest_versions(self) -> list[ListVersionRow]:
        """The most recently loaded version of each list, by name."""
        ranked = sa.select(
            list_versions,
            sa.func.row_number()
            .over(
                partition_by=list_versions.c.name,
                order_by=(list_versions.c.loaded_at.desc(), list_versions.c.id.desc()),
            )
            .label("rank"),
        ).subquery()
        query = (
            sa.select(*(ranked.c[c.name] for c in list_versions.c)).where(ranked.c.rank == 1).order_by(ranked.c.name)
        )
        async with self._db.read() as conn:
            return [list_version_from_row(r) for r in (await conn.execute(query)).mappings()]

    async def get_state(self, name: str) -> ListStateRow | None:
        async with self._db.read() as conn:
            row = (await conn.execute(sa.select(list_state).where(list_state.c.name == name))).mappings().first()
        return None if row is None else list_state_from_row(row)

    async def put_state(self, state: ListStateRow) -> None:
        """Insert or replace the sync state of list `state.name`."""
        values = {
            "name": state.name,
            "source": state.source,
            "etag": state.etag,
            "last_modified": state.last_modified,
            "checkpoint": state.checkpoint,
            "content_hash": state.content_hash,
            "updated_at": state.updated_at,
        }

        def update(excluded: Excluded) -> dict[str, Any]:
            return {k: excluded[k] for k in values if k != "name"}

        async with self._db.write() as conn:
            await conn.execute(self._db.upsert(list_state, values, (list_state.c.name,), update))
