"""Reviews of findings (the audit trail), retractions and suppressions."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import sqlalchemy as sa
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from agent.model.records import AuditedReview, FindingRow, NewEvent, RetractionRow, ReviewRow
from agent.model.status import RetractionReason, Verdict
from agent.model.time import utcnow
from agent.store.engine import Engine
from agent.store.findings import finding_from_row
from agent.store.outbox import FollowUp, alerted_subscriptions, send_follow_up
from agent.store.schema import findings, retractions, reviews, suppressions


def review_from_row(r: RowMapping) -> ReviewRow:
    return ReviewRow(r["id"], r["finding_id"], Verdict(r["verdict"]), r["note"], r["reviewer"], r["created_at"])


def retraction_from_row(r: RowMapping) -> RetractionRow:
    return RetractionRow(int(r["finding_id"]), RetractionReason(r["reason"]), r["detail"], r["created_at"])


async def _retract(
    conn: AsyncConnection,
    finding_ids: Sequence[int],
    reason: RetractionReason,
    detail: str | None,
    follow_up: FollowUp | None,
) -> list[int]:
    """Retract the findings not retracted yet, each with its follow-up event; returns those."""
    query = sa.select(retractions.c.finding_id).where(retractions.c.finding_id.in_(list(finding_ids)))
    already = {int(r[0]) for r in (await conn.execute(query)).all()}
    fresh = [f for f in finding_ids if f not in already]
    now = utcnow()
    for fid in fresh:
        await conn.execute(
            sa.insert(retractions).values(finding_id=fid, reason=reason.value, detail=detail, created_at=now)
        )
        if follow_up is not None:
            await send_follow_up(conn, follow_up, await alerted_subscriptions(conn, finding_ids=[fid]))
    return fresh


class ReviewRepository:
    def __init__(self, engine: Engine) -> None:
        self._db = engine

    async def review(
        self,
        finding_id: int,
        verdict: str,
        *,
        note: str | None,
        reviewer: str | None,
        retraction: FollowUp | None = None,
    ) -> ReviewRow:
        """Keep the review (every review is kept: the audit trail). A false positive
        retracts the finding, suppresses its item+entry, and sends `retraction(...)`
        to the subscriptions that were alerted about it, in the same transaction.
        `verdict` is a Verdict (or its value)."""
        try:
            judged = Verdict(verdict)
        except ValueError:
            raise ValueError("verdict must be false_positive or confirmed") from None
        now = utcnow()
        async with self._db.write() as conn:
            query = sa.select(findings).where(findings.c.id == finding_id)
            finding = (await conn.execute(query)).mappings().one_or_none()
            if finding is None:
                raise LookupError(f"no finding {finding_id}")
            insert = (
                sa.insert(reviews)
                .values(finding_id=finding_id, verdict=judged.value, note=note, reviewer=reviewer, created_at=now)
                .returning(*reviews.c)
            )
            row = (await conn.execute(insert)).mappings().one()
            if judged is Verdict.FALSE_POSITIVE:
                await _retract(conn, [finding_id], RetractionReason.FALSE_POSITIVE, note, retraction)
                suppression = {
                    "item_key": finding["item_key"],
                    "list_name": finding["list_name"],
                    "entry_id": finding["entry_id"],
                    "created_at": now,
                }
                await conn.execute(self._db.insert_ignore(suppressions, suppression))
        return review_from_row(row)

    async def retract_entries(
        self,
        list_name: str,
        entry_ids: Sequence[str],
        detail: str,
        make_event: Callable[[FindingRow, list[int]], NewEvent | None],
    ) -> list[int]:
        """Findings of list entries deleted upstream are retracted (with events)."""
        if not entry_ids:
            return []
        query = sa.select(findings).where(findings.c.list_name == list_name, findings.c.entry_id.in_(list(entry_ids)))
        async with self._db.write() as conn:
            rows = [finding_from_row(r) for r in (await conn.execute(query)).mappings()]
            done: list[int] = []
            for f in rows:
                if f.id is None:  # read back from the table: always set
                    continue

                def follow_up(recipients: list[int], f: FindingRow = f) -> NewEvent | None:
                    return make_event(f, recipients)

                done += await _retract(conn, [f.id], RetractionReason.ENTRY_DELETED, detail, follow_up)
            return done

    async def retracted_ids(self) -> set[int]:
        async with self._db.read() as conn:
            return {int(r[0]) for r in (await conn.execute(sa.select(retractions.c.finding_id))).all()}

    async def of(self, finding_id: int) -> list[ReviewRow]:
        """One finding's reviews, oldest first."""
        query = sa.select(reviews).where(reviews.c.finding_id == finding_id).order_by(reviews.c.id)
        async with self._db.read() as conn:
            return [review_from_row(r) for r in (await conn.execute(query)).mappings()]

    async def audit_trail(self, limit: int = 100) -> list[AuditedReview]:
        """Every finding's reviews, newest first."""
        query = (
            sa.select(reviews, findings.c.list_name, findings.c.entry_id, findings.c.item_key)
            .join(findings, findings.c.id == reviews.c.finding_id)
            .order_by(reviews.c.created_at.desc(), reviews.c.id.desc())
            .limit(limit)
        )
        async with self._db.read() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [AuditedReview(review_from_row(r), r["list_name"], r["entry_id"], r["item_key"]) for r in rows]
