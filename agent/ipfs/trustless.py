"""One trustless gateway: raw blocks and CAR streams, each block verified.

Spec: https://specs.ipfs.tech/http-gateways/trustless-gateway/ . Only
`application/vnd.ipld.raw` and `application/vnd.ipld.car` responses are
accepted, and every block is hashed before it is used.

`get_raw_block` is the agent's one raw-block GET: the scan's gateways
(`TrustlessGateway.block`) and the takedown probe (agent.ipfs.probe) both ask
through it, so both apply the same status, type, size and hash rules."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Literal

import aiohttp

from agent.ipfs.car import Block, CarReader
from agent.ipfs.cid import CID, cid_text
from agent.ipfs.errors import (
    BlockedAtGateway,
    BlockTooLarge,
    GatewayError,
    NotFoundAtGateway,
    RateLimited,
)
from agent.ipfs.meter import MeteredStream, ResponseMeter
from agent.ipfs.multihash import verify_block
from agent.net.retry_after import parse_retry_after

__all__ = [
    "CAR_ACCEPT",
    "RAW_ACCEPT",
    "CarResponse",
    "Scope",
    "TrustlessGateway",
    "check_status",
    "get_raw_block",
]

CAR_ACCEPT = "application/vnd.ipld.car; version=1; order=dfs; dups=y"
RAW_ACCEPT = "application/vnd.ipld.raw"
Scope = Literal["block", "entity", "all"]
_READ_CHUNK = 1 << 16


def _request(
    session: aiohttp.ClientSession,
    base_url: str,
    cid: CID,
    fmt: str,
    accept: str,
    meter: ResponseMeter,
    timeout: aiohttp.ClientTimeout,
    scope: Scope | None = None,
) -> Awaitable[aiohttp.ClientResponse]:
    params = {"format": fmt} if scope is None else {"format": fmt, "dag-scope": scope}
    # The canonical spelling (base32 v1, base58btc v0): strict gateways refuse base36 and others.
    return meter.wait(
        session.get(
            f"{base_url}/ipfs/{cid_text(cid)}",
            params=params,
            headers={"Accept": accept},
            # A redirect could lead anywhere (another gateway, a login page):
            # its target is not the gateway that was asked.
            allow_redirects=False,
            timeout=timeout,
        ),
        body=False,
    )


def check_status(base_url: str, resp: aiohttp.ClientResponse) -> None:
    """Raise the GatewayError a non-200 answer means."""
    if resp.status == 200:
        return
    if resp.status == 404:
        raise NotFoundAtGateway(base_url, "404 Not Found", 404)
    if resp.status in (410, 451):
        raise BlockedAtGateway(base_url, f"{resp.status} {resp.reason or ''}".strip(), resp.status)
    if resp.status == 429:
        raise RateLimited(base_url, parse_retry_after(resp.headers.get("Retry-After")))
    location = resp.headers.get("Location", "?") if 300 <= resp.status < 400 else None
    raise GatewayError(base_url, f"HTTP {resp.status} {resp.reason or ''}".strip(), resp.status, location=location)


def _check_type(base_url: str, resp: aiohttp.ClientResponse, want: str) -> None:
    got = resp.headers.get("Content-Type", "").split(";")[0].strip().lower()
    if got != want:
        raise GatewayError(
            base_url, f"answered {got or 'no Content-Type'}, not {want}: not a trustless gateway response", resp.status
        )


async def get_raw_block(
    session: aiohttp.ClientSession,
    base_url: str,
    cid: CID,
    *,
    max_block_bytes: int,
    client_timeout: aiohttp.ClientTimeout,
    meter: ResponseMeter,
) -> bytes:
    """`GET {base_url}/ipfs/{cid}?format=raw`, the whole block, verified against `cid`.

    Raises a GatewayError (NotFoundAtGateway, BlockedAtGateway, RateLimited,
    SlowGateway from the meter, or a status / type refusal), BlockTooLarge,
    BlockMismatch or UnsupportedHash. aiohttp's own errors (TimeoutError,
    ClientError) pass through: callers word them differently. The whole block
    is read (bounded by the largest valid block), never a prefix: only the
    whole block can be hashed, and a decoy with the right headers proves nothing."""
    async with await _request(session, base_url, cid, "raw", RAW_ACCEPT, meter, client_timeout) as resp:
        check_status(base_url, resp)
        _check_type(base_url, resp, RAW_ACCEPT)
        declared = resp.content_length
        if declared is not None and declared > max_block_bytes:
            raise BlockTooLarge(f"{base_url} offers {declared} bytes for block {cid}; limit {max_block_bytes}")
        chunks: list[bytes] = []
        size = 0
        while True:
            chunk = await meter.wait(resp.content.read(_READ_CHUNK))
            if not chunk:
                break
            meter.add(len(chunk))
            size += len(chunk)
            if size > max_block_bytes:
                # Leaving the block without draining: aiohttp then drops the connection.
                raise BlockTooLarge(f"{base_url} sent over {max_block_bytes} bytes for block {cid}")
            chunks.append(chunk)
    data = b"".join(chunks)
    verify_block(cid, data, base_url)
    return data


@dataclass
class CarResponse:
    """An open CAR response: its verified blocks, and whether it sends duplicates (dups=y)."""

    blocks: AsyncIterator[Block]
    dups: bool
    meter: ResponseMeter


def _wrapped(url: str, exc: BaseException, prefix: str = "") -> GatewayError:
    return GatewayError(url, f"{prefix}{type(exc).__name__}: {exc}".rstrip(": "))


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

    def __repr__(self) -> str:
        return f"TrustlessGateway({self.url!r})"

    async def block(self, cid: CID) -> bytes:
        """One raw block, verified against `cid`."""
        try:
            return await get_raw_block(
                self._session,
                self.url,
                cid,
                max_block_bytes=self._max_block,
                client_timeout=self._timeout,
                meter=self._meter(),
            )
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise _wrapped(self.url, exc) from exc

    @asynccontextmanager
    async def car(self, cid: CID, scope: Scope = "entity") -> AsyncIterator[CarResponse]:
        """A CAR response as an iterator of verified blocks; the response is closed on exit."""
        meter = self._meter()
        try:
            resp = await _request(self._session, self.url, cid, "car", CAR_ACCEPT, meter, self._timeout, scope)
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise _wrapped(self.url, exc) from exc
        try:
            check_status(self.url, resp)
            _check_type(self.url, resp, "application/vnd.ipld.car")
            params = {p.strip().lower() for p in resp.headers.get("Content-Type", "").split(";")[1:]}
            reader = CarReader(MeteredStream(resp.content, meter), max_block_bytes=self._max_block, source=self.url)
            yield CarResponse(self._blocks(reader), dups="dups=n" not in params, meter=meter)
        finally:
            resp.close()

    async def _blocks(self, reader: CarReader) -> AsyncIterator[Block]:
        try:
            async for block in reader:
                yield block
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise _wrapped(self.url, exc, "CAR stream broke: ") from exc
