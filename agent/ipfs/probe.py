"""Is reported content still reachable? Evidence for takedown tracking (the content probe).

After a match was alerted, the agent keeps asking whether the content can
still be fetched. Two kinds of evidence are combined:

* trustless gateways (https://specs.ipfs.tech/http-gateways/trustless-gateway/):
  `GET /ipfs/{cid}?format=raw` for the root block only — one block is enough to
  show a gateway still serves the content, and it is cheap for both sides;
* Delegated Routing V1 (https://specs.ipfs.tech/routing/http-routing-v1/):
  `GET /routing/v1/providers/{cid}` — whether any peer still announces it.

The verdict is deliberately asymmetric. "available" needs one positive answer;
"unavailable" needs every source to answer negatively (404, 410, 451, zero
providers). Anything else is "unknown", on which the caller records no change:
an outage of our own network, a flaky gateway or a broken router must never
look like a takedown, because a takedown report goes to people who act on it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

import aiohttp

from agent.ipfs.cid import CID, parse_cid
from agent.ipfs.errors import (
    BlockedAtGateway,
    BlockMismatch,
    BlockTooLarge,
    GatewayError,
    NotFoundAtGateway,
    RateLimited,
    SlowGateway,
    UnsupportedHash,
)
from agent.ipfs.meter import ResponseMeter
from agent.ipfs.trustless import get_raw_block

__all__ = ["Availability", "AvailabilityState", "ContentProbe", "GatewayAnswer", "Verdict", "decide"]

AvailabilityState = Literal["available", "unavailable", "unknown"]
Verdict = Literal["available", "not_found", "blocked", "error"]

# The largest block a trustless gateway or bitswap will move; a root block is
# read whole up to this size so that it can be hashed.
MAX_BLOCK_BYTES = 2 * 1024 * 1024
# A spec-conforming JSON provider answer holds at most 100 records of a few
# hundred bytes; 1 MiB is generous and still bounds a hostile router.
MAX_ROUTING_JSON_BYTES = 1024 * 1024
# Streaming (ndjson) answers may be long: stop counting here. The count is then
# a lower bound, which is all the decision needs (it only asks "more than 0?").
MAX_STREAMED_PROVIDERS = 1000
MAX_NDJSON_LINE_BYTES = 64 * 1024
_READ_CHUNK = 64 * 1024


@dataclass(frozen=True, slots=True)
class GatewayAnswer:
    """What one gateway said. `status` is None when no HTTP answer came back."""

    status: int | None
    verdict: Verdict
    detail: str


@dataclass(frozen=True, slots=True)
class Availability:
    state: AvailabilityState
    gateways: Mapping[str, GatewayAnswer]
    # None: no routing configured, or the router gave no usable answer.
    providers: int | None
    checked_at: datetime
    # One line a reviewer can read: "410 at http://gw1; 404 at http://gw2; 0 providers".
    reason: str


class ContentProbe:
    """Checks one CID against a fixed set of gateways and, optionally, a delegated router."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        gateways: Sequence[str],
        *,
        routing_url: str | None = None,
        timeout_s: float = 15.0,
        stream_providers: bool = False,
    ) -> None:
        if not gateways and routing_url is None:
            # With no source at all, "every source said no" would be vacuously true.
            raise ValueError("a content probe needs at least one gateway or a routing URL")
        if isinstance(gateways, str):
            raise TypeError("gateways is a sequence of URLs, not one URL")
        self._session = session
        # dict.fromkeys: keep order, drop duplicates (one gateway must not vote twice).
        self.gateways: tuple[str, ...] = tuple(dict.fromkeys(g.rstrip("/") for g in gateways))
        self.routing_url = routing_url.rstrip("/") if routing_url is not None else None
        # A total deadline per request: a gateway that trickles bytes forever is an error, not a hang.
        self._timeout_s = timeout_s
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        # Ask for ndjson only when told to: the spec makes plain JSON the default,
        # and a server MUST NOT stream unless asked. Either answer is understood.
        self._routing_accept = (
            "application/x-ndjson, application/json;q=0.9" if stream_providers else "application/json"
        )

    async def check(self, cid: str) -> Availability:
        """Probe every source concurrently and combine the answers.

        An invalid CID raises agent.ipfs.errors.InvalidCid: that is a data
        error of the caller's, not a statement about the network."""
        parsed = parse_cid(cid)
        gateway_tasks = [self._probe_gateway(gw, parsed) for gw in self.gateways]
        routing_task = self._count_providers(parsed) if self.routing_url is not None else _no_routing()
        answers, (providers, routing_detail) = await asyncio.gather(asyncio.gather(*gateway_tasks), routing_task)
        by_gateway = dict(zip(self.gateways, answers, strict=True))
        state = decide(by_gateway, providers, routing_configured=self.routing_url is not None)
        return Availability(
            state=state,
            gateways=by_gateway,
            providers=providers,
            checked_at=datetime.now(UTC),
            reason=_reason(by_gateway, routing_detail),
        )

    # -- gateways --

    async def _probe_gateway(self, gateway: str, cid: CID) -> GatewayAnswer:
        # The same GET as a scan's (agent.ipfs.trustless.get_raw_block); only the
        # wording of the answers is the probe's own.
        meter = ResponseMeter(gateway, deadline_s=self._timeout_s, min_bytes_per_s=0, grace_s=0)
        try:
            data = await get_raw_block(
                self._session, gateway, cid, max_block_bytes=MAX_BLOCK_BYTES, client_timeout=self._timeout, meter=meter
            )
        except NotFoundAtGateway:
            return GatewayAnswer(404, "not_found", "404 Not Found")
        except BlockedAtGateway as exc:
            # The operator refuses this content (denylist, legal order): a takedown answer.
            return GatewayAnswer(exc.status, "blocked", exc.detail)
        except RateLimited as exc:
            return GatewayAnswer(429, "error", f"HTTP 429 Too Many Requests, Retry-After {exc.retry_after}")
        except SlowGateway:
            return GatewayAnswer(None, "error", f"no answer within {self._timeout_s:g} s")
        except GatewayError as exc:
            detail = exc.detail
            if exc.location is not None:
                detail += f", redirect to {exc.location} not followed"
            return GatewayAnswer(exc.status, "error", detail)
        except BlockTooLarge as exc:
            return GatewayAnswer(200, "error", str(exc))
        except BlockMismatch:
            return GatewayAnswer(200, "error", "served bytes that do not match the CID")
        except UnsupportedHash as exc:
            # Unverifiable bytes prove nothing; stay on the side of "unknown".
            return GatewayAnswer(200, "error", str(exc))
        except TimeoutError:
            return GatewayAnswer(None, "error", f"no answer within {self._timeout_s:g} s")
        except aiohttp.ClientError as exc:
            return GatewayAnswer(None, "error", _describe(exc))
        return GatewayAnswer(200, "available", f"200, root block verified ({len(data)} bytes)")

    # -- delegated routing --

    async def _count_providers(self, cid: CID) -> tuple[int | None, str]:
        """(provider count or None, text for the reason line)."""
        # The spec encodes CIDs in paths as CIDv1; a v0 root is the same dag-pb block.
        v1 = cid if cid.version == 1 else cid.set(version=1)
        url = f"{self.routing_url}/routing/v1/providers/{v1.encode('base32')}"
        try:
            async with self._session.get(
                url, headers={"Accept": self._routing_accept}, allow_redirects=False, timeout=self._timeout
            ) as resp:
                if resp.status == 404:
                    # The spec: 404 "must be returned if no matching records are found".
                    return 0, "0 providers"
                if resp.status != 200:
                    return None, f"routing HTTP {resp.status} {resp.reason or ''}".strip()
                kind = resp.headers.get("Content-Type", "").split(";")[0].strip().lower()
                if kind == "application/x-ndjson":
                    count = await _count_ndjson(resp)
                elif kind == "application/json":
                    count = await _count_json(resp)
                else:
                    return None, f"routing answered {kind or 'no Content-Type'}"
        except TimeoutError:
            return None, f"routing: no answer within {self._timeout.total:g} s"
        except aiohttp.ClientError as exc:
            return None, f"routing: {_describe(exc)}"
        if count is None:
            return None, "routing answer malformed"
        if count >= MAX_STREAMED_PROVIDERS:
            return count, f"{count}+ providers"
        return count, f"{count} provider{'' if count == 1 else 's'}"


def decide(
    gateways: Mapping[str, GatewayAnswer], providers: int | None, *, routing_configured: bool
) -> AvailabilityState:
    """The decision table (see the module docstring for why it is asymmetric)."""
    if any(a.verdict == "available" for a in gateways.values()) or (providers or 0) > 0:
        return "available"
    every_gateway_said_no = all(a.verdict in ("not_found", "blocked") for a in gateways.values())
    routing_said_no = not routing_configured or providers == 0
    if every_gateway_said_no and routing_said_no:
        return "unavailable"
    return "unknown"


async def _no_routing() -> tuple[int | None, str]:
    return None, ""


def _reason(gateways: Mapping[str, GatewayAnswer], routing_detail: str) -> str:
    parts: list[str] = []
    for url, answer in gateways.items():
        if answer.verdict in ("not_found", "blocked"):
            parts.append(f"{answer.status} at {url}")
        elif answer.verdict == "available":
            parts.append(f"served at {url}")
        else:
            parts.append(f"error at {url} ({answer.detail})")
    if routing_detail:
        parts.append(routing_detail)
    return "; ".join(parts)


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


async def _read_bounded(resp: aiohttp.ClientResponse, limit: int) -> bytes | None:
    """The body, or None (and the connection closed) once it exceeds `limit`."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in resp.content.iter_chunked(_READ_CHUNK):
        size += len(chunk)
        if size > limit:
            resp.close()  # do not drain an oversized body just to reuse the connection
            return None
        chunks.append(chunk)
    return b"".join(chunks)


async def _count_json(resp: aiohttp.ClientResponse) -> int | None:
    body = await _read_bounded(resp, MAX_ROUTING_JSON_BYTES)
    if body is None:
        return None
    try:
        doc = json.loads(body)
    except ValueError:
        return None
    if not isinstance(doc, dict):
        return None
    records = doc.get("Providers")
    if records is None:
        return 0  # Go routers serialise an empty result as {"Providers": null}
    if not isinstance(records, list):
        return None
    return _distinct(records)


async def _count_ndjson(resp: aiohttp.ClientResponse) -> int | None:
    records: list[object] = []
    while len(records) < MAX_STREAMED_PROVIDERS:
        try:
            line = await resp.content.readuntil(b"\n", max_size=MAX_NDJSON_LINE_BYTES)
        except ValueError:
            # An over-long line: a hostile or broken stream, not a provider record.
            resp.close()
            return None
        if not line:
            break
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except ValueError:
            resp.close()
            return None
    else:
        resp.close()  # enough to know; the rest of a long stream is not worth waiting for
    return _distinct(records)


def _distinct(records: Sequence[object]) -> int:
    """Provider records that are objects, one per peer ID (routers may repeat a peer per transport)."""
    seen: set[str] = set()
    anonymous = 0
    for record in records:
        if not isinstance(record, dict):
            continue
        peer = record.get("ID")
        if isinstance(peer, str) and peer:
            seen.add(peer)
        else:
            anonymous += 1
    return len(seen) + anonymous
