"""The event outbox and its deliveries: leases, attempts, replay.

Events are written in the transaction that creates what they announce (the
functions taking a connection below), so an alert can never be lost between
"recorded" and "queued"; workers lease deliveries, so a crashed worker's
deliveries are picked up again once its lease expires."""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from agent.model.records import (
    DeliveryAttemptView,
    DeliveryJob,
    DeliveryRow,
    EventRow,
    FindingRow,
    LocationRow,
    NewEvent,
    SubscriptionRow,
)
from agent.model.status import AttemptOutcome, DeliveryStatus
from agent.model.time import utcnow
from agent.store.engine import Engine, chunks
from agent.store.schema import deliveries, delivery_attempts, events, subscriptions
from agent.store.subscriptions import subscription_from_row

# Builds the events for findings that were just recorded (given where the item
# was seen and the enabled subscriptions); runs inside the recording transaction.
Outbox = Callable[[list[FindingRow], LocationRow | None, list[SubscriptionRow]], list[NewEvent]]
# Builds a follow-up event (retraction, availability) for the subscriptions that
# were alerted about a finding or an item; None means "nothing to send".
FollowUp = Callable[[list[int]], NewEvent | None]


def event_from_row(r: RowMapping, prefix: str = "") -> EventRow:
    return EventRow(
        id=r[f"{prefix}id"],
        type=r[f"{prefix}type"],
        created_at=r[f"{prefix}created_at"],
        payload=dict(r[f"{prefix}payload"] or {}),
        finding_id=r[f"{prefix}finding_id"],
        item_key=r[f"{prefix}item_key"],
    )


def delivery_from_row(r: RowMapping) -> DeliveryRow:
    return DeliveryRow(
        id=r["id"],
        event_id=r["event_id"],
        subscription_id=r["subscription_id"],
        status=DeliveryStatus(r["status"]),
        attempts=int(r["attempts"]),
        next_attempt_at=r["next_attempt_at"],
        last_attempt_at=r["last_attempt_at"],
        last_status=r["last_status"],
        last_error=r["last_error"],
        created_at=r["created_at"],
        succeeded_at=r["succeeded_at"],
    )


async def write_events(conn: AsyncConnection, new: Sequence[NewEvent]) -> None:
    """The events and one pending delivery per subscriber, in the caller's transaction."""
    now = utcnow()
    for event in new:
        await conn.execute(
            sa.insert(events).values(
                id=event.id,
                type=event.type,
                created_at=now,
                finding_id=event.finding_id,
                item_key=event.item_key,
                payload=dict(event.payload),
            )
        )
        if event.subscription_ids:
            await conn.execute(
                sa.insert(deliveries),
                [
                    {
                        "event_id": event.id,
                        "subscription_id": sid,
                        "status": DeliveryStatus.PENDING.value,
                        "attempts": 0,
                        "next_attempt_at": now,
                        "created_at": now,
                    }
                    for sid in dict.fromkeys(event.subscription_ids)
                ],
            )


async def alerted_subscriptions(
    conn: AsyncConnection, *, finding_ids: Sequence[int] = (), item_key: str | None = None
) -> list[int]:
    """Subscriptions that were sent the finding.created events of these findings (or of this item)."""
    query = (
        sa.select(deliveries.c.subscription_id)
        .join(events, events.c.id == deliveries.c.event_id)
        .where(events.c.type == "finding.created")
        .distinct()
    )
    if finding_ids:
        query = query.where(events.c.finding_id.in_(list(finding_ids)))
    if item_key is not None:
        query = query.where(events.c.item_key == item_key)
    return sorted(int(r[0]) for r in (await conn.execute(query)).all())


async def send_follow_up(conn: AsyncConnection, follow_up: FollowUp | None, recipients: list[int]) -> None:
    if follow_up is not None:
        event = follow_up(recipients)
        if event is not None:
            await write_events(conn, [event])


class OutboxRepository:
    def __init__(self, engine: Engine) -> None:
        self._db = engine

    async def emit(self, new: Sequence[NewEvent]) -> None:
        async with self._db.write() as conn:
            await write_events(conn, new)

    async def lease(
        self,
        node: str,
        *,
        limit: int,
        lease_s: float,
        now: datetime | None = None,
        skip_subscriptions: Sequence[int] = (),
        events_only: Collection[str] | None = None,
        subscription_only: int | None = None,
    ) -> list[DeliveryJob]:
        """Due deliveries of enabled subscriptions, leased to `node` for `lease_s`;
        `events_only` / `subscription_only` narrow them (a command sending what it
        queued itself leases nothing else).

        On PostgreSQL concurrent workers skip each other's rows (FOR UPDATE SKIP
        LOCKED); SQLite has one writer, so the select-then-update is atomic."""
        now = now or utcnow()
        due = (
            sa.select(deliveries.c.id)
            .join(subscriptions, subscriptions.c.id == deliveries.c.subscription_id)
            .where(
                deliveries.c.status == DeliveryStatus.PENDING.value,
                deliveries.c.next_attempt_at <= now,
                subscriptions.c.enabled.is_(True),
                sa.or_(deliveries.c.lease_until.is_(None), deliveries.c.lease_until < now),
            )
            .order_by(deliveries.c.next_attempt_at, deliveries.c.id)
            .limit(limit)
        )
        if skip_subscriptions:
            due = due.where(deliveries.c.subscription_id.not_in(list(skip_subscriptions)))
        if subscription_only is not None:
            due = due.where(deliveries.c.subscription_id == subscription_only)
        if self._db.dialect == "postgresql":
            due = due.with_for_update(of=deliveries, skip_locked=True)
        # A long replay names many events: one IN list per chunk, within the limit.
        scopes = [None] if events_only is None else chunks(sorted(events_only), self._db.in_chunk)
        leased = (
            sa.select(
                deliveries,
                *[c.label(f"e_{c.name}") for c in events.c],
                *[c.label(f"s_{c.name}") for c in subscriptions.c],
            )
            .join(events, events.c.id == deliveries.c.event_id)
            .join(subscriptions, subscriptions.c.id == deliveries.c.subscription_id)
            .order_by(deliveries.c.next_attempt_at, deliveries.c.id)
        )
        async with self._db.write() as conn:
            ids: list[int] = []
            for scope in scopes:
                query = due if scope is None else due.where(deliveries.c.event_id.in_(scope))
                ids += [int(r[0]) for r in (await conn.execute(query.limit(limit - len(ids)))).all()]
                if len(ids) >= limit:
                    break
            if not ids:
                return []
            await conn.execute(
                sa.update(deliveries)
                .where(deliveries.c.id.in_(ids))
                .values(lease_until=now + timedelta(seconds=lease_s), lease_node=node)
            )
            rows = (await conn.execute(leased.where(deliveries.c.id.in_(ids)))).mappings().all()
        jobs = []
        for r in rows:
            sub = {k[2:]: v for k, v in r.items() if k.startswith("s_")}
            jobs.append(DeliveryJob(delivery_from_row(r), event_from_row(r, "e_"), subscription_from_row(sub)))
        return jobs

    async def release_leases(self, node: str) -> int:
        """At start: deliveries this node had leased when it stopped are due again at once
        (the receiver may get one twice, with the same webhook-id; it never gets none)."""
        stmt = (
            sa.update(deliveries)
            .where(deliveries.c.lease_node == node, deliveries.c.status == DeliveryStatus.PENDING.value)
            .values(lease_until=None, lease_node=None)
        )
        async with self._db.write() as conn:
            return int((await conn.execute(stmt)).rowcount)

    async def record_attempt(
        self,
        delivery_id: int,
        *,
        outcome: str,
        http_status: int | None,
        error: str | None,
        duration_ms: int,
        next_attempt_at: datetime | None = None,
    ) -> DeliveryRow | None:
        """outcome (an AttemptOutcome): 'succeeded' | 'retry' (with next_attempt_at)
        | 'failed' | 'cancelled'. Keeps an audit row."""
        try:
            decided = AttemptOutcome(outcome)
        except ValueError:
            raise ValueError(f"unknown outcome {outcome!r}") from None
        if decided is AttemptOutcome.RETRY and next_attempt_at is None:
            raise ValueError("a retry needs next_attempt_at")
        now = utcnow()
        status = DeliveryStatus.PENDING if decided is AttemptOutcome.RETRY else DeliveryStatus(decided.value)
        values: dict[str, Any] = {
            "attempts": deliveries.c.attempts + 1,
            "last_attempt_at": now,
            "last_status": http_status,
            "last_error": error,
            "lease_until": None,
            "lease_node": None,
            "status": status.value,
        }
        if decided is AttemptOutcome.RETRY:
            values["next_attempt_at"] = next_attempt_at
        if decided is AttemptOutcome.SUCCEEDED:
            values["succeeded_at"] = now
        stmt = sa.update(deliveries).where(deliveries.c.id == delivery_id).values(values).returning(*deliveries.c)
        async with self._db.write() as conn:
            row = (await conn.execute(stmt)).mappings().one_or_none()
            if row is None:
                return None
            await conn.execute(
                sa.insert(delivery_attempts).values(
                    delivery_id=delivery_id,
                    attempt=row["attempts"],
                    at=now,
                    status=http_status,
                    error=error,
                    duration_ms=duration_ms,
                )
            )
        return delivery_from_row(row)

    async def replay(self, since: datetime, subscription_id: int | None = None) -> int:
        """Send again every delivery of events created since `since` (same webhook-id)."""
        event_ids = sa.select(events.c.id).where(events.c.created_at >= since)
        stmt = (
            sa.update(deliveries)
            .where(deliveries.c.event_id.in_(event_ids))
            .values(status=DeliveryStatus.PENDING.value, next_attempt_at=utcnow(), lease_until=None, lease_node=None)
        )
        if subscription_id is not None:
            stmt = stmt.where(deliveries.c.subscription_id == subscription_id)
        async with self._db.write() as conn:
            return int((await conn.execute(stmt)).rowcount)

    async def events(
        self, limit: int = 100, since: datetime | None = None, event_type: str | None = None
    ) -> list[EventRow]:
        """Newest first."""
        query = sa.select(events).order_by(events.c.created_at.desc(), events.c.id.desc()).limit(limit)
        if since is not None:
            query = query.where(events.c.created_at >= since)
        if event_type is not None:
            query = query.where(events.c.type == event_type)
        async with self._db.read() as conn:
            return [event_from_row(r) for r in (await conn.execute(query)).mappings()]

    async def attempts_of(self, subscription_id: int, *, limit: int = 50) -> list[DeliveryAttemptView]:
        """The latest `limit` attempts at the subscription's deliveries, newest first, each
        with the event it carried and its delivery's status now."""
        query = (
            sa.select(
                delivery_attempts,
                deliveries.c.event_id,
                deliveries.c.status.label("delivery_status"),
                events.c.type.label("event_type"),
            )
            .join(deliveries, deliveries.c.id == delivery_attempts.c.delivery_id)
            .join(events, events.c.id == deliveries.c.event_id)
            .where(deliveries.c.subscription_id == subscription_id)
            .order_by(delivery_attempts.c.at.desc(), delivery_attempts.c.id.desc())
            .limit(limit)
        )
        async with self._db.read() as conn:
            return [
                DeliveryAttemptView(
                    attempt=int(r["attempt"]),
                    at=r["at"],
                    http_status=r["status"],
                    error=r["error"],
                    duration_ms=int(r["duration_ms"]),
                    event_id=r["event_id"],
                    event_type=r["event_type"],
                    delivery_id=int(r["delivery_id"]),
                    delivery_status=DeliveryStatus(r["delivery_status"]),
                )
                for r in (await conn.execute(query)).mappings()
            ]

    async def deliveries_of(self, event_id: str | None = None, subscription_id: int | None = None) -> list[DeliveryRow]:
        query = sa.select(deliveries).order_by(deliveries.c.id)
        if event_id is not None:
            query = query.where(deliveries.c.event_id == event_id)
        if subscription_id is not None:
            query = query.where(deliveries.c.subscription_id == subscription_id)
        async with self._db.read() as conn:
            return [delivery_from_row(r) for r in (await conn.execute(query)).mappings()]
