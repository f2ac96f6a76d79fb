"""Takedown tracking: whether alerted content can still be fetched."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import RowMapping

from agent.model.records import ContentStatusRow
from agent.model.status import ContentState
from agent.model.time import utcnow
from agent.store.engine import Engine
from agent.store.outbox import FollowUp, alerted_subscriptions, send_follow_up
from agent.store.schema import content_status, findings, items, retractions


def content_from_row(r: RowMapping, key: str = "item_key") -> ContentStatusRow:
    return ContentStatusRow(
        r[key],
        ContentState(r["state"]),
        r["first_alert_at"],
        r["changed_at"],
        r["last_checked_at"],
        dict(r["detail"] or {}),
    )


class ContentRepository:
    def __init__(self, engine: Engine) -> None:
        self._db = engine

    async def watched(self) -> list[tuple[str, str, datetime, ContentStatusRow | None]]:
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
        async with self._db.read() as conn:
            return [
                (r["key"], r["cid"], r["first"], None if r["state"] is None else content_from_row(r, "key"))
                for r in (await conn.execute(query)).mappings()
            ]

    async def states(self, item_keys: list[str]) -> dict[str, ContentState]:
        """The content state of each of `item_keys` that takedown tracking has checked."""
        if not item_keys:
            return {}
        query = sa.select(content_status.c.item_key, content_status.c.state).where(
            content_status.c.item_key.in_(sorted(set(item_keys)))
        )
        async with self._db.read() as conn:
            return {r["item_key"]: ContentState(r["state"]) for r in (await conn.execute(query)).mappings()}

    async def set_state(
        self, item_key: str, state: str, *, first_alert_at: datetime, detail: dict[str, Any], follow_up: FollowUp | None
    ) -> tuple[ContentState | None, ContentState]:
        """Record a check (`state` a ContentState: available or unavailable); on a
        change of state, send `follow_up(...)` to the subscriptions alerted about
        the item, in the same transaction. Returns (previous state, state)."""
        if state not in (ContentState.AVAILABLE, ContentState.UNAVAILABLE):
            raise ValueError("state is available or unavailable")
        checked = ContentState(state)
        now = utcnow()
        async with self._db.write() as conn:
            query = sa.select(content_status.c.state).where(content_status.c.item_key == item_key)
            stored = (await conn.execute(query)).scalar_one_or_none()
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
                await send_follow_up(conn, follow_up, await alerted_subscriptions(conn, item_key=item_key))
        return prev, checked
