"""Job slots: a periodic job runs once per slot across every agent sharing the database."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from agent.model.time import utcnow
from agent.store.engine import Engine
from agent.store.schema import job_slots


class SlotRepository:
    def __init__(self, engine: Engine) -> None:
        self._db = engine

    async def claim(self, job: str, slot: int, node: str) -> bool:
        """True for exactly one caller per (job, slot), across processes and
        nodes: the primary key decides, the losers' INSERT does nothing. On
        PostgreSQL a concurrent loser waits for the winner's commit, then sees
        the conflict; on SQLite writers are serialized by the file lock."""
        stmt = self._db.upsert(
            job_slots,
            {"job": job, "slot": slot, "node": node, "claimed_at": utcnow()},
            (job_slots.c.job, job_slots.c.slot),
        )
        async with self._db.write() as conn:
            return (await conn.execute(stmt)).rowcount == 1

    async def prune(self, older_than: datetime) -> int:
        """Forget claims made before `older_than`; returns how many."""
        stmt = sa.delete(job_slots).where(job_slots.c.claimed_at < older_than)
        async with self._db.write() as conn:
            return (await conn.execute(stmt)).rowcount
