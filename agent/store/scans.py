"""Scans: one row per poll or one-off scan, and the poll claims a stopped scan releases."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from agent.model.records import JSONObject, ScanRow
from agent.model.status import ScanStatus
from agent.model.time import utcnow
from agent.store.engine import Engine
from agent.store.schema import scans, targets

FINISHED_STATUSES = frozenset({ScanStatus.OK, ScanStatus.FAILED, ScanStatus.INTERRUPTED})
INTERRUPTED_ERROR = "the agent stopped before the scan finished"


def scan_from_row(r: RowMapping) -> ScanRow:
    return ScanRow(
        id=r["id"],
        target_id=r["target_id"],
        target_url=r["target_url"],
        started_at=r["started_at"],
        finished_at=r["finished_at"],
        status=ScanStatus(r["status"]),
        root_cid=r["root_cid"],
        summary=dict(r["summary"] or {}),
        error=r["error"],
        node=r["node"],
    )


async def _release_claims(conn: AsyncConnection, target_ids: Sequence[int]) -> None:
    """The poll did not happen: the next agent to start polls these targets at
    once instead of waiting out the claim (targets.last_poll_at, see claim_poll)."""
    if target_ids:
        await conn.execute(
            sa.update(targets).where(targets.c.id.in_(list(target_ids))).values(last_poll_at=targets.c.last_success_at)
        )


class ScanRepository:
    def __init__(self, engine: Engine) -> None:
        self._db = engine

    async def start(self, target_id: int | None, target_url: str, node: str | None = None) -> int:
        stmt = (
            sa.insert(scans)
            .values(
                target_id=target_id,
                target_url=target_url,
                started_at=utcnow(),
                status=ScanStatus.RUNNING.value,
                summary={},
                node=node,
            )
            .returning(scans.c.id)
        )
        async with self._db.write() as conn:
            return int((await conn.execute(stmt)).scalar_one())

    async def finish(
        self,
        scan_id: int,
        status: str,
        *,
        root_cid: str | None = None,
        summary: JSONObject | None = None,
        error: str | None = None,
    ) -> bool:
        """Close a scan with 'ok', 'failed' or 'interrupted' (a ScanStatus). False
        if there is no such scan.

        An interrupted scan (its poll cancelled by a graceful stop) releases the
        poll claim it held in the same transaction, as interrupt_running does
        after a crash."""
        if status not in FINISHED_STATUSES:
            raise ValueError(f"a finished scan's status is one of {sorted(FINISHED_STATUSES)}, not {status!r}")
        finished = ScanStatus(status)
        values: dict[str, Any] = {"status": finished.value, "finished_at": utcnow(), "error": error}
        if root_cid is not None:
            values["root_cid"] = root_cid
        if summary is not None:
            values["summary"] = dict(summary)
        async with self._db.write() as conn:
            result = await conn.execute(
                sa.update(scans).where(scans.c.id == scan_id).values(values).returning(scans.c.target_id)
            )
            row = result.first()
            if row is not None and finished is ScanStatus.INTERRUPTED and row.target_id is not None:
                await _release_claims(conn, [row.target_id])
            return row is not None

    async def interrupt_running(self, node: str | None = None) -> int:
        """At startup: mark scans left 'running' by a previous process as
        'interrupted'. With `node`, only that node's scans (other nodes' scans
        may really be running); without, every running scan (single node).
        Returns how many were marked; their poll claims are released in the
        same transaction."""
        stmt = (
            sa.update(scans)
            .where(scans.c.status == ScanStatus.RUNNING.value)
            .values(
                status=ScanStatus.INTERRUPTED.value,
                finished_at=utcnow(),
                error=sa.func.coalesce(scans.c.error, INTERRUPTED_ERROR),
            )
            .returning(scans.c.id, scans.c.target_id)
        )
        if node is not None:
            stmt = stmt.where(scans.c.node == node)
        async with self._db.write() as conn:
            rows = (await conn.execute(stmt)).all()
            await _release_claims(conn, sorted({row.target_id for row in rows if row.target_id is not None}))
            return len(rows)

    async def get(self, scan_id: int) -> ScanRow | None:
        async with self._db.read() as conn:
            row = (await conn.execute(sa.select(scans).where(scans.c.id == scan_id))).mappings().first()
        return None if row is None else scan_from_row(row)

    async def recent(self, limit: int = 20) -> list[ScanRow]:
        """Newest first."""
        query = sa.select(scans).order_by(scans.c.started_at.desc(), scans.c.id.desc()).limit(limit)
        async with self._db.read() as conn:
            return [scan_from_row(r) for r in (await conn.execute(query)).mappings()]
