"""Gateway marks: liars one node caught, distrusted by every node sharing the database."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from agent.model.gateways import GatewayMark
from agent.model.time import utcnow
from agent.store.engine import Engine
from agent.store.schema import gateway_marks


class GatewayMarkRepository:
    def __init__(self, engine: Engine) -> None:
        self._db = engine

    async def mark(self, url: str, reason: str, cid: str, node: str, until: datetime) -> None:
        """Distrust `url` until `until`; a gateway already marked keeps the later of both ends
        (a mark never shortens distrust) and takes this mark's reason, CID and node."""
        async with self._db.write() as conn:
            earlier = await conn.scalar(sa.select(gateway_marks.c.until).where(gateway_marks.c.url == url))
            values = {
                "url": url,
                "reason": reason,
                "cid": cid,
                "node": node,
                "marked_at": utcnow(),
                "until": until if earlier is None else max(earlier, until),
            }
            stmt = self._db.upsert(
                gateway_marks,
                values,
                (gateway_marks.c.url,),
                lambda excluded: {k: excluded[k] for k in ("reason", "cid", "node", "marked_at", "until")},
            )
            await conn.execute(stmt)

    async def distrusted(self, now: datetime) -> list[GatewayMark]:
        """The gateways distrusted at `now`, by URL."""
        stmt = sa.select(gateway_marks).where(gateway_marks.c.until > now).order_by(gateway_marks.c.url)
        async with self._db.read() as conn:
            rows = (await conn.execute(stmt)).all()
        return [GatewayMark(r.url, r.reason, r.cid, r.node, r.marked_at, r.until) for r in rows]
