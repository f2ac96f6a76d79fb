"""Trustless gateway client: verified retrieval over HTTP.

Spec: https://specs.ipfs.tech/http-gateways/trustless-gateway/ . Only
`application/vnd.ipld.raw` and `application/vnd.ipld.car` responses are
accepted, and every block is hashed before it is used. A gateway caught serving
bytes that do not match their CID is marked bad and never asked again by this
pool; its bytes are discarded."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

import aiohttp
import structlog

from agent.ipfs.blocks import PrefetchingSession, Provenance, RecentBlocks, open_session
from agent.ipfs.car import Block, CarReader
from agent.ipfs.cid import CID, block_key, check_cid, cid_text
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
from agent.ipfs.stash import ENTRY_OVERHEAD, SpillingStash, StashFull
from agent.net.retry_after import parse_retry_after

log = structlog.get_logger(__name__)

CAR_ACCEPT = "application/vnd.ipld.car; version=1; order=dfs; dups=y"
RAW_ACCEPT = "application/vnd.ipld.raw"
Scope = Literal["block", "entity", "all"]
RetrievalMode = Literal["car", "raw"]
# Tries one gateway; returns the verified block.
_Attempt = Callable[["TrustlessGateway"], Awaitable[bytes]]
_T = TypeVar("_T")
# A gateway answering this many responses below the minimum throughput is not asked again in a pool.
_MAX_SLOW_RESPONSES = 2


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


class SlowGateway(GatewayError):
    """A response broke its total deadline or fell below the minimum throughput."""

    def __init__(self, url: str, detail: str, *, too_slow: bool) -> None:
        self.too_slow = too_slow  # below the minimum throughput (not merely long)
        super().__init__(url, detail)


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
    # Not asked again in this pool (it lied, flooded a stream, or was repeatedly too slow).
    excluded: bool = False
    slow: int = 0
    bytes_received: int = 0
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


class ResponseMeter:
    """Bounds one response in time: a total deadline, and a minimum average throughput
    of its body once a grace period of waiting for body bytes has passed (the wait for
    the headers is bounded by the deadline and the per-read timeout, as a gateway
    fetching content from the network may take long to start). Only time spent
    waiting for the gateway counts, not the time the agent spends between reads
    (hashing, decoding), so a slow consumer is never blamed on the gateway. `clock`
    is injectable for tests."""

    def __init__(
        self,
        url: str,
        *,
        deadline_s: float,
        min_bytes_per_s: float,
        grace_s: float,
        clock: Callable[[], float] = time.monotonic,
        on_bytes: Callable[[int], None] | None = None,
    ) -> None:
        self.url = url
        self._deadline = deadline_s
        self._min_rate = min_bytes_per_s
        self._grace = grace_s
        self._clock = clock
        self._on_bytes = on_bytes
        self.bytes = 0
        self.waited = 0.0  # all waiting, headers included: against the deadline
        self.body_waited = 0.0  # waiting for body bytes: against the minimum throughput

    def time_left(self, *, body: bool = True) -> float:
        """How long the next wait may last before a limit is crossed."""
        left = self._deadline - self.waited
        if body and self._min_rate > 0:
            left = min(left, max(self._grace, self.bytes / self._min_rate) - self.body_waited)
        return left

    def add(self, n: int) -> None:
        self.bytes += n
        if self._on_bytes is not None:
            self._on_bytes(n)

    def breach(self) -> SlowGateway:
        if self.waited >= self._deadline:
            return SlowGateway(
                self.url,
                f"response not complete after {self.waited:.1f} s of waiting "
                f"({self.bytes} bytes); the deadline is {self._deadline:g} s",
                too_slow=False,
            )
        rate = self.bytes / self.body_waited if self.body_waited else 0.0
        return SlowGateway(
            self.url,
            f"sent {self.bytes} bytes in {self.body_waited:.1f} s ({rate:.0f} B/s), "
            f"below the minimum of {self._min_rate:g} B/s",
            too_slow=True,
        )

    def _waited(self, seconds: float, body: bool) -> None:
        self.waited += seconds
        if body:
            self.body_waited += seconds

    async def wait(self, awaitable: Awaitable[_T], *, body: bool = True) -> _T:
        """Await the gateway within the limits; `body=False` for the wait for the headers."""
        left = self.time_left(body=body)
        if left <= 0:
            close = getattr(awaitable, "close", None)  # never started: no "never awaited" warning
            if callable(close):
                close()
            raise self.breach()
        start = self._clock()
        timer = asyncio.timeout(left)
        try:
            async with timer:
                result = await awaitable
        except TimeoutError:
            self._waited(self._clock() - start, body)
            if not timer.expired():
                raise  # aiohttp's own per-read timeout, reported as such
            raise self.breach() from None
        except BaseException:
            self._waited(self._clock() - start, body)
            raise
        self._waited(self._clock() - start, body)
        return result


class _MeteredStream:
    """A response body as a ByteStream whose every wait goes through a ResponseMeter."""

    def __init__(self, content: aiohttp.StreamReader, meter: ResponseMeter) -> None:
        self._content = content
        self._meter = meter

    async def readexactly(self, n: int) -> bytes:
        parts: list[bytes] = []
        got = 0
        while got < n:
            chunk = await self._meter.wait(self._content.read(n - got))
            if not chunk:
                raise asyncio.IncompleteReadError(b"".join(parts), n)
            self._meter.add(len(chunk))
            parts.append(chunk)
            got += len(chunk)
        return parts[0] if len(parts) == 1 else b"".join(parts)


@dataclass
class CarResponse:
    """An open CAR response: its verified blocks, and whether it sends duplicates (dups=y)."""

    blocks: AsyncIterator[Block]
    dups: bool
    meter: ResponseMeter


class TrustlessGateway:
    def __init__(
        self,
        url: str,
        session: aiohttp.ClientSession,
        *,
        max_block_bytes: int = 2 * 1024 * 1024,
        connect_timeout_s: float = 10.0,
        read_timeout_s: float = 30.0,
        response_deadline_s: float = 600.0,
        min_bytes_per_s: float = 1024.0,
        throughput_grace_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.url = url.rstrip("/")
        self._session = session
        self._max_block = max_block_bytes
        self._timeout = aiohttp.ClientTimeout(total=None, sock_connect=connect_timeout_s, sock_read=read_timeout_s)
        self._deadline = response_deadline_s
        self._min_rate = min_bytes_per_s
        self._grace = throughput_grace_s
        self._clock = clock
        self.bytes_received = 0

    def _meter(self) -> ResponseMeter:
        return ResponseMeter(
            self.url,
            deadline_s=self._deadline,
            min_bytes_per_s=self._min_rate,
            grace_s=self._grace,
            clock=self._clock,
            on_bytes=self._count,
        )

    def _count(self, n: int) -> None:
        self.bytes_received += n

    def _request(
        self, cid: CID, fmt: str, accept: str, meter: ResponseMeter, scope: Scope | None = None
    ) -> Awaitable[aiohttp.ClientResponse]:
        params = {"format": fmt} if scope is None else {"format": fmt, "dag-scope": scope}
        # The canonical spelling (base32 v1, base58btc v0): strict gateways refuse base36 and others.
        return meter.wait(
            self._session.get(
                f"{self.url}/ipfs/{cid_text(cid)}",
                params=params,
                headers={"Accept": accept},
                allow_redirects=False,
                timeout=self._timeout,
            ),
            body=False,
        )

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
            raise GatewayError(
                self.url, f"answered {got or 'no Content-Type'}, not {want}: not a trustless gateway response"
            )

    async def block(self, cid: CID) -> bytes:
        """One raw block, verified against `cid`."""
        meter = self._meter()
        try:
            async with await self._request(cid, "raw", RAW_ACCEPT, meter) as resp:
                self._check_status(resp)
                self._check_type(resp, RAW_ACCEPT)
                declared = resp.content_length
                if declared is not None and declared > self._max_block:
                    raise BlockTooLarge(f"{self.url} offers {declared} bytes for block {cid}; limit {self._max_block}")
                chunks: list[bytes] = []
                size = 0
                while True:
                    chunk = await meter.wait(resp.content.read(1 << 16))
                    if not chunk:
                        break
                    meter.add(len(chunk))
                    size += len(chunk)
                    if size > self._max_block:
                        raise BlockTooLarge(f"{self.url} sent over {self._max_block} bytes for block {cid}")
                    chunks.append(chunk)
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise GatewayError(self.url, f"{type(exc).__name__}: {exc}".rstrip(": ")) from exc
        data = b"".join(chunks)
        verify_block(cid, data, self.url)
        return data

    @asynccontextmanager
    async def car(self, cid: CID, scope: Scope = "entity") -> AsyncIterator[CarResponse]:
        """A CAR response as an iterator of verified blocks; the response is closed on exit."""
        meter = self._meter()
        try:
            resp = await self._request(cid, "car", CAR_ACCEPT, meter, scope)
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise GatewayError(self.url, f"{type(exc).__name__}: {exc}".rstrip(": ")) from exc
        try:
            self._check_status(resp)
            self._check_type(resp, "application/vnd.ipld.car")
            params = {p.strip().lower() for p in resp.headers.get("Content-Type", "").split(";")[1:]}
            reader = CarReader(_MeteredStream(resp.content, meter), max_block_bytes=self._max_block, source=self.url)
            yield CarResponse(self._blocks(reader), dups="dups=n" not in params, meter=meter)
        finally:
            resp.close()

    async def _blocks(self, reader: CarReader) -> AsyncIterator[Block]:
        try:
            async for block in reader:
                yield block
        except (TimeoutError, aiohttp.ClientError) as exc:
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
    # Bytes one CAR response may send that the walk did not ask for (early blocks,
    # repeats) before it is abandoned; early blocks beyond memory go to disk up to this.
    max_unrequested_bytes: int = 256 * 1024 * 1024
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

        return sorted((gw for gw in self.gateways if not self.health[gw.url].excluded), key=rank)

    def report(self) -> list[dict[str, Any]]:
        """Each gateway's behaviour, as the scan report's `gateways[]` shows it."""
        received = {gw.url: gw.bytes_received for gw in self.gateways}
        return [
            {
                "url": h.url,
                "served": h.successes,
                "failures": h.failures,
                "lied": h.lies,
                "blocked": h.blocked,
                "trusted": not h.bad,
                "excluded": h.excluded,
                "bytes_received": received.get(h.url, 0),
                "last_error": h.last_error,
            }
            for h in self.health.values()
        ]

    def mark_liar(self, url: str, cid: str) -> None:
        h = self.health[url]
        h.lies += 1
        h.bad = h.excluded = True
        h.record(False, f"served wrong bytes for {cid}")
        self.lies.append(Lie(url, cid))
        log.warning("gateway.lied", gateway=url, cid=cid)

    def mark_flooder(self, url: str, detail: str) -> None:
        """A stream full of blocks nobody asked for is deliberate: the gateway is not asked again."""
        h = self.health[url]
        h.bad = h.excluded = True
        h.record(False, detail)
        log.warning("gateway.flooded", gateway=url, detail=detail)

    def failure(self, gw: TrustlessGateway, exc: Exception) -> None:
        h = self.health[gw.url]
        if isinstance(exc, BlockedAtGateway):
            h.blocked += 1
            return  # a policy answer, not a malfunction
        if isinstance(exc, NotFoundAtGateway):
            return
        h.record(False, str(exc))
        if isinstance(exc, RateLimited):
            h.cooldown_until = time.monotonic() + (exc.retry_after or 1.0)
        if isinstance(exc, SlowGateway) and exc.too_slow:
            h.slow += 1
            h.excluded = h.excluded or h.slow >= _MAX_SLOW_RESPONSES
            log.warning("gateway.slow", gateway=gw.url, detail=str(exc), excluded=h.excluded)

    async def _with_failover(
        self, cid: CID, provenance: Provenance, attempt: _Attempt, earlier: dict[str, str] | None = None
    ) -> bytes:
        """Run `attempt` on each usable gateway in turn until one yields the block.

        `earlier`: what went wrong before this round (an abandoned stream), kept in the error."""
        answers: dict[str, str] = dict(earlier or {})
        gateways = self.ranked()
        if not gateways:
            excluded = "; ".join(_named(h.url, h.last_error or "excluded") for h in self.health.values() if h.excluded)
            raise MissingBlock(str(cid), f"no gateway left to ask ({excluded})")
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
                    self.failure(gw, exc)
                    answers[gw.url] = str(exc)
                    if exc.retry_after is not None and exc.retry_after <= self.max_retry_after_s:
                        await asyncio.sleep(exc.retry_after)
                        continue
                    break
                except BlockedAtGateway as exc:
                    self.failure(gw, exc)
                    provenance.blocked_at[gw.url] = exc.status or 410
                    answers[gw.url] = str(exc)
                    break
                except UnsupportedHash:
                    raise
                except _AlreadyRecorded as exc:
                    answers[gw.url] = str(exc)
                    break
                except (GatewayError, CarError, BlockTooLarge, MissingBlock) as exc:
                    self.failure(gw, exc)
                    answers[gw.url] = str(exc)
                    break
                else:
                    self.health[gw.url].record(True)
                    provenance.served(gw.url)
                    return data
        if provenance.blocked_at and all(url in provenance.blocked_at or "404" in why for url, why in answers.items()):
            raise BlockedContent(str(cid), dict(provenance.blocked_at))
        detail = "; ".join(_named(url, why) for url, why in answers.items())
        raise MissingBlock(str(cid), detail)

    async def fetch_block(self, cid: CID, provenance: Provenance) -> bytes:
        async def attempt(gw: TrustlessGateway) -> bytes:
            return await gw.block(cid)

        check_cid(cid)  # nothing is asked for a CID that could never be verified
        return await self._with_failover(cid, provenance, attempt)

    async def open(self, cid: CID) -> tuple[bytes, _CarSession | PrefetchingSession]:
        check_cid(cid)
        session: _CarSession | PrefetchingSession
        session = (
            _CarSession(self, cid) if self.mode == "car" else PrefetchingSession(self.fetch_block, self.raw_prefetch)
        )
        return await open_session(session, cid)


def _named(url: str, why: str) -> str:
    return why if why.startswith(url) else f"{url}: {why}"


class _AlreadyRecorded(IpfsError):
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


class _CarSession:
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

    def _open_at(self, cid: CID, key: bytes) -> _Attempt:
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
                raise _AlreadyRecorded(why)
            raise MissingBlock(str(cid), f"{gw.url} sent a CAR without it")

        return attempt
