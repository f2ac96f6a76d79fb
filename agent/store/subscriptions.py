"""Webhook subscriptions: where alerts go, their filters, secrets and failure streaks."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from agent.model.records import SubscriptionRow
from agent.model.time import utcnow
from agent.store.engine import Engine
from agent.store.schema import deliveries, subscriptions


def subscription_from_row(r: RowMapping | dict[str, Any]) -> SubscriptionRow:
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
        owner=r["owner"],
    )


async def enabled_subscriptions(conn: AsyncConnection) -> list[SubscriptionRow]:
    """Inside a recording transaction: who gets the events being written."""
    query = sa.select(subscriptions).where(subscriptions.c.enabled.is_(True)).order_by(subscriptions.c.id)
    return [subscription_from_row(r) for r in (await conn.execute(query)).mappings()]


class SubscriptionRepository:
    def __init__(self, engine: Engine) -> None:
        self._db = engine

    async def add(
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
        owner: str | None = None,
    ) -> SubscriptionRow:
        """`owner`: the principal creating it through the API (None: the CLI)."""
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
            "owner": owner,
        }
        stmt = sa.insert(subscriptions).values(values).returning(*subscriptions.c)
        async with self._db.write() as conn:
            row = (await conn.execute(stmt)).mappings().one()
        return subscription_from_row(row)

    async def all(self, enabled_only: bool = False, *, owner: str | None = None) -> list[SubscriptionRow]:
        """Oldest first; `owner` keeps only that principal's subscriptions."""
        query = sa.select(subscriptions).order_by(subscriptions.c.id)
        if enabled_only:
            query = query.where(subscriptions.c.enabled.is_(True))
        if owner is not None:
            query = query.where(subscriptions.c.owner == owner)
        async with self._db.read() as conn:
            return [subscription_from_row(r) for r in (await conn.execute(query)).mappings()]

    async def get(self, subscription_id: int) -> SubscriptionRow | None:
        query = sa.select(subscriptions).where(subscriptions.c.id == subscription_id)
        async with self._db.read() as conn:
            row = (await conn.execute(query)).mappings().one_or_none()
        return subscription_from_row(row) if row is not None else None

    async def remove(self, subscription_id: int) -> bool:
        async with self._db.write() as conn:
            await conn.execute(sa.delete(deliveries).where(deliveries.c.subscription_id == subscription_id))
            removed = await conn.execute(sa.delete(subscriptions).where(subscriptions.c.id == subscription_id))
            return removed.rowcount == 1

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
        async with self._db.write() as conn:
            row = (await conn.execute(stmt)).mappings().one_or_none()
        return subscription_from_row(row) if row is not None else None

    async def set_enabled(self, subscription_id: int, enabled: bool, reason: str | None = None) -> bool:
        values: dict[str, Any] = {"enabled": enabled, "disabled_reason": None if enabled else reason}
        if enabled:
            values["failing_since"] = None
        stmt = sa.update(subscriptions).where(subscriptions.c.id == subscription_id).values(values)
        async with self._db.write() as conn:
            return (await conn.execute(stmt)).rowcount == 1

    async def set_failing_since(self, subscription_id: int, since: datetime | None) -> None:
        """Start (only if not started) or clear the failure streak of a subscription."""
        stmt = sa.update(subscriptions).where(subscriptions.c.id == subscription_id)
        if since is None:
            stmt = stmt.values(failing_since=None)
        else:
            stmt = stmt.where(subscriptions.c.failing_since.is_(None)).values(failing_since=since)
        async with self._db.write() as conn:
            await conn.execute(stmt)
