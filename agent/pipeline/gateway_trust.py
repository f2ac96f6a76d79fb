"""Gateway distrust shared through the store: a liar one node's scan caught is not asked by any node's scan.

A scan that has a store loads the marks before it starts (`distrusted`) and, at its end, writes the
liars its pool caught (`record`): the end is enough, because within the scan the pool already
excludes a liar the moment it lies. With `distrust_s` 0 nothing is shared."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from agent.ipfs.gateway import DistrustNote, Lie
from agent.model.time import utcnow
from agent.store import Store


class GatewayTrust:
    """The gateway marks of one store, as the scans of node `node` read and write them."""

    def __init__(self, store: Store, node: str, distrust_s: float, *, clock: Callable[[], datetime] = utcnow) -> None:
        self._store = store
        self.node = node
        self.distrust_s = distrust_s
        self._clock = clock

    async def distrusted(self) -> dict[str, DistrustNote]:
        """The gateways no scan may ask now, by URL."""
        if self.distrust_s <= 0:
            return {}
        marks = await self._store.gateways.distrusted(self._clock())
        return {m.url: DistrustNote(until=m.until, cid=m.cid, node=m.node) for m in marks}

    async def record(self, lies: Sequence[Lie]) -> None:
        """Distrust each gateway that lied in this scan, from now for `distrust_s`."""
        if self.distrust_s <= 0:
            return
        until = self._clock() + timedelta(seconds=self.distrust_s)
        for lie in {lie.gateway: lie for lie in lies}.values():
            await self._store.gateways.mark(
                lie.gateway, f"served a wrong block of {lie.cid}", lie.cid, self.node, until
            )
