"""Targets, their polls and poll claims."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import RowMapping

from agent.model.records import JSONObject, TargetRow
from agent.model.time import utcnow
from agent.store.engine import Engine
from agent.store.errors import DuplicateTarget
from agent.store.schema import targets


def target_from_row(r: RowMapping) -> TargetRow:
    return TargetRow(
        id=r["id"],
        url=r["url"],
        kind=r["kind"],
        interval_s=r["interval_s"],
        options=dict(r["options"] or {}),
        enabled=bool(r["enabled"]),
        created_at=r["created_at"],
        last_poll_at=r["last_poll_at"],
        last_success_at=r["last_success_at"],
        last_error=r["last_error"],
        consecutive_failures=r["consecutive_failures"],
        next_run_at=r["next_run_at"],
        state=dict(r["state"] or {}),
    )


def _target_is(id_or_url: int | str) -> sa.ColumnElement[bool]:
    if isinstance(id_or_url, int):
        return targets.c.id == id_or_url
    return targets.c.url == id_or_url


class TargetRepository:
    def __init__(self, engine: Engine) -> None:
        self._db = engine

    async def add(self, url: str, kind: str, interval_s: int, options: JSONObject | None = None) -> TargetRow:
        """Register a target. Raises DuplicateTarget if `url` is registered."""
        values = {
            "url": url,
            "kind": kind,
            "interval_s": interval_s,
            "options": dict(options or {}),
            "enabled": True,
            "created_at": utcnow(),
            "consecutive_failures": 0,
            "state": {},
        }
        # ON CONFLICT DO NOTHING instead of catching IntegrityError: no
        # aborted transaction on PostgreSQL, and no guessing which constraint
        # a driver error was about.
        stmt = self._db.upsert(targets, values, (targets.c.url,)).returning(*targets.c)
        async with self._db.write() as conn:
            row = (await conn.execute(stmt)).mappings().first()
        if row is None:
            raise DuplicateTarget(url)
        return target_from_row(row)

    async def get(self, id_or_url: int | str) -> TargetRow | None:
        async with self._db.read() as conn:
            row = (await conn.execute(sa.select(targets).where(_target_is(id_or_url)))).mappings().first()
        return None if row is None else target_from_row(row)

    async def all(self, enabled_only: bool = False) -> list[TargetRow]:
        query = sa.select(targets).order_by(targets.c.id)
        if enabled_only:
            query = query.where(targets.c.enabled.is_(True))
        async with self._db.read() as conn:
            return [target_from_row(r) for r in (await conn.execute(query)).mappings()]

    async def set_enabled(self, id_or_url: int | str, enabled: bool) -> bool:
        """Pause or resume a target; False if there is no such target."""
        stmt = sa.update(targets).where(_target_is(id_or_url)).values(enabled=enabled)
        async with self._db.write() as conn:
            return (await conn.execute(stmt)).rowcount > 0

    async def remove(self, id_or_url: int | str) -> bool:
        """Delete a target and where-seen rows under it; its scans stay (with
        target_id cleared) and items and findings stay. False if absent."""
        async with self._db.write() as conn:
            return (await conn.execute(sa.delete(targets).where(_target_is(id_or_url)))).rowcount > 0

    async def record_poll(
        self,
        target_id: int,
        *,
        ok: bool,
        error: str | None,
        next_run_at: datetime | None,
        state: JSONObject | None = None,
    ) -> TargetRow | None:
        """Record one poll's outcome in a single UPDATE: last_poll_at, and on
        success last_success_at and a reset failure count, else the count plus
        one; last_error is set to `error` (None clears it); `state` replaces the
        stored cursors when given. Returns the updated target, or None if it
        was removed meanwhile (a poll racing a removal is not an error)."""
        now = utcnow()
        values: dict[str, Any] = {"last_poll_at": now, "last_error": error, "next_run_at": next_run_at}
        if ok:
            values["last_success_at"] = now
            values["consecutive_failures"] = 0
        else:
            # Incremented in SQL, not read-modify-write: two nodes recording
            # failures at once both count.
            values["consecutive_failures"] = targets.c.consecutive_failures + 1
        if state is not None:
            values["state"] = dict(state)
        stmt = sa.update(targets).where(targets.c.id == target_id).values(values).returning(*targets.c)
        async with self._db.write() as conn:
            row = (await conn.execute(stmt)).mappings().first()
        return None if row is None else target_from_row(row)

    async def claim_poll(self, target_id: int, node: str, *, min_gap_s: float) -> bool:
        """Claim a scheduled poll of an enabled target for this agent: True
        unless another agent (or this one) polled it less than `min_gap_s`
        seconds ago, so agents sharing a database poll each target once per
        interval. One conditional UPDATE that stamps last_poll_at: on
        PostgreSQL concurrent claimers queue on the row lock and re-check the
        condition after the winner commits, so exactly one wins; SQLite has a
        single writer. `node` is not stored here (no column for it yet);
        scans.start records which node ran the poll. A claimer that dies
        mid-poll holds the target for `min_gap_s` at most."""
        now = utcnow()
        stmt = (
            sa.update(targets)
            .where(
                targets.c.id == target_id,
                targets.c.enabled.is_(True),
                sa.or_(
                    targets.c.last_poll_at.is_(None),
                    targets.c.last_poll_at <= now - timedelta(seconds=min_gap_s),
                ),
            )
            .values(last_poll_at=now)
        )
        async with self._db.write() as conn:
            return (await conn.execute(stmt)).rowcount == 1
