"""Trustless gateway client: verified retrieval over HTTP.

Spec: https://specs.ipfs.tech/http-gateways/trustless-gateway/ . Only
`application/vnd.ipld.raw` and `application/vnd.ipld.car` responses are
accepted, and every block is hashed before it is used. A gateway caught serving
bytes that do not match their CID is marked bad and never asked again by this
pool; its bytes are discarded."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Literal

import aiohttp
import structlog

from agent.http_headers import parse_retry_after
from agent.ipfs.blocks import BlockStash, PrefetchingSession, Provenance, RecentBlocks, open_session
from agent.ipfs.car import Block, CarReader
from agent.ipfs.cid import CID, block_key
from agent.ipfs.errors import (
    BlockedContent,
    BlockMismatch,
    BlockTooLarge,
    CarError,
    IpfsError,
    MissingBlock,
    UnsupportedHash,
)
from agent.ipfs.multihash import verify_block

log = structlog.get_logger(__name__)

CAR_ACCEPT = "application/vnd.ipld.car; version=1; order=dfs; dups=y"
RAW_ACCEPT = "application/vnd.ipld.raw"
Scope = Literal["block", "entity", "all"]
RetrievalMode = Literal["car", "raw"]
# Tries one gateway; returns the verified block.
_Attempt = Callable[["TrustlessGateway"], Awaitable[bytes]]


class GatewayError(IpfsError):
    """A gateway did not give a usable answer (status, type, timeout, connection)."""

    def __init__(self, url: str, detail: str, status: int | None = None) -> None:
        self.url = url
        self.status = status
        super().__init__(f"{url}: {detail}")


class NotFoundAtGateway(GatewayError):
    pass


class BlockedAtGateway(GatewayError):
    """410 Gone or 451 Unavailable For Legal Reasons: the operator blocked this content."""


class RateLimited(GatewayError):
    def __init__(self, url: str, retry_after: float | None) -> None:
        self.retry_after = retry_after
        super().__init__(url, f"429 Too Many Requests (Retry-After {retry_after})", 429)


@dataclass
class GatewayHealth:
    """Recent behaviour of one gateway; the pool asks healthier gateways first."""

    url: str
    order: int
    successes: int = 0
    failures: int = 0
    lies: int = 0
    blocked: int = 0
    bad: bool = False
    score: float = 1.0
    cooldown_until: float = 0.0
    last_error: str | None = None

    def record(self, ok: bool, error: str | None = None) -> None:
        if ok:
            self.successes += 1
        else:
            self.failures += 1
            self.last_error = error
        self.score = 0.8 * self.score + 0.2 * (1.0 if ok else 0.0)


class TrustlessGateway:
    def __init__(
        self,
        url: str,
        session: aiohttp.ClientSession,
        *,
        max_block_bytes: int = 2 * 1024 * 1024,
        connect_timeout_s: float = 10.0,
        read_timeout_s: float = 30.0,
    ) -> None:
        self.url = url.rstrip("/")
        self._session = session
        self._max_block = max_block_bytes
        self._timeout = aiohttp.ClientTimeout(total=None, sock_connect=connect_timeout_s, sock_read=read_timeout_s)

    def __repr__(self) -> str:
        return f"TrustlessGateway({self.url!r})"

    def _check_status(self, resp: aiohttp.ClientResponse) -> None:
        if resp.status == 200:
            return
        if resp.status == 404:
            raise NotFoundAtGateway(self.url, "404 Not Found", 404)
        if resp.status in (410, 451):
            raise BlockedAtGateway(self.url, f"{resp.status} {resp.reason or ''}".strip(), resp.status)
        if resp.status == 429:
            raise RateLimited(self.url, parse_retry_after(resp.headers.get("Retry-After")))
        raise GatewayError(self.url, f"HTTP {resp.status} {resp.reason or ''}".strip(), resp.status)

    def _check_type(self, resp: aiohttp.ClientResponse, want: str) -> None:
        got = resp.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if got != want:
            raise GatewayError(self.url, f"answered {got or 'no Content-Type'}, not {want}: not a trustless gateway response")

    async def block(self, cid: CID) -> bytes:
        """One raw block, verified against `cid`."""
        try:
            async with self._session.get(
                f"{self.url}/ipfs/{cid}",
                params={"format": "raw"},
                headers={"Accept": RAW_ACCEPT},
                allow_redirects=False,
                timeout=self._timeout,
            ) as resp:
                self._check_status(resp)
                self._check_type(resp, RAW_ACCEPT)
                declared = resp.content_length
                if declared is not None and declared > self._max_block:
                    raise BlockTooLarge(f"{self.url} offers {declared} bytes for block {cid}; limit {self._max_block}")
                chunks: list[bytes] = []
                size = 0
                async for chunk in resp.content.iter_chunked(1 << 16):
                    size += len(chunk)
                    if size > self._max_block:
                        raise BlockTooLarge(f"{self.url} sent over {self._max_block} bytes for block {cid}")
                    chunks.append(chunk)
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            raise GatewayError(self.url, f"{type(exc).__name__}: {exc}".rstrip(": ")) from exc
        data = b"".join(chunks)
        verify_block(cid, data, self.url)
        return data

    @asynccontextmanager
    async def car(self, cid: CID, scope: Scope = "entity") -> AsyncIterator[AsyncIterator[Block]]:
        """A CAR response as an iterator of verified blocks; the response is closed on exit."""
        try:
            resp = await self._session.get(
                f"{self.url}/ipfs/{cid}",
                params={"format": "car", "dag-scope": scope},
                headers={"Accept": CAR_ACCEPT},
                allow_redirects=False,
                timeout=self._timeout,
            )
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            raise GatewayError(self.url, f"{type(exc).__name__}: {exc}".rstrip(": ")) from exc
        try:
            self._check_status(resp)
            self._check_type(resp, "application/vnd.ipld.car")
            reader = CarReader(resp.content, max_block_bytes=self._max_block, source=self.url)
            yield self._blocks(reader)
        finally:
            resp.close()

    async def _blocks(self, reader: CarReader) -> AsyncIterator[Block]:
        try:
            async for block in reader:
                yield block
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            raise GatewayError(self.url, f"CAR stream broke: {type(exc).__name__}: {exc}".rstrip(": ")) from exc


@dataclass
class Lie:
    gateway: str
    cid: str


@dataclass
class GatewayPool:
    """Several gateways with failover and health scores; a BlockSource for the DAG walker."""

    gateways: list[TrustlessGateway]
    mode: RetrievalMode = "car"
    max_buffered_bytes: int = 64 * 1024 * 1024
    max_retry_after_s: float = 30.0
    raw_prefetch: int = 8
    health: dict[str, GatewayHealth] = field(default_factory=dict)
    lies: list[Lie] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.gateways:
            raise ValueError("a gateway pool needs at least one gateway")
        for i, gw in enumerate(self.gateways):
            self.health.setdefault(gw.url, GatewayHealth(gw.url, i))

    def ranked(self) -> list[TrustlessGateway]:
        now = time.monotonic()

        def rank(gw: TrustlessGateway) -> tuple[bool, float, int]:
            h = self.health[gw.url]
            return (h.cooldown_until > now, -h.score, h.order)

        return sorted((gw for gw in self.gateways if not self.health[gw.url].bad), key=rank)

    def mark_liar(self, url: str, cid: str) -> None:
        h = self.health[url]
        h.lies += 1
        h.bad = True
        h.record(False, f"served wrong bytes for {cid}")
        self.lies.append(Lie(url, cid))
        log.warning("gateway.lied", gateway=url, cid=cid)

    def _failure(self, gw: TrustlessGateway, exc: Exception) -> None:
        h = self.health[gw.url]
        if isinstance(exc, BlockedAtGateway):
            h.blocked += 1
            return  # a policy answer, not a malfunction
        if isinstance(exc, NotFoundAtGateway):
            return
        h.record(False, str(exc))
        if isinstance(exc, RateLimited):
            h.cooldown_until = time.monotonic() + (exc.retry_after or 1.0)

    async def _with_failover(self, cid: CID, provenance: Provenance, attempt: _Attempt) -> bytes:
        """Run `attempt` on each healthy gateway in turn until one yields the block."""
        answers: dict[str, str] = {}
        gateways = self.ranked()
        if not gateways:
            raise MissingBlock(str(cid), "no gateway left that has not served wrong bytes")
        for gw in gateways:
            for _ in range(2):  # a second try only after honouring a short Retry-After
                try:
                    data = await attempt(gw)
                except BlockMismatch:
                    self.mark_liar(gw.url, str(cid))
                    if gw.url not in provenance.lied:
                        provenance.lied.append(gw.url)
                    answers[gw.url] = "served bytes that do not match the CID"
                    break
                except RateLimited as exc:
                    self._failure(gw, exc)
                    answers[gw.url] = str(exc)
                    if exc.retry_after is not None and exc.retry_after <= self.max_retry_after_s:
                        await asyncio.sleep(exc.retry_after)
                        continue
                    break
                except BlockedAtGateway as exc:
                    self._failure(gw, exc)
                    provenance.blocked_at[gw.url] = exc.status or 410
                    answers[gw.url] = str(exc)
                    break
                except UnsupportedHash:
                    raise
                except (GatewayError, CarError, BlockTooLarge, MissingBlock) as exc:
                    self._failure(gw, exc)
                    answers[gw.url] = str(exc)
                    break
                else:
                    self.health[gw.url].record(True)
                    provenance.served(gw.url)
                    return data
        if provenance.blocked_at and all(url in provenance.blocked_at or "404" in why for url, why in answers.items()):
            raise BlockedContent(str(cid), dict(provenance.blocked_at))
        detail = "; ".join(why if why.startswith(url) else f"{url}: {why}" for url, why in answers.items())
        raise MissingBlock(str(cid), detail)

    async def fetch_block(self, cid: CID, provenance: Provenance) -> bytes:
        async def attempt(gw: TrustlessGateway) -> bytes:
            return await gw.block(cid)

        return await self._with_failover(cid, provenance, attempt)

    async def open(self, cid: CID) -> tuple[bytes, _CarSession | PrefetchingSession]:
        session: _CarSession | PrefetchingSession
        session = _CarSession(self, cid) if self.mode == "car" else PrefetchingSession(self.fetch_block,
                                                                                         self.raw_prefetch)
        return await open_session(session, cid)


class _CarSession:
    """One entity read from CAR streams in depth-first order.

    The walker asks for blocks in the order a DFS CAR carries them, so normally
    each request is answered by the next block of the open stream. Blocks that
    come early are stashed (bounded memory, then disk). When the stream cannot
    supply a block (it ended, broke, or its gateway lied) a new CAR request is
    made for the subtree rooted at that block, on the healthiest gateway."""

    def __init__(self, pool: GatewayPool, root: CID) -> None:
        self._pool = pool
        self.provenance = Provenance()
        self._stash = BlockStash(pool.max_buffered_bytes)
        self._recent = RecentBlocks(min(8 * 1024 * 1024, pool.max_buffered_bytes))
        self._consumed: set[bytes] = set()
        self._stream: AsyncIterator[Block] | None = None
        self._stream_cm: object | None = None
        self._stream_gw: TrustlessGateway | None = None

    async def _close_stream(self) -> None:
        cm, self._stream_cm, self._stream, self._stream_gw = self._stream_cm, None, None, None
        if cm is not None:
            await cm.__aexit__(None, None, None)  # type: ignore[attr-defined]

    async def aclose(self) -> None:
        await self._close_stream()
        self._stash.close()

    def _deliver(self, key: bytes, data: bytes) -> bytes:
        self._consumed.add(key)
        self._recent.put(key, data)
        return data

    async def _pull(self, key: bytes, cid: CID) -> bytes | None:
        """Read the open stream until `key` arrives; None if the stream cannot give it."""
        gw = self._stream_gw
        while self._stream is not None and gw is not None:
            try:
                block = await anext(self._stream)
            except StopAsyncIteration:
                await self._close_stream()
                return None
            except BlockMismatch as exc:
                self._pool.mark_liar(gw.url, exc.cid)
                if gw.url not in self.provenance.lied:
                    self.provenance.lied.append(gw.url)
                await self._close_stream()
                return None
            except (GatewayError, CarError, BlockTooLarge) as exc:
                self._pool._failure(gw, exc)
                await self._close_stream()
                return None
            self.provenance.served(gw.url)
            if block.key == key:
                return block.data
            self._stash.put(block.key, block.data)
        return None

    async def get(self, cid: CID) -> bytes:
        key = block_key(cid)
        data = self._recent.get(key) or self._stash.pop(key)
        if data is not None:
            return self._deliver(key, data)
        if key not in self._consumed:  # a block sent once will not come again on this stream
            data = await self._pull(key, cid)
            if data is not None:
                return self._deliver(key, data)
        else:
            return self._deliver(key, await self._pool.fetch_block(cid, self.provenance))
        await self._close_stream()
        return self._deliver(key, await self._pool._with_failover(cid, self.provenance, self._open_at(cid, key)))

    def _open_at(self, cid: CID, key: bytes) -> _Attempt:
        session = self

        async def attempt(gw: TrustlessGateway) -> bytes:
            cm = gw.car(cid, "entity")
            stream = await cm.__aenter__()
            session._stream_cm, session._stream, session._stream_gw = cm, stream, gw
            try:
                block = await anext(stream)
            except StopAsyncIteration:
                await session._close_stream()
                raise MissingBlock(str(cid), f"{gw.url} sent a CAR without it") from None
            except BaseException:
                await session._close_stream()
                raise
            if block.key == key:
                return block.data
            session._stash.put(block.key, block.data)
            data = await session._pull(key, cid)
            if data is None:
                raise MissingBlock(str(cid), f"{gw.url} sent a CAR without it")
            return data

        return attempt
