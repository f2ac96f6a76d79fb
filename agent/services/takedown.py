"""Takedown tracking: probe the content that was matched, and record each change of state.

"unknown" (every source failed to answer) is no change: our own outage must not look
like a takedown. A change queues content.state_changed to the subscriptions alerted
about the item, in the store's transaction."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from typing import TYPE_CHECKING, Any

from agent.alerts.events import content_changed
from agent.ipfs.probe import ContentProbe
from agent.model.status import ContentState
from agent.model.time import utcnow

if TYPE_CHECKING:
    import aiohttp

    from agent.store import Store

# The job name of a scheduled round in the store's job slots (one claim per interval).
RECHECK_JOB = "recheck"
# Slot claims older than this are forgotten.
_SLOT_RETENTION = timedelta(days=7)


@dataclass(frozen=True, slots=True)
class ContentChange:
    item_key: str
    state: ContentState
    reason: str


class TakedownService:
    def __init__(
        self,
        store: Store,
        http: aiohttp.ClientSession,
        gateways: Sequence[str],
        *,
        routing_url: str | None = None,
    ) -> None:
        self._store = store
        self._http = http
        self._gateways = list(gateways)
        self._routing_url = routing_url

    async def recheck(self, slot: int | None = None, node: str = "") -> list[ContentChange]:
        """Probe every matched item once; returns the changes of state.

        With a `slot` (the scheduled round's number), the round is first claimed for
        `node` across the agents sharing the database, so that two agents never probe
        and announce the same change; None (a manual call) always runs."""
        if not self._gateways:
            return []
        if slot is not None:
            if not await self._store.slots.claim(RECHECK_JOB, slot, node):
                return []
            await self._store.slots.prune(utcnow() - _SLOT_RETENTION)
        probe = ContentProbe(self._http, self._gateways, routing_url=self._routing_url)
        changes: list[ContentChange] = []
        for key, cid, first_alert, _status in await self._store.content.watched():
            result = await probe.check(cid)
            if result.state == "unknown":
                continue  # our own outage must not look like a takedown
            detail: dict[str, Any] = {  # the content state's JSON column
                "gateways": {url: {"status": a.status, "verdict": a.verdict} for url, a in result.gateways.items()},
                "providers": result.providers,
                "reason": result.reason,
            }
            subs = await self._store.subscriptions.all()
            at = utcnow()
            available = result.state == "available"
            prev, state = await self._store.content.set_state(
                key,
                result.state,
                first_alert_at=first_alert,
                detail=detail,
                follow_up=partial(content_changed, key, cid, available, first_alert, at, detail, subs),
            )
            if (prev or ContentState.AVAILABLE) != state:
                changes.append(ContentChange(key, state, result.reason))
        return changes
