"""Subscriptions, the event outbox, deliveries, reviews and content status.

A mixin of Store (same engine, same transaction helpers). Events are written in
the transaction that creates what they announce (the outbox), so an alert can
never be lost between "recorded" and "queued"; workers lease deliveries, so a
crashed worker's deliveries are picked up again once its lease expires."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

import sqlalchemy as sa
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from agent.model.time import utcnow
from agent.model.records import (
    AuditedReview,
    ContentStatusRow,
    DeliveryJob,
    DeliveryReport,
    DeliveryRow,
    EventRow,
    FindingDetail,
    FindingRow,
    FindingView,
    LocationRow,
    NewEvent,
    PlacedLocation,
    Provenance,
    RetractionRow,
    ReviewRow,
    SubscriptionRow,
)
from agent.model.status import (
    AttemptOutcome,
    ContentState,
    DeliveryStatus,
    ProvenanceSource,
    RetractionReason,
    Verdict,
)
from agent.store.schema import (
    content_status,
    deliveries,
    delivery_attempts,
    events,
    findings,
    item_locations,
    items,
    retractions,
    reviews,
    subscriptions,
    suppressions,
    targets,
)

# Builds the events for findings that were just recorded (given where the item
# was seen and the enabled subscriptions); runs inside the recording transaction.
Outbox = Callable[[list[FindingRow], LocationRow | None, list[SubscriptionRow]], list[NewEvent]]
# Builds a follow-up event (retraction, availability) for the subscriptions that
# were alerted about a finding or an item; None means "nothing to send".
FollowUp = Callable[[list[int]], NewEvent | None]


# Keys per IN (...) list: below SQLite's old 999-variable limit.
_IN_CHUNK = 900
_CONTENT_EVENTS = ("content.unavailable", "content.available")


def _chunks(values: Sequence[Any]) -> list[list[Any]]:
    return [list(values[i : i + _IN_CHUNK]) for i in range(0, len(values), _IN_CHUNK)]


def _review(r: RowMapping) -> ReviewRow:
    return ReviewRow(r["id"], r["finding_id"], Verdict(r["verdict"]), r["note"], r["reviewer"], r["created_at"])


def _content(r: RowMapping) -> ContentStatusRow:
    return ContentStatusRow(
        r["item_key"],
        ContentState(r["state"]),
        r["first_alert_at"],
        r["changed_at"],
        r["last_checked_at"],
        dict(r["detail"] or {}),
    )


def _alerted_provenance(payload: dict[str, Any]) -> Provenance:
    """Where the finding.created event said the item was (kept after its location is gone)."""
    item: dict[str, Any] = payload["item"] if isinstance(payload.get("item"), dict) else {}
    target: dict[str, Any] = payload["target"] if isinstance(payload.get("target"), dict) else {}
    path, root, target_id, target_url = item.get("path"), payload.get("root"), target.get("id"), target.get("url")
    return Provenance(
        path=path if isinstance(path, str) else None,
        root_cid=root if isinstance(root, str) else None,
        target_id=target_id if isinstance(target_id, int) else None,
        target_url=target_url if isinstance(target_url, str) else None,
        gateway=None,
        source=ProvenanceSource.EVENT,
    )


def _subscription(r: RowMapping) -> SubscriptionRow:
    return SubscriptionRow(
        id=r["id"],
        url=r["url"],
        secret=r["secret"],
        previous_secret=r["previous_secret"],
        previous_secret_until=r["previous_secret_until"],
        lists=tuple(r["lists"] or ()),
        labels=tuple(r["labels"] or ()),
        targets=tuple(int(t) for t in r["targets"] or ()),
        event_types=tuple(r["event_types"] or ()),
        enabled=bool(r["enabled"]),
        disabled_reason=r["disabled_reason"],
        failing_since=r["failing_since"],
        max_in_flight=int(r["max_in_flight"]),
        description=r["description"],
        created_at=r["created_at"],
    )


def _event(r: RowMapping, prefix: str = "") -> EventRow:
    return EventRow(
        id=r[f"{prefix}id"],
        type=r[f"{prefix}type"],
        created_at=r[f"{prefix}created_at"],
        payload=dict(r[f"{prefix}payload"] or {}),
        finding_id=r[f"{prefix}finding_id"],
        item_key=r[f"{prefix}item_key"],
    )


def _delivery(r: RowMapping) -> DeliveryRow:
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


class AlertQueries:
    if TYPE_CHECKING:
        _dialect: Literal["sqlite", "postgresql"]

        def _read(self) -> AbstractAsyncContextManager[AsyncConnection]: ...

        def _write(self) -> AbstractAsyncContextManager[AsyncConnection]: ...

    # ---------------------------------------------------------- subscriptions

    async def add_subscription(
        self,
        url: str,
        secret: str,
        *,
        lists: Sequence[str] = (),
        labels: Sequence[str] = (),
        targets: Sequence[int] = (),
        event_types: Sequence[str] = (),
        max_in_flight: int = 4,
        description: str | None = None,
    ) -> SubscriptionRow:
        values = {
            "url": url,
            "secret": secret,
            "lists": list(lists),
            "labels": list(labels),
            "targets": [int(t) for t in targets],
            "event_types": list(event_types),
            "max_in_flight": max_in_flight,
            "description": description,
            "created_at": utcnow(),
            "enabled": True,
        }
        async with self._write() as conn:
            row = (
                (await conn.execute(sa.insert(subscriptions).values(values).returning(*subscriptions.c)))
                .mappings()
                .one()
            )
        return _subscription(row)

    async def list_subscriptions(self, enabled_only: bool = False) -> list[SubscriptionRow]:
        query = sa.select(subscriptions).order_by(subscriptions.c.id)
        if enabled_only:
            query = query.where(subscriptions.c.enabled.is_(True))
        async with self._read() as conn:
            return [_subscription(r) for r in (await conn.execute(query)).mappings()]

    async def get_subscription(self, subscription_id: int) -> SubscriptionRow | None:
        async with self._read() as conn:
            row = (
                (await conn.execute(sa.select(subscriptions).where(subscriptions.c.id == subscription_id)))
                .mappings()
                .one_or_none()
            )
        return _subscription(row) if row is not None else None

    async def remove_subscription(self, subscription_id: int) -> bool:
        async with self._write() as conn:
            await conn.execute(sa.delete(deliveries).where(deliveries.c.subscription_id == subscription_id))
            return (
                await conn.execute(sa.delete(subscriptions).where(subscriptions.c.id == subscription_id))
            ).rowcount == 1

    async def rotate_secret(
        self, subscription_id: int, new_secret: str, grace_until: datetime
    ) -> SubscriptionRow | None:
        """The old secret keeps signing (beside the new one) until `grace_until`."""
        stmt = (
            sa.update(subscriptions)
            .where(subscriptions.c.id == subscription_id)
            .values(previous_secret=subscriptions.c.secret, previous_secret_until=grace_until, secret=new_secret)
            .returning(*subscriptions.c)
        )
        async with self._write() as conn:
            row = (await conn.execute(stmt)).mappings().one_or_none()
        return _subscription(row) if row is not None else None

    async def set_subscription_enabled(self, subscription_id: int, enabled: bool, reason: str | None = None) -> bool:
        values: dict[str, Any] = {"enabled": enabled, "disabled_reason": None if enabled else reason}
        if enabled:
            values["failing_since"] = None
        async with self._write() as conn:
            return (
                await conn.execute(sa.update(subscriptions).where(subscriptions.c.id == subscription_id).values(values))
            ).rowcount == 1

    # ----------------------------------------------------------------- outbox

    async def _enabled_subscriptions(self, conn: AsyncConnection) -> list[SubscriptionRow]:
        query = sa.select(subscriptions).where(subscriptions.c.enabled.is_(True)).order_by(subscriptions.c.id)
        return [_subscription(r) for r in (await conn.execute(query)).mappings()]

    async def _write_events(self, conn: AsyncConnection, new: Sequence[NewEvent]) -> None:
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

    async def _suppressed(self, conn: AsyncConnection, rows: Sequence[FindingRow]) -> set[tuple[str, str, str]]:
        keys = {(r.item_key, r.list_name, r.entry_id) for r in rows}
        if not keys:
            return set()
        item_keys = {k[0] for k in keys}
        query = sa.select(suppressions.c.item_key, suppressions.c.list_name, suppressions.c.entry_id).where(
            suppressions.c.item_key.in_(item_keys)
        )
        found = {(str(r[0]), str(r[1]), str(r[2])) for r in (await conn.execute(query)).all()}
        return found & keys

    async def emit_events(self, new: Sequence[NewEvent]) -> None:
        async with self._write() as conn:
            await self._write_events(conn, new)

    async def alerted_subscriptions(
        self, conn: AsyncConnection, *, finding_ids: Sequence[int] = (), item_key: str | None = None
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

    # ------------------------------------------------------------- deliveries

    async def lease_deliveries(
        self,
        node: str,
        *,
        limit: int,
        lease_s: float,
        now: datetime | None = None,
        skip_subscriptions: Sequence[int] = (),
    ) -> list[DeliveryJob]:
        """Due deliveries of enabled subscriptions, leased to `node` for `lease_s`.

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
        if self._dialect == "postgresql":
            due = due.with_for_update(of=deliveries, skip_locked=True)
        async with self._write() as conn:
            ids = [int(r[0]) for r in (await conn.execute(due)).all()]
            if not ids:
                return []
            await conn.execute(
                sa.update(deliveries)
                .where(deliveries.c.id.in_(ids))
                .values(lease_until=now + timedelta(seconds=lease_s), lease_node=node)
            )
            rows = (
                (
                    await conn.execute(
                        sa.select(
                            deliveries,
                            *[c.label(f"e_{c.name}") for c in events.c],
                            *[c.label(f"s_{c.name}") for c in subscriptions.c],
                        )
                        .join(events, events.c.id == deliveries.c.event_id)
                        .join(subscriptions, subscriptions.c.id == deliveries.c.subscription_id)
                        .where(deliveries.c.id.in_(ids))
                        .order_by(deliveries.c.next_attempt_at, deliveries.c.id)
                    )
                )
                .mappings()
                .all()
            )
        jobs = []
        for r in rows:
            sub = {k[2:]: v for k, v in r.items() if k.startswith("s_")}
            jobs.append(DeliveryJob(_delivery(r), _event(r, "e_"), _subscription(sub)))  # type: ignore[arg-type]
        return jobs

    async def release_leases(self, node: str) -> int:
        """At start: deliveries this node had leased when it stopped are due again at once
        (the receiver may get one twice, with the same webhook-id; it never gets none)."""
        stmt = (
            sa.update(deliveries)
            .where(deliveries.c.lease_node == node, deliveries.c.status == DeliveryStatus.PENDING.value)
            .values(lease_until=None, lease_node=None)
        )
        async with self._write() as conn:
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
        """outcome: 'succeeded' | 'retry' (with next_attempt_at) | 'failed' | 'cancelled'. Keeps an audit row."""
        try:
            decided = AttemptOutcome(outcome)
        except ValueError:
            raise ValueError(f"unknown outcome {outcome!r}") from None
        if decided is AttemptOutcome.RETRY and next_attempt_at is None:
            raise ValueError("a retry needs next_attempt_at")
        now = utcnow()
        values: dict[str, Any] = {
            "attempts": deliveries.c.attempts + 1,
            "last_attempt_at": now,
            "last_status": http_status,
            "last_error": error,
            "lease_until": None,
            "lease_node": None,
            "status": DeliveryStatus.PENDING.value
            if decided is AttemptOutcome.RETRY
            else DeliveryStatus(decided).value,
        }
        if decided is AttemptOutcome.RETRY:
            values["next_attempt_at"] = next_attempt_at
        if decided is AttemptOutcome.SUCCEEDED:
            values["succeeded_at"] = now
        async with self._write() as conn:
            row = (
                (
                    await conn.execute(
                        sa.update(deliveries)
                        .where(deliveries.c.id == delivery_id)
                        .values(values)
                        .returning(*deliveries.c)
                    )
                )
                .mappings()
                .one_or_none()
            )
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
        return _delivery(row)

    async def set_failing_since(self, subscription_id: int, since: datetime | None) -> None:
        """Start (only if not started) or clear the failure streak of a subscription."""
        stmt = sa.update(subscriptions).where(subscriptions.c.id == subscription_id)
        if since is None:
            stmt = stmt.values(failing_since=None)
        else:
            stmt = stmt.where(subscriptions.c.failing_since.is_(None)).values(failing_since=since)
        async with self._write() as conn:
            await conn.execute(stmt)

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
        async with self._write() as conn:
            return int((await conn.execute(stmt)).rowcount)

    async def list_events(
        self, limit: int = 100, since: datetime | None = None, event_type: str | None = None
    ) -> list[EventRow]:
        query = sa.select(events).order_by(events.c.created_at.desc(), events.c.id.desc()).limit(limit)
        if since is not None:
            query = query.where(events.c.created_at >= since)
        if event_type is not None:
            query = query.where(events.c.type == event_type)
        async with self._read() as conn:
            return [_event(r) for r in (await conn.execute(query)).mappings()]

    async def deliveries_of(self, event_id: str | None = None, subscription_id: int | None = None) -> list[DeliveryRow]:
        query = sa.select(deliveries).order_by(deliveries.c.id)
        if event_id is not None:
            query = query.where(deliveries.c.event_id == event_id)
        if subscription_id is not None:
            query = query.where(deliveries.c.subscription_id == subscription_id)
        async with self._read() as conn:
            return [_delivery(r) for r in (await conn.execute(query)).mappings()]

    # ---------------------------------------------------- reviews, retractions

    async def review_finding(
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
        to the subscriptions that were alerted about it, in the same transaction."""
        try:
            judged = Verdict(verdict)
        except ValueError:
            raise ValueError("verdict must be false_positive or confirmed") from None
        now = utcnow()
        async with self._write() as conn:
            finding = (
                (await conn.execute(sa.select(findings).where(findings.c.id == finding_id))).mappings().one_or_none()
            )
            if finding is None:
                raise LookupError(f"no finding {finding_id}")
            row = (
                (
                    await conn.execute(
                        sa.insert(reviews)
                        .values(
                            finding_id=finding_id,
                            verdict=judged.value,
                            note=note,
                            reviewer=reviewer,
                            created_at=now,
                        )
                        .returning(*reviews.c)
                    )
                )
                .mappings()
                .one()
            )
            if judged is Verdict.FALSE_POSITIVE:
                await self._retract(conn, [finding_id], RetractionReason.FALSE_POSITIVE, note, retraction)
                await conn.execute(
                    self._insert_ignore(
                        suppressions,
                        {
                            "item_key": finding["item_key"],
                            "list_name": finding["list_name"],
                            "entry_id": finding["entry_id"],
                            "created_at": now,
                        },
                    )
                )
        return ReviewRow(
            id=row["id"],
            finding_id=finding_id,
            verdict=judged,
            note=note,
            reviewer=reviewer,
            created_at=row["created_at"],
        )

    def _insert_ignore(self, table: sa.Table, values: dict[str, Any]) -> sa.Insert:
        from sqlalchemy.dialects import postgresql as pg
        from sqlalchemy.dialects import sqlite

        stmt = pg.insert(table) if self._dialect == "postgresql" else sqlite.insert(table)
        return stmt.values(values).on_conflict_do_nothing()

    async def _retract(
        self,
        conn: AsyncConnection,
        finding_ids: Sequence[int],
        reason: RetractionReason,
        detail: str | None,
        follow_up: FollowUp | None,
    ) -> list[int]:
        already = {
            int(r[0])
            for r in (
                await conn.execute(
                    sa.select(retractions.c.finding_id).where(retractions.c.finding_id.in_(list(finding_ids)))
                )
            ).all()
        }
        fresh = [f for f in finding_ids if f not in already]
        now = utcnow()
        for fid in fresh:
            await conn.execute(
                sa.insert(retractions).values(finding_id=fid, reason=reason.value, detail=detail, created_at=now)
            )
            if follow_up is not None:
                event = follow_up(await self.alerted_subscriptions(conn, finding_ids=[fid]))
                if event is not None:
                    await self._write_events(conn, [event])
        return fresh

    async def retract_entries(
        self,
        list_name: str,
        entry_ids: Sequence[str],
        detail: str,
        make_event: Callable[[FindingRow, list[int]], NewEvent | None],
    ) -> list[int]:
        """Findings of list entries deleted upstream are retracted (with events)."""
        from agent.store.store import _finding

        if not entry_ids:
            return []
        async with self._write() as conn:
            rows = [
                _finding(r)
                for r in (
                    await conn.execute(
                        sa.select(findings).where(
                            findings.c.list_name == list_name, findings.c.entry_id.in_(list(entry_ids))
                        )
                    )
                ).mappings()
            ]
            done: list[int] = []
            for f in rows:
                assert f.id is not None
                done += await self._retract(
                    conn,
                    [f.id],
                    RetractionReason.ENTRY_DELETED,
                    detail,
                    lambda subs, f=f: make_event(f, subs),  # type: ignore[misc]
                )
            return done

    async def retracted_ids(self) -> set[int]:
        async with self._read() as conn:
            return {int(r[0]) for r in (await conn.execute(sa.select(retractions.c.finding_id))).all()}

    async def reviews_of(self, finding_id: int) -> list[ReviewRow]:
        async with self._read() as conn:
            rows = (
                (
                    await conn.execute(
                        sa.select(reviews).where(reviews.c.finding_id == finding_id).order_by(reviews.c.id)
                    )
                )
                .mappings()
                .all()
            )
        return [_review(r) for r in rows]

    async def list_reviews(self, limit: int = 100) -> list[AuditedReview]:
        """Every finding's reviews, newest first (the audit trail)."""
        query = (
            sa.select(reviews, findings.c.list_name, findings.c.entry_id, findings.c.item_key)
            .join(findings, findings.c.id == reviews.c.finding_id)
            .order_by(reviews.c.created_at.desc(), reviews.c.id.desc())
            .limit(limit)
        )
        async with self._read() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [AuditedReview(_review(r), r["list_name"], r["entry_id"], r["item_key"]) for r in rows]

    # ---------------------------------------------------------- finding views

    async def finding_views(self, *, limit: int = 100, list_name: str | None = None) -> list[FindingView]:
        """Newest first, each with its item's CID, where it was first seen, its
        latest review and its retraction (one read transaction, a few batched queries)."""
        async with self._read() as conn:
            return await self._finding_views(conn, limit=limit, list_name=list_name)

    async def _finding_views(
        self, conn: AsyncConnection, *, limit: int, list_name: str | None = None, finding_id: int | None = None
    ) -> list[FindingView]:
        from agent.store.store import _finding

        query = (
            sa.select(
                findings,
                items.c.cid.label("i_cid"),
                items.c.media_type.label("i_media_type"),
                items.c.size.label("i_size"),
            )
            .outerjoin(items, items.c.key == findings.c.item_key)
            .order_by(findings.c.created_at.desc(), findings.c.id.desc())
            .limit(limit)
        )
        if list_name is not None:
            query = query.where(findings.c.list_name == list_name)
        if finding_id is not None:
            query = query.where(findings.c.id == finding_id)
        rows = (await conn.execute(query)).mappings().all()
        if not rows:
            return []
        ids = [int(r["id"]) for r in rows]
        places = await self._first_places(conn, sorted({r["item_key"] for r in rows}))
        alerted = await self._alerted_places(conn, ids)
        latest: dict[int, ReviewRow] = {}
        retracted: dict[int, RetractionRow] = {}
        for part in _chunks(ids):
            for r in (
                await conn.execute(sa.select(reviews).where(reviews.c.finding_id.in_(part)).order_by(reviews.c.id))
            ).mappings():
                latest[int(r["finding_id"])] = _review(r)
            for r in (await conn.execute(sa.select(retractions).where(retractions.c.finding_id.in_(part)))).mappings():
                retracted[int(r["finding_id"])] = RetractionRow(
                    int(r["finding_id"]), RetractionReason(r["reason"]), r["detail"], r["created_at"]
                )
        none = Provenance(None, None, None, None, None, ProvenanceSource.NONE)
        return [
            FindingView(
                finding=_finding(r),
                cid=r["i_cid"],
                media_type=r["i_media_type"],
                size=r["i_size"],
                provenance=places.get(r["item_key"]) or alerted.get(int(r["id"])) or none,
                review=latest.get(int(r["id"])),
                retraction=retracted.get(int(r["id"])),
            )
            for r in rows
        ]

    async def _first_places(self, conn: AsyncConnection, keys: Sequence[str]) -> dict[str, Provenance]:
        """Each item's first recorded location (the one its first alert was built from)."""
        out: dict[str, Provenance] = {}
        for part in _chunks(keys):
            ranked = (
                sa.select(
                    item_locations,
                    sa.func.row_number()
                    .over(
                        partition_by=item_locations.c.item_key,
                        order_by=(item_locations.c.first_seen_at, item_locations.c.id),
                    )
                    .label("rank"),
                )
                .where(item_locations.c.item_key.in_(part))
                .subquery()
            )
            query = (
                sa.select(ranked, targets.c.url.label("target_url"))
                .outerjoin(targets, targets.c.id == ranked.c.target_id)
                .where(ranked.c.rank == 1)
            )
            for r in (await conn.execute(query)).mappings():
                out[r["item_key"]] = Provenance(
                    path=r["path"],
                    root_cid=r["root_cid"],
                    target_id=r["target_id"],
                    target_url=r["target_url"],
                    gateway=r["gateway"],
                    source=ProvenanceSource.LOCATION,
                )
        return out

    async def _alerted_places(self, conn: AsyncConnection, finding_ids: Sequence[int]) -> dict[int, Provenance]:
        out: dict[int, Provenance] = {}
        for part in _chunks(finding_ids):
            query = sa.select(events.c.finding_id, events.c.payload).where(
                events.c.type == "finding.created", events.c.finding_id.in_(part)
            )
            for r in (await conn.execute(query)).mappings():
                out[int(r["finding_id"])] = _alerted_provenance(dict(r["payload"] or {}))
        return out

    async def finding_detail(self, finding_id: int) -> FindingDetail | None:
        """Everything known about one finding, read in one transaction."""
        from agent.store.store import _item, _location

        async with self._read() as conn:
            views = await self._finding_views(conn, limit=1, finding_id=finding_id)
            if not views:
                return None
            view = views[0]
            key = view.finding.item_key
            item = (await conn.execute(sa.select(items).where(items.c.key == key))).mappings().one_or_none()
            places = [
                PlacedLocation(_location(r), r["target_url"])
                for r in (
                    await conn.execute(
                        sa.select(item_locations, targets.c.url.label("target_url"))
                        .outerjoin(targets, targets.c.id == item_locations.c.target_id)
                        .where(item_locations.c.item_key == key)
                        .order_by(item_locations.c.first_seen_at, item_locations.c.id)
                    )
                ).mappings()
            ]
            history = [
                _review(r)
                for r in (
                    await conn.execute(
                        sa.select(reviews).where(reviews.c.finding_id == finding_id).order_by(reviews.c.id)
                    )
                ).mappings()
            ]
            content = (
                (await conn.execute(sa.select(content_status).where(content_status.c.item_key == key)))
                .mappings()
                .one_or_none()
            )
            # Its own events, and the item's availability changes (they concern every finding of the item).
            about = sa.or_(
                events.c.finding_id == finding_id, sa.and_(events.c.item_key == key, events.c.type.in_(_CONTENT_EVENTS))
            )
            its_events = [
                _event(r)
                for r in (
                    await conn.execute(sa.select(events).where(about).order_by(events.c.created_at, events.c.id))
                ).mappings()
            ]
            sent = [
                DeliveryReport(_delivery(r), r["event_type"], r["subscription_url"])
                for r in (
                    await conn.execute(
                        sa.select(
                            deliveries, events.c.type.label("event_type"), subscriptions.c.url.label("subscription_url")
                        )
                        .join(events, events.c.id == deliveries.c.event_id)
                        .outerjoin(subscriptions, subscriptions.c.id == deliveries.c.subscription_id)
                        .where(about)
                        .order_by(deliveries.c.created_at, deliveries.c.id)
                    )
                ).mappings()
            ]
        return FindingDetail(
            view=view,
            item=_item(item) if item is not None else None,
            locations=tuple(places),
            reviews=tuple(history),
            content=_content(content) if content is not None else None,
            events=tuple(its_events),
            deliveries=tuple(sent),
        )

    # ----------------------------------------------------------- availability

    async def watched_content(self) -> list[tuple[str, str, datetime, ContentStatusRow | None]]:
        """(item key, CID, first alert time, status) of items with an unretracted finding and a CID."""
        live = (
            sa.select(findings.c.item_key, sa.func.min(findings.c.created_at).label("first"))
            .where(findings.c.id.not_in(sa.select(retractions.c.finding_id)))
            .group_by(findings.c.item_key)
            .subquery()
        )
        query = (
            sa.select(items.c.key, items.c.cid, live.c.first, content_status)
            .join(live, live.c.item_key == items.c.key)
            .outerjoin(content_status, content_status.c.item_key == items.c.key)
            .where(items.c.cid.is_not(None))
            .order_by(items.c.key)
        )
        out = []
        async with self._read() as conn:
            for r in (await conn.execute(query)).mappings():
                status = None
                if r["state"] is not None:
                    status = ContentStatusRow(
                        r["key"],
                        ContentState(r["state"]),
                        r["first_alert_at"],
                        r["changed_at"],
                        r["last_checked_at"],
                        dict(r["detail"] or {}),
                    )
                out.append((r["key"], r["cid"], r["first"], status))
        return out

    async def set_content_state(
        self, item_key: str, state: str, *, first_alert_at: datetime, detail: dict[str, Any], follow_up: FollowUp | None
    ) -> tuple[ContentState | None, ContentState]:
        """Record a check; on a change of state, send `follow_up(...)` to the subscriptions
        alerted about the item, in the same transaction. Returns (previous state, state)."""
        if state not in (ContentState.AVAILABLE, ContentState.UNAVAILABLE):
            raise ValueError("state is available or unavailable")
        checked = ContentState(state)
        now = utcnow()
        async with self._write() as conn:
            stored = (
                await conn.execute(sa.select(content_status.c.state).where(content_status.c.item_key == item_key))
            ).scalar_one_or_none()
            prev = None if stored is None else ContentState(stored)
            if prev is None:
                await conn.execute(
                    sa.insert(content_status).values(
                        item_key=item_key,
                        state=checked.value,
                        first_alert_at=first_alert_at,
                        changed_at=now,
                        last_checked_at=now,
                        detail=detail,
                    )
                )
            else:
                values: dict[str, Any] = {"last_checked_at": now, "detail": detail, "state": checked.value}
                if prev is not checked:
                    values["changed_at"] = now
                await conn.execute(
                    sa.update(content_status).where(content_status.c.item_key == item_key).values(values)
                )
            # Content is presumed available when first alerted: the first "unavailable" is a change.
            if (prev or ContentState.AVAILABLE) is not checked and follow_up is not None:
                event = follow_up(await self.alerted_subscriptions(conn, item_key=item_key))
                if event is not None:
                    await self._write_events(conn, [event])
        return prev, checked
