"""The audit log: every mutating API call (and token command), who made it, when, from where."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import RowMapping

from agent.model.access import AuditEntry, AuditRow, Role
from agent.model.time import utcnow
from agent.store.engine import Engine
from agent.store.schema import audit_log


def audit_from_row(r: RowMapping) -> AuditRow:
    return AuditRow(
        id=int(r["id"]),
        at=r["at"],
        action=r["action"],
        status=int(r["status"]),
        principal=r["principal"],
        token_id=r["token_id"],
        role=Role(r["role"]) if r["role"] is not None else None,
        resource=r["resource"],
        remote=r["remote"],
        detail=dict(r["detail"] or {}),
    )


class AuditRepository:
    def __init__(self, engine: Engine) -> None:
        self._db = engine

    async def record(self, entry: AuditEntry) -> AuditRow:
        """Keep one entry; its time is `entry.at`, or now when that is None."""
        stmt = (
            sa.insert(audit_log)
            .values(
                at=entry.at or utcnow(),
                action=entry.action,
                status=entry.status,
                principal=entry.principal,
                token_id=entry.token_id,
                role=entry.role.value if entry.role is not None else None,
                resource=entry.resource,
                remote=entry.remote,
                detail=dict(entry.detail),
            )
            .returning(*audit_log.c)
        )
        async with self._db.write() as conn:
            return audit_from_row((await conn.execute(stmt)).mappings().one())

    async def recent(
        self, *, limit: int = 100, before_id: int | None = None, principal: str | None = None
    ) -> list[AuditRow]:
        """Newest first; `before_id` is the cursor (entries older than that one)."""
        query = sa.select(audit_log).order_by(audit_log.c.id.desc()).limit(limit)
        if before_id is not None:
            query = query.where(audit_log.c.id < before_id)
        if principal is not None:
            query = query.where(audit_log.c.principal == principal)
        async with self._db.read() as conn:
            return [audit_from_row(r) for r in (await conn.execute(query)).mappings()]
