"""Where blocks come from: the interfaces the DAG walker reads through.

A *session* serves one entity (a file, a directory with its HAMT shards, a
document): it is opened on the entity's root CID and then asked for the blocks
below it, in the depth-first order a walker needs them. Sessions let a CAR
response be consumed as a stream and let one failing item fail alone."""

from __future__ import annotations

import asyncio
from collections import OrderedDict, deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from agent.ipfs.cid import CID, block_key


@dataclass
class Provenance:
    """Which gateways served an entity's blocks and which were caught lying."""

    served_by: list[str] = field(default_factory=list)
    lied: list[str] = field(default_factory=list)
    blocked_at: dict[str, int] = field(default_factory=dict)

    def served(self, source: str) -> None:
        if source not in self.served_by:
            self.served_by.append(source)

    def merge(self, other: Provenance) -> None:
        for url in other.served_by:
            self.served(url)
        for url in other.lied:
            if url not in self.lied:
                self.lied.append(url)
        self.blocked_at.update(other.blocked_at)


class BlockSession(Protocol):
    provenance: Provenance

    async def get(self, cid: CID) -> bytes:
        """A verified block below this session's root."""
        ...

    async def aclose(self) -> None: ...


class BlockSource(Protocol):
    async def open(self, cid: CID) -> tuple[bytes, BlockSession]:
        """Start a session on an entity; returns its verified root block."""
        ...


_S = TypeVar("_S", bound=BlockSession)


async def open_session(session: _S, cid: CID) -> tuple[bytes, _S]:
    """Fetch a new session's root block. On failure the session is closed and the
    error keeps the session's provenance (which gateways lied or blocked), so a
    report can still say so."""
    from agent.ipfs.errors import IpfsError

    try:
        root = await session.get(cid)
    except IpfsError as exc:
        exc.provenance = session.provenance
        await session.aclose()
        raise
    except BaseException:
        await session.aclose()
        raise
    return root, session


class RecentBlocks:
    """A small byte-bounded LRU of blocks already handed out, for DAGs that
    reference the same block twice (a file of repeated chunks)."""

    def __init__(self, max_bytes: int) -> None:
        self._max = max_bytes
        self._items: OrderedDict[bytes, bytes] = OrderedDict()
        self._bytes = 0

    def get(self, key: bytes) -> bytes | None:
        data = self._items.get(key)
        if data is not None:
            self._items.move_to_end(key)
        return data

    def put(self, key: bytes, data: bytes) -> None:
        if len(data) > self._max or key in self._items:
            return
        self._items[key] = data
        self._bytes += len(data)
        while self._bytes > self._max:
            _, old = self._items.popitem(last=False)
            self._bytes -= len(old)


class PrefetchingSession:
    """A session fetching block by block through `fetch`, with a bounded window of
    requests running ahead over the siblings the walker announces (`prefetch`),
    so that block-at-a-time retrieval (raw gateway requests, Kubo block/get)
    overlaps its round trips instead of paying them one after another. A block
    the DAG names again (a file of repeated chunks) is served from a small cache,
    not requested again."""

    def __init__(
        self,
        fetch: Callable[[CID, Provenance], Coroutine[Any, Any, bytes]],
        window: int,
        recent_bytes: int = 4 * 1024 * 1024,
    ) -> None:
        self._fetch = fetch
        self._window = max(0, window)
        self.provenance = Provenance()
        self._recent = RecentBlocks(recent_bytes)
        self._ahead: dict[bytes, asyncio.Task[bytes]] = {}
        self._queue: deque[CID] = deque()

    def prefetch(self, cids: list[CID]) -> None:
        if self._window:
            self._queue.extend(cids)
            self._fill()

    def _fill(self) -> None:
        while self._queue and len(self._ahead) < self._window:
            cid = self._queue.popleft()
            key = block_key(cid)
            if key not in self._ahead and self._recent.get(key) is None:
                self._ahead[key] = asyncio.create_task(self._fetch(cid, self.provenance))

    async def get(self, cid: CID) -> bytes:
        key = block_key(cid)
        cached = self._recent.get(key)  # b"" is a block too: compare with None
        if cached is not None:
            return cached
        task = self._ahead.pop(key, None)
        self._fill()
        data = await task if task is not None else await self._fetch(cid, self.provenance)
        self._recent.put(key, data)
        return data

    async def aclose(self) -> None:
        self._queue.clear()
        for task in self._ahead.values():
            task.cancel()
        await asyncio.gather(*self._ahead.values(), return_exceptions=True)
        self._ahead.clear()
