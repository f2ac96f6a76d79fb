"""Reading one entity from CAR streams in depth-first order (the pool's "car" mode).

The pool (agent.ipfs.gateway) owns the gateways and their health; a CarSession
owns one walk's open stream, its early blocks and its budget of unrequested
bytes, and asks the pool to fail over when the stream cannot go on."""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from agent.ipfs.blocks import Provenance, RecentBlocks
from agent.ipfs.car import Block
from agent.ipfs.cid import CID, block_key
from agent.ipfs.errors import BlockMismatch, BlockTooLarge, CarError, GatewayError, IpfsError, MissingBlock
from agent.ipfs.stash import ENTRY_OVERHEAD, SpillingStash, StashFull
from agent.ipfs.trustless import CarResponse, TrustlessGateway

if TYPE_CHECKING:
    # Only a type: the pool imports this module to open sessions.
    from agent.ipfs.gateway import GatewayPool

__all__ = ["AlreadyRecorded", "Attempt", "CarSession"]

# Tries one gateway; returns the verified block.
Attempt = Callable[[TrustlessGateway], Awaitable[bytes]]


class AlreadyRecorded(IpfsError):
    """A stream failed and the failure is already recorded against its gateway."""


@dataclass
class _Stream:
    """The CAR response a session is reading, and what it sent that was not asked for."""

    response: CarResponse
    gateway: TrustlessGateway
    closer: Callable[[], Awaitable[Any]]
    unrequested_bytes: int = 0
    unrequested_blocks: int = 0
    repeats: int = 0
    # Blocks this stream will still send (dups=y) that the walker got from the cache instead.
    owed: Counter[bytes] = field(default_factory=Counter)


class CarSession:
    """One entity read from CAR streams in depth-first order.

    The walker asks for blocks in the order a DFS CAR carries them, so normally
    each request is answered by the next block of the open stream. Blocks that
    come early are stashed (bounded memory, then disk); blocks that come again
    are dropped. Both count against the stream's budget of unrequested bytes,
    and a stream over it is abandoned and its gateway not asked again. When the
    stream cannot supply a block (it ended, broke, was too slow, or its gateway
    lied) a new CAR request is made for the subtree rooted at that block, on
    the healthiest gateway left."""

    def __init__(self, pool: GatewayPool, root: CID) -> None:
        self._pool = pool
        self.provenance = Provenance()
        self._stash = SpillingStash(pool.max_buffered_bytes, pool.max_unrequested_bytes)
        self._recent = RecentBlocks(min(8 * 1024 * 1024, pool.max_buffered_bytes))
        self._consumed: set[bytes] = set()
        self._stream: _Stream | None = None
        # Why streams were given up, per gateway: the item's error says it if nothing else worked.
        self._abandoned: dict[str, str] = {}

    async def _close_stream(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            await stream.closer()

    async def aclose(self) -> None:
        await self._close_stream()
        self._stash.close()

    def _deliver(self, key: bytes, data: bytes) -> bytes:
        self._consumed.add(key)
        self._recent.put(key, data)
        return data

    def _cached(self, key: bytes) -> bytes | None:
        data = self._recent.get(key)
        if data is not None:  # a repeated reference: a dups=y stream still sends it at this point
            if self._stream is not None and self._stream.response.dups:
                self._stream.owed[key] += 1
            return data
        return self._stash.pop(key)

    async def _pull(self, key: bytes) -> bytes | None:
        """Read the open stream until `key` arrives; None if the stream cannot give it."""
        while (stream := self._stream) is not None:
            gw = stream.gateway
            try:
                block = await anext(stream.response.blocks)
            except StopAsyncIteration:
                await self._close_stream()
                return None
            except BlockMismatch as exc:
                self._pool.mark_liar(gw.url, exc.cid)
                if gw.url not in self.provenance.lied:
                    self.provenance.lied.append(gw.url)
                self._abandoned[gw.url] = f"served bytes that do not match the CID of block {exc.cid}"
                await self._close_stream()
                return None
            except (GatewayError, CarError, BlockTooLarge) as exc:
                self._pool.failure(gw, exc)
                self._abandoned[gw.url] = str(exc)
                await self._close_stream()
                return None
            self.provenance.served(gw.url)
            if block.key == key:
                return block.data
            refusal = self._unrequested(stream, block)
            if refusal is not None:
                self._pool.mark_flooder(gw.url, refusal)
                self._abandoned[gw.url] = refusal
                await self._close_stream()
                return None
        return None

    def _unrequested(self, stream: _Stream, block: Block) -> str | None:
        """Keep or drop a block that came before it was asked for; why the stream must go, if it must."""
        if stream.owed[block.key] > 0:
            stream.owed[block.key] -= 1
            return None
        stream.unrequested_blocks += 1
        stream.unrequested_bytes += len(block.data) + ENTRY_OVERHEAD
        if block.key in self._consumed or block.key in self._stash:
            stream.repeats += 1
        else:
            try:
                self._stash.put(block.key, block.data)
            except StashFull as exc:
                return self._flood_detail(stream, str(exc))
        if stream.unrequested_bytes > self._pool.max_unrequested_bytes:
            return self._flood_detail(stream, f"the limit is {self._pool.max_unrequested_bytes}")
        return None

    @staticmethod
    def _flood_detail(stream: _Stream, why: str) -> str:
        return (
            f"{stream.gateway.url}: CAR stream abandoned after {stream.unrequested_blocks} blocks the walk "
            f"did not ask for ({stream.repeats} of them repeats, {stream.unrequested_bytes} bytes counted; {why})"
        )

    async def get(self, cid: CID) -> bytes:
        key = block_key(cid)
        data = self._cached(key)
        if data is not None:
            return self._deliver(key, data)
        stream = self._stream
        if stream is not None and (key not in self._consumed or stream.response.dups):
            data = await self._pull(key)
            if data is not None:
                return self._deliver(key, data)
        elif key in self._consumed:  # a block sent once will not come again on a dups=n stream
            return self._deliver(key, await self._pool.fetch_block(cid, self.provenance))
        await self._close_stream()
        earlier, self._abandoned = self._abandoned, {}
        return self._deliver(
            key, await self._pool._with_failover(cid, self.provenance, self._open_at(cid, key), earlier)
        )

    def _open_at(self, cid: CID, key: bytes) -> Attempt:
        session = self

        async def attempt(gw: TrustlessGateway) -> bytes:
            cm = gw.car(cid, "entity")
            response = await cm.__aenter__()
            session._stream = _Stream(response, gw, lambda: cm.__aexit__(None, None, None))
            data = await session._pull(key)
            if data is not None:
                return data
            why = session._abandoned.pop(gw.url, None)
            if why is not None:
                raise AlreadyRecorded(why)
            raise MissingBlock(str(cid), f"{gw.url} sent a CAR without it")

        return attempt
