"""Findings: matches of items against list entries, recorded once each and never
again once reviewed as a false positive (suppressions)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from agent.model.finding import matched_on
from agent.model.records import FindingRow, LocationRow
from agent.model.time import utcnow
from agent.store.engine import Engine
from agent.store.locations import first_location
from agent.store.outbox import Outbox, write_events
from agent.store.schema import FINDING_CONFLICT_TARGET, deliveries, events, findings, subscriptions, suppressions
from agent.store.subscriptions import enabled_subscriptions


def finding_from_row(r: RowMapping) -> FindingRow:
    # The `detail` column holds what a report finding has beyond the columns.
    detail = dict(r["detail"] or {})
    source, line, percent = detail.get("list_source"), detail.get("list_line"), detail.get("compared_percent")
    return FindingRow(
        id=r["id"],
        item_key=r["item_key"],
        list_name=r["list_name"],
        entry_id=r["entry_id"],
        entry_value=r["entry_value"],
        signal_type=matched_on(r["signal_type"]),
        distance=float(r["distance"]),
        labels=tuple(r["labels"] or ()),
        query=r["query"],
        list_source=source if isinstance(source, str) else None,
        list_line=line if isinstance(line, int) and not isinstance(line, bool) else None,
        compared_percent=float(percent) if isinstance(percent, int | float) else None,
        created_at=r["created_at"],
        retroactive=bool(r["retroactive"]),
    )


def delivered_to_clause(owner: str) -> sa.ColumnElement[bool]:
    """The finding's finding.created event has a delivery (any status) to a subscription
    that `owner` created: what a platform may read of the findings."""
    return sa.exists(
        sa.select(sa.literal(1))
        .select_from(deliveries)
        .join(events, events.c.id == deliveries.c.event_id)
        .join(subscriptions, subscriptions.c.id == deliveries.c.subscription_id)
        .where(
            events.c.type == "finding.created",
            events.c.finding_id == findings.c.id,
            subscriptions.c.owner == owner,
        )
    )


async def _suppressed(conn: AsyncConnection, rows: Sequence[FindingRow]) -> set[tuple[str, str, str]]:
    keys = {(r.item_key, r.list_name, r.entry_id) for r in rows}
    if not keys:
        return set()
    query = sa.select(suppressions.c.item_key, suppressions.c.list_name, suppressions.c.entry_id).where(
        suppressions.c.item_key.in_({k[0] for k in keys})
    )
    found = {(str(r[0]), str(r[1]), str(r[2])) for r in (await conn.execute(query)).all()}
    return found & keys


async def insert_findings(
    db: Engine, conn: AsyncConnection, rows: Sequence[FindingRow], *, retroactive: bool | None
) -> list[FindingRow]:
    """Record findings in the caller's transaction; `retroactive` (unless None)
    overrides the rows' flag. Returns the new ones, as stored."""
    # Duplicates inside one call would make the second one "not new" in
    # an order-dependent way; keep the first of each identity.
    unique: dict[tuple[str, str, str, str], FindingRow] = {}
    for row in rows:
        unique.setdefault(row.identity, row)
    # A finding reviewed as a false positive is never recorded (nor alerted) again
    # for the same item and list entry, whichever signal matches next time.
    suppressed = await _suppressed(conn, list(unique.values()))
    unique = {k: v for k, v in unique.items() if (v.item_key, v.list_name, v.entry_id) not in suppressed}
    if not unique:
        return []
    now = utcnow()
    values = [
        {
            "item_key": f.item_key,
            "list_name": f.list_name,
            "entry_id": f.entry_id,
            "entry_value": f.entry_value,
            "signal_type": f.signal_type.value,
            "distance": float(f.distance),
            "labels": list(f.labels),
            "query": f.query,
            "detail": f.detail_view(),
            # The store stamps the time: findings are ordered and paged by
            # when they were recorded, not by when a caller built them.
            "created_at": now,
            "retroactive": f.retroactive if retroactive is None else retroactive,
        }
        for f in unique.values()
    ]
    # RETURNING with ON CONFLICT DO NOTHING yields only the inserted rows
    # on both dialects: that is the "new findings" answer, race-free even
    # when two nodes record the same finding at once.
    stmt = db.upsert(findings, values, FINDING_CONFLICT_TARGET).returning(*findings.c)
    inserted = {r.identity: r for r in (finding_from_row(m) for m in (await conn.execute(stmt)).mappings())}
    return [inserted[key] for key in unique if key in inserted]


async def queue_alerts(
    conn: AsyncConnection, new: list[FindingRow], location: LocationRow | None, outbox: Outbox | None
) -> None:
    """The outbox: events for new findings are written in the findings' own transaction."""
    if outbox is None or not new:
        return
    await write_events(conn, outbox(new, location, await enabled_subscriptions(conn)))


class FindingRepository:
    def __init__(self, engine: Engine) -> None:
        self._db = engine

    async def add(
        self,
        item_key: str,
        findings_: Sequence[FindingRow],
        retroactive: bool = False,
        outbox: Outbox | None = None,
    ) -> list[FindingRow]:
        """Record findings for a stored item (e.g. a retroactive match after a
        list update); `retroactive` overrides the rows' flag. Returns the new
        ones only; their events name the item's first location."""
        for finding in findings_:
            if finding.item_key != item_key:
                raise ValueError(f"finding is for {finding.item_key!r}, not {item_key!r}")
        async with self._db.write() as conn:
            new = await insert_findings(self._db, conn, findings_, retroactive=retroactive)
            if new and outbox is not None:
                await queue_alerts(conn, new, await first_location(conn, item_key), outbox)
            return new

    async def recent(
        self, limit: int = 100, since: datetime | None = None, list_name: str | None = None
    ) -> list[FindingRow]:
        """Newest first. `since` is inclusive: a finding recorded in the same
        instant as the last one a caller saw is shown again, never skipped."""
        query = sa.select(findings).order_by(findings.c.created_at.desc(), findings.c.id.desc())
        if since is not None:
            query = query.where(findings.c.created_at >= since)
        if list_name is not None:
            query = query.where(findings.c.list_name == list_name)
        async with self._db.read() as conn:
            return [finding_from_row(r) for r in (await conn.execute(query.limit(limit))).mappings()]

    async def get(self, finding_id: int) -> FindingRow | None:
        async with self._db.read() as conn:
            row = (await conn.execute(sa.select(findings).where(findings.c.id == finding_id))).mappings().one_or_none()
        return finding_from_row(row) if row is not None else None

    async def delivered_to(self, finding_id: int, owner: str) -> bool:
        """Whether this finding was sent to a subscription of `owner` (see delivered_to_clause)."""
        query = sa.select(findings.c.id).where(findings.c.id == finding_id, delivered_to_clause(owner))
        async with self._db.read() as conn:
            return (await conn.execute(query)).first() is not None

    async def count(self) -> int:
        async with self._db.read() as conn:
            return int(await conn.scalar(sa.select(sa.func.count()).select_from(findings)) or 0)
