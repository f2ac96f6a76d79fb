"""Scans queued through the API: submitted, claimed by a node under a lease, renewed
while they run, finished or cancelled.

A node holds a running job until `lease_until` and renews it while it scans; a node
that dies stops renewing, and another node (or itself after a restart, through
`requeue_own`) takes the job again. On PostgreSQL concurrent claimers skip each
other's rows (FOR UPDATE SKIP LOCKED); SQLite has one writer (BEGIN IMMEDIATE), so
its select-then-update is already atomic."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import RowMapping

from agent.model.jobs import JobOptions, JobProgress, JobStatus, ScanJobRow
from agent.model.time import utcnow
from agent.store.engine import Engine
from agent.store.schema import scan_jobs

_ENDINGS = (JobStatus.DONE, JobStatus.FAILED, JobStatus.CANCELLED)


def job_from_row(r: RowMapping) -> ScanJobRow:
    report = r["report"]
    return ScanJobRow(
        id=int(r["id"]),
        status=JobStatus(r["status"]),
        target=r["target"],
        options=JobOptions.from_json(dict(r["options"] or {})),
        requested_by=r["requested_by"],
        created_at=r["created_at"],
        started_at=r["started_at"],
        finished_at=r["finished_at"],
        node=r["node"],
        lease_until=r["lease_until"],
        attempts=int(r["attempts"]),
        progress=JobProgress.from_json(dict(r["progress"] or {})),
        report=dict(report) if report is not None else None,
        error=r["error"],
        cancel_requested=bool(r["cancel_requested"]),
    )


def _held_by(job_id: int, node: str) -> sa.ColumnElement[bool]:
    return sa.and_(scan_jobs.c.id == job_id, scan_jobs.c.node == node, scan_jobs.c.status == JobStatus.RUNNING.value)


class ScanJobRepository:
    def __init__(self, engine: Engine) -> None:
        self._db = engine

    async def submit(self, target: str, options: JobOptions, requested_by: str | None) -> ScanJobRow:
        """A queued job (the caller checked the target and options)."""
        stmt = (
            sa.insert(scan_jobs)
            .values(
                status=JobStatus.QUEUED.value,
                target=target,
                options=options.to_json(),
                requested_by=requested_by,
                created_at=utcnow(),
                attempts=0,
                progress=JobProgress().to_json(),
                cancel_requested=False,
            )
            .returning(*scan_jobs.c)
        )
        async with self._db.write() as conn:
            return job_from_row((await conn.execute(stmt)).mappings().one())

    async def get(self, job_id: int) -> ScanJobRow | None:
        async with self._db.read() as conn:
            row = (await conn.execute(sa.select(scan_jobs).where(scan_jobs.c.id == job_id))).mappings().one_or_none()
        return job_from_row(row) if row is not None else None

    async def page(
        self, *, limit: int, before_id: int | None = None, requested_by: str | None = None
    ) -> list[ScanJobRow]:
        """Newest first; `before_id` is the cursor (jobs submitted before that one)."""
        query = sa.select(scan_jobs).order_by(scan_jobs.c.id.desc()).limit(limit)
        if before_id is not None:
            query = query.where(scan_jobs.c.id < before_id)
        if requested_by is not None:
            query = query.where(scan_jobs.c.requested_by == requested_by)
        async with self._db.read() as conn:
            return [job_from_row(r) for r in (await conn.execute(query)).mappings()]

    async def claim(self, node: str, *, limit: int, lease_s: float, now: datetime | None = None) -> list[ScanJobRow]:
        """Up to `limit` jobs for `node` to run, oldest first: queued ones, and running ones
        whose lease expired (their node died). A job whose lease expired after a cancel was
        asked for is cancelled instead: nobody is left to stop it."""
        if limit <= 0:
            return []
        now = now or utcnow()
        running, expired = scan_jobs.c.status == JobStatus.RUNNING.value, scan_jobs.c.lease_until < now
        abandoned = (
            sa.update(scan_jobs)
            .where(running, expired, scan_jobs.c.cancel_requested.is_(True))
            .values(status=JobStatus.CANCELLED.value, finished_at=now, lease_until=None)
        )
        due = (
            sa.select(scan_jobs.c.id)
            .where(
                sa.or_(scan_jobs.c.status == JobStatus.QUEUED.value, sa.and_(running, expired)),
                scan_jobs.c.cancel_requested.is_(False),
            )
            .order_by(scan_jobs.c.created_at, scan_jobs.c.id)
            .limit(limit)
        )
        if self._db.dialect == "postgresql":
            due = due.with_for_update(skip_locked=True)
        async with self._db.write() as conn:
            await conn.execute(abandoned)
            ids = [int(r[0]) for r in (await conn.execute(due)).all()]
            if not ids:
                return []
            stmt = (
                sa.update(scan_jobs)
                .where(scan_jobs.c.id.in_(ids))
                .values(
                    status=JobStatus.RUNNING.value,
                    node=node,
                    lease_until=now + timedelta(seconds=lease_s),
                    started_at=sa.func.coalesce(scan_jobs.c.started_at, now),
                    attempts=scan_jobs.c.attempts + 1,
                )
                .returning(*scan_jobs.c)
            )
            rows = [job_from_row(r) for r in (await conn.execute(stmt)).mappings()]
        return sorted(rows, key=lambda j: (j.created_at, j.id))

    async def renew(
        self,
        job_id: int,
        node: str,
        *,
        lease_s: float,
        progress: JobProgress | None = None,
        now: datetime | None = None,
    ) -> ScanJobRow | None:
        """Extend `node`'s lease (and keep `progress`); the row after, whose
        `cancel_requested` tells the runner to stop. None: `node` no longer holds the job."""
        now = now or utcnow()
        values: dict[str, Any] = {"lease_until": now + timedelta(seconds=lease_s)}
        if progress is not None:
            values["progress"] = progress.to_json()
        stmt = sa.update(scan_jobs).where(_held_by(job_id, node)).values(values).returning(*scan_jobs.c)
        async with self._db.write() as conn:
            row = (await conn.execute(stmt)).mappings().one_or_none()
        return job_from_row(row) if row is not None else None

    async def finish(
        self,
        job_id: int,
        node: str,
        status: JobStatus,
        *,
        report: dict[str, Any] | None = None,
        error: str | None = None,
        progress: JobProgress | None = None,
    ) -> bool:
        """End a job `node` holds (DONE, FAILED or CANCELLED); False when it no longer
        holds it (its lease expired and another node took it)."""
        if status not in _ENDINGS:
            raise ValueError(f"a job finishes as done, failed or cancelled, not {status!r}")
        values: dict[str, Any] = {
            "status": status.value,
            "finished_at": utcnow(),
            "lease_until": None,
            "report": report,
            "error": error,
        }
        if progress is not None:
            values["progress"] = progress.to_json()
        async with self._db.write() as conn:
            return (await conn.execute(sa.update(scan_jobs).where(_held_by(job_id, node)).values(values))).rowcount == 1

    async def cancel(self, job_id: int) -> ScanJobRow | None:
        """A queued job is cancelled at once; a running one is asked to stop (its runner
        sees `cancel_requested` at its next renewal); a finished one is left as it is.
        The row after; None: no such job."""
        this = scan_jobs.c.id == job_id
        async with self._db.write() as conn:
            await conn.execute(
                sa.update(scan_jobs)
                .where(this, scan_jobs.c.status == JobStatus.QUEUED.value)
                .values(status=JobStatus.CANCELLED.value, finished_at=utcnow())
            )
            await conn.execute(
                sa.update(scan_jobs)
                .where(this, scan_jobs.c.status == JobStatus.RUNNING.value)
                .values(cancel_requested=True)
            )
            row = (await conn.execute(sa.select(scan_jobs).where(this))).mappings().one_or_none()
        return job_from_row(row) if row is not None else None

    async def requeue_own(self, node: str) -> int:
        """At start: the jobs this node was running when it stopped are queued again (a
        cancel asked for meanwhile cancels them instead). Returns how many were queued."""
        mine = sa.and_(scan_jobs.c.node == node, scan_jobs.c.status == JobStatus.RUNNING.value)
        async with self._db.write() as conn:
            await conn.execute(
                sa.update(scan_jobs)
                .where(mine, scan_jobs.c.cancel_requested.is_(True))
                .values(status=JobStatus.CANCELLED.value, finished_at=utcnow(), lease_until=None)
            )
            requeued = await conn.execute(
                sa.update(scan_jobs).where(mine).values(status=JobStatus.QUEUED.value, node=None, lease_until=None)
            )
            return int(requeued.rowcount)
