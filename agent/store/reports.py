"""Reports: the transparency report's figures, as SQL aggregates over findings, reviews,
retractions and content states, the same on SQLite and PostgreSQL.

What each figure counts is defined in `agent.model.transparency`; this module only computes
them, all in one read transaction so they agree with each other (SQLite's reads are one
snapshot already; PostgreSQL's are made REPEATABLE READ for it). Nothing is loaded row by
row: counts are GROUP BYs, and a percentile is the one row at its rank."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg
from sqlalchemy.ext.asyncio import AsyncConnection

from agent.model.status import ContentState, RetractionReason, Verdict
from agent.model.time import utcnow
from agent.model.transparency import (
    ListLabelCount,
    Period,
    RemovalTimes,
    RetractionCount,
    ReviewCounts,
    TransparencyReport,
)
from agent.store.engine import DialectName, Engine
from agent.store.schema import content_status, findings, retractions, reviews

# The nearest-rank percentiles reported, in percent.
_MEDIAN, _P90 = 50, 90


def nearest_rank(percent: int, n: int) -> int:
    """The 1-based rank of the `percent`th percentile of n sorted values: ceil(percent/100 * n),
    in integers so that 90% of 10 is exactly rank 9."""
    return max(1, (percent * n + 99) // 100)


def _in_period(column: sa.ColumnElement[datetime], period: Period) -> sa.ColumnElement[bool]:
    return sa.and_(column >= period.since, column < period.until)


def _label_values(dialect: DialectName) -> Any:
    """A finding's labels as rows of one text column `value` (a table-valued function of the
    finding's own row: json_each on SQLite, jsonb_array_elements_text on PostgreSQL)."""
    if dialect == "postgresql":
        return sa.func.jsonb_array_elements_text(sa.cast(findings.c.labels, pg.JSONB)).table_valued("value")
    return sa.func.json_each(findings.c.labels).table_valued("value")


def _no_labels(dialect: DialectName) -> sa.ColumnElement[bool]:
    if dialect == "postgresql":
        return sa.func.jsonb_array_length(sa.cast(findings.c.labels, pg.JSONB)) == 0
    return sa.func.json_array_length(findings.c.labels) == 0


def _sqlite_micros(column: sa.ColumnElement[datetime]) -> sa.ColumnElement[int]:
    """A stored time's microseconds within its second. SQLite keeps UTCDateTime as the fixed
    text `YYYY-MM-DD HH:MM:SS.ffffff` (see agent.store.types), and its date functions read
    only milliseconds of that, so they are taken from the text."""
    return sa.cast(sa.func.substr(column, 21, 6), sa.Integer)


def _removal_order(dialect: DialectName) -> sa.ColumnElement[Any]:
    """The time to removal as something to sort by, exact to the microsecond on both dialects."""
    if dialect == "postgresql":
        return content_status.c.changed_at - content_status.c.first_alert_at
    changed, first = content_status.c.changed_at, content_status.c.first_alert_at
    # Whole seconds from julianday of the text up to the second (its float error, far below
    # a second, is rounded away), then the microseconds: an integer count of microseconds.
    whole = sa.func.round(
        (sa.func.julianday(sa.func.substr(changed, 1, 19)) - sa.func.julianday(sa.func.substr(first, 1, 19))) * 86400
    )
    return sa.cast(whole, sa.Integer) * 1_000_000 + _sqlite_micros(changed) - _sqlite_micros(first)


class ReportRepository:
    def __init__(self, engine: Engine) -> None:
        self._db = engine

    async def transparency(self, period: Period) -> TransparencyReport:
        """The transparency report's figures for `period` (defined in agent.model.transparency),
        read in one consistent transaction; `generated_at` is when it was read."""
        async with self._db.read() as conn:
            if self._db.dialect == "postgresql":
                await conn.execution_options(isolation_level="REPEATABLE READ")
            generated_at = utcnow()
            total = int(
                await conn.scalar(
                    sa.select(sa.func.count()).select_from(findings).where(_in_period(findings.c.created_at, period))
                )
                or 0
            )
            return TransparencyReport(
                period=period,
                generated_at=generated_at,
                findings_total=total,
                by_list_label=await self._by_list_label(conn, period),
                reviews=await self._reviews(conn, period),
                retractions=await self._retractions(conn, period),
                removal=await self._removal(conn, period),
            )

    async def _by_list_label(self, conn: AsyncConnection, period: Period) -> tuple[ListLabelCount, ...]:
        each = _label_values(self._db.dialect)
        labelled = (
            sa.select(findings.c.list_name, each.c.value, sa.func.count(sa.distinct(findings.c.id)))
            .select_from(findings)
            .join(each, sa.true())
            .where(_in_period(findings.c.created_at, period))
            .group_by(findings.c.list_name, each.c.value)
        )
        unlabelled = (
            sa.select(findings.c.list_name, sa.func.count())
            .where(_in_period(findings.c.created_at, period), _no_labels(self._db.dialect))
            .group_by(findings.c.list_name)
        )
        counts: dict[tuple[str, str], int] = {}
        for list_name, label, n in (await conn.execute(labelled)).all():
            counts[(str(list_name), str(label))] = int(n)
        for list_name, n in (await conn.execute(unlabelled)).all():
            # A finding labelled "" and one with no label are the same row of the report.
            key = (str(list_name), "")
            counts[key] = counts.get(key, 0) + int(n)
        return tuple(ListLabelCount(name, label, n) for (name, label), n in sorted(counts.items()))

    async def _reviews(self, conn: AsyncConnection, period: Period) -> ReviewCounts:
        # A finding's latest review is its review with the highest id (as store.views reads it).
        latest = (
            sa.select(reviews.c.finding_id, sa.func.max(reviews.c.id).label("review_id"))
            .group_by(reviews.c.finding_id)
            .subquery()
        )
        query = (
            sa.select(reviews.c.verdict, sa.func.count())
            .select_from(findings)
            .outerjoin(latest, latest.c.finding_id == findings.c.id)
            .outerjoin(reviews, reviews.c.id == latest.c.review_id)
            .where(_in_period(findings.c.created_at, period))
            .group_by(reviews.c.verdict)
        )
        by_verdict: dict[str | None, int] = {v: int(n) for v, n in (await conn.execute(query)).all()}
        return ReviewCounts(
            confirmed=by_verdict.get(Verdict.CONFIRMED.value, 0),
            false_positive=by_verdict.get(Verdict.FALSE_POSITIVE.value, 0),
            unreviewed=by_verdict.get(None, 0),
        )

    async def _retractions(self, conn: AsyncConnection, period: Period) -> tuple[RetractionCount, ...]:
        query = (
            sa.select(retractions.c.reason, sa.func.count())
            .where(_in_period(retractions.c.created_at, period))
            .group_by(retractions.c.reason)
        )
        by_reason = {RetractionReason(reason): int(n) for reason, n in (await conn.execute(query)).all()}
        return tuple(RetractionCount(reason, by_reason.get(reason, 0)) for reason in RetractionReason)

    async def _removal(self, conn: AsyncConnection, period: Period) -> RemovalTimes:
        # A finding withdrawn as a false positive accused nothing: the content's removal, if it
        # happened, is no takedown to report (an item counts when one finding still stands).
        false_positive = sa.exists(
            sa.select(sa.literal(1)).where(
                retractions.c.finding_id == findings.c.id,
                retractions.c.reason == RetractionReason.FALSE_POSITIVE.value,
            )
        )
        found_in_period = sa.exists(
            sa.select(sa.literal(1)).where(
                findings.c.item_key == content_status.c.item_key,
                _in_period(findings.c.created_at, period),
                ~false_positive,
            )
        )
        states = (
            sa.select(content_status.c.state, sa.func.count()).where(found_in_period).group_by(content_status.c.state)
        )
        by_state = {str(state): int(n) for state, n in (await conn.execute(states)).all()}
        removed = by_state.get(ContentState.UNAVAILABLE.value, 0)
        still = by_state.get(ContentState.AVAILABLE.value, 0)
        if removed == 0:
            return RemovalTimes(removed=0, still_available=still, median_s=None, p90_s=None)
        ordered = (
            sa.select(content_status.c.first_alert_at, content_status.c.changed_at)
            .where(found_in_period, content_status.c.state == ContentState.UNAVAILABLE.value)
            .order_by(_removal_order(self._db.dialect), content_status.c.item_key)
        )

        async def at_rank(rank: int) -> float:
            row = (await conn.execute(ordered.offset(rank - 1).limit(1))).one()
            return float((row.changed_at - row.first_alert_at).total_seconds())

        return RemovalTimes(
            removed=removed,
            still_available=still,
            median_s=await at_rank(nearest_rank(_MEDIAN, removed)),
            p90_s=await at_rank(nearest_rank(_P90, removed)),
        )
