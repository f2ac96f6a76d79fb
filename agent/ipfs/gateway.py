"""Trustless gateway client: verified retrieval over HTTP, from a pool of gateways.

Spec: https://specs.ipfs.tech/http-gateways/trustless-gateway/ . Every block
is hashed before it is used. A gateway caught serving bytes that do not match
their CID is marked bad and never asked again by this pool; its bytes are
discarded. Whoever builds the pool may pass liars other pools caught
(`distrusted`): those are never asked either; the liars this pool catches are in `lies`.

The parts, by job: one gateway and the raw-block GET (agent.ipfs.trustless),
the time and throughput bounds of one response (agent.ipfs.meter), a walk over
CAR streams (agent.ipfs.car_session), and here the pool: failover and health.
The gateway's public names stay importable from this module."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

import structlog

from agent.ipfs.blocks import PrefetchingSession, Provenance, open_session
from agent.ipfs.car_session import AlreadyRecorded, Attempt, CarSession
from agent.ipfs.cid import CID, check_cid
from agent.ipfs.errors import (
    BlockedAtGateway,
    BlockedContent,
    BlockMismatch,
    BlockTooLarge,
    CarError,
    GatewayError,
    MissingBlock,
    NotFoundAtGateway,
    RateLimited,
    SlowGateway,
    UnsupportedHash,
)
from agent.ipfs.health import GatewayHealthBook
from agent.ipfs.trustless import TrustlessGateway
from agent.net.backoff import Backoff

__all__ = [
    "DistrustNote",
    "GatewayHealth",
    "GatewayPool",
    "Lie",
    "RetrievalMode",
]

log = structlog.get_logger(__name__)

RetrievalMode = Literal["car", "raw"]
# A gateway answering this many responses below the minimum throughput is not asked again in a pool.
_MAX_SLOW_RESPONSES = 2
# How long a rate-limited gateway is ranked last in this pool: its Retry-After
# (capped: the pool lives for one scan), else one second doubling with its failures.
_COOLDOWN = Backoff(base_s=1.0, cap_s=3600.0)


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
    rate_limits: int = 0  # 429s since the last success: the cooldown's exponent

    def record(self, ok: bool, error: str | None = None) -> None:
        if ok:
            self.successes += 1
            self.rate_limits = 0
        else:
            self.failures += 1
            self.last_error = error
        self.score = 0.8 * self.score + 0.2 * (1.0 if ok else 0.0)


@dataclass
class Lie:
    gateway: str
    cid: str


@dataclass(frozen=True)
class DistrustNote:
    """Why a pool never asks a gateway: `node` saw it serve a block not matching `cid`."""

    until: datetime
    cid: str
    node: str

    @property
    def text(self) -> str:
        until = self.until.isoformat()
        return f"distrusted until {until}: served a wrong block of {self.cid}, seen by node {self.node}"


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
    # The cooldown's random source (agent.net.backoff draws from it); tests may seed it.
    rng: random.Random = field(default_factory=random.Random)
    # Health kept across scans (agent.ipfs.health); None: this pool remembers only itself.
    book: GatewayHealthBook | None = None
    lies: list[Lie] = field(default_factory=list)
    # Liars other pools caught (by URL): never asked by this one, reported untrusted with the note.
    distrusted: Mapping[str, DistrustNote] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.gateways:
            raise ValueError("a gateway pool needs at least one gateway")
        for i, gw in enumerate(self.gateways):
            h = self.health.setdefault(gw.url, GatewayHealth(gw.url, i))
            if self.book is not None:
                self.book.seed(h)
            note = self.distrusted.get(gw.url)
            if note is not None:
                h.bad = h.excluded = True
                h.last_error = note.text

    def _remember(self, h: GatewayHealth) -> None:
        if self.book is not None:
            self.book.remember(h)

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
                "distrusted": note.text if (note := self.distrusted.get(h.url)) is not None else None,
            }
            for h in self.health.values()
        ]

    def mark_liar(self, url: str, cid: str) -> None:
        h = self.health[url]
        h.lies += 1
        h.bad = h.excluded = True
        h.record(False, f"served wrong bytes for {cid}")
        self._remember(h)
        self.lies.append(Lie(url, cid))
        log.warning("gateway.lied", gateway=url, cid=cid)

    def mark_flooder(self, url: str, detail: str) -> None:
        """A stream full of blocks nobody asked for is deliberate: the gateway is not asked again."""
        h = self.health[url]
        h.bad = h.excluded = True
        h.record(False, detail)
        self._remember(h)
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
            h.rate_limits += 1
            delay = _COOLDOWN.delay(h.rate_limits, self.rng, retry_after=exc.retry_after)
            h.cooldown_until = time.monotonic() + delay
        if isinstance(exc, SlowGateway) and exc.too_slow:
            h.slow += 1
            h.excluded = h.excluded or h.slow >= _MAX_SLOW_RESPONSES
            log.warning("gateway.slow", gateway=gw.url, detail=str(exc), excluded=h.excluded)
        self._remember(h)

    async def _with_failover(
        self, cid: CID, provenance: Provenance, attempt: Attempt, earlier: dict[str, str] | None = None
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
                except AlreadyRecorded as exc:
                    answers[gw.url] = str(exc)
                    break
                except (GatewayError, CarError, BlockTooLarge, MissingBlock) as exc:
                    self.failure(gw, exc)
                    answers[gw.url] = str(exc)
                    break
                else:
                    self.health[gw.url].record(True)
                    self._remember(self.health[gw.url])
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

    async def open(self, cid: CID) -> tuple[bytes, CarSession | PrefetchingSession]:
        check_cid(cid)
        session: CarSession | PrefetchingSession
        session = (
            CarSession(self, cid) if self.mode == "car" else PrefetchingSession(self.fetch_block, self.raw_prefetch)
        )
        return await open_session(session, cid)


def _named(url: str, why: str) -> str:
    return why if why.startswith(url) else f"{url}: {why}"
