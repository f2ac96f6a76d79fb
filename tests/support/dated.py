"""Findings, removals and retractions recorded at chosen times, for the tests of figures
over a period (the transparency report's service and its console page)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

import sqlalchemy as sa

from agent.model.records import FindingRow, ItemRow, LocationRow, NewEvent
from agent.model.signals import SignalType
from agent.model.status import ItemState
from agent.store import Store
from agent.store.schema import content_status, findings, retractions


async def dated_finding(
    store: Store, key: str, at: datetime, *, list_name: str = "tcap", labels: Sequence[str] = (), entry: str = ""
) -> int:
    """One finding of item `key` (recorded for it if new) against `list_name`, dated `at`."""
    row = FindingRow(key, list_name, entry or f"{list_name}:{key}", "abc", SignalType.MD5, 0.0, labels=tuple(labels))
    (made,) = await store.items.record(
        ItemRow(key=key, status=ItemState.VERIFIED, cid=f"bafy{key}"),
        LocationRow(item_key=key, path=f"{key}.jpg"),
        [row],
    )
    assert made.id is not None
    async with store._engine.begin() as conn:
        await conn.execute(sa.update(findings).where(findings.c.id == made.id).values(created_at=at))
    return made.id


async def removed_after(store: Store, key: str, first_alert_at: datetime, after: timedelta) -> None:
    """Item `key`'s content was seen gone `after` its first alert."""
    await store.content.set_state(key, "unavailable", first_alert_at=first_alert_at, detail={}, follow_up=None)
    async with store._engine.begin() as conn:
        changed = sa.update(content_status).where(content_status.c.item_key == key)
        await conn.execute(changed.values(changed_at=first_alert_at + after))


async def date_retractions(store: Store, finding_ids: Sequence[int], at: datetime) -> None:
    async with store._engine.begin() as conn:
        await conn.execute(
            sa.update(retractions).where(retractions.c.finding_id.in_(finding_ids)).values(created_at=at)
        )


def no_event(_finding: FindingRow, _recipients: list[int]) -> NewEvent | None:
    """A retraction's event builder that sends nothing (no subscription in these tests)."""
    return None
