"""IPNS resolution: a name to the CID it points at, believing only signed records.

Records are fetched from trustless gateways (`GET /ipns/<name>` with
`Accept: application/vnd.ipfs.ipns-record`, per
https://specs.ipfs.tech/http-gateways/trustless-gateway/) and verified here
(agent.sources.ipns_record); the gateway's word is never taken. Every gateway
is asked, because one honest-but-stale or dishonest gateway can serve an old,
validly signed record: the valid record with the highest sequence wins (then
the later EOL, then gateway order, as boxo orders records). A gateway whose
record fails verification is reported in `rejected` and its record ignored.

Values that point at another name are followed up to `max_depth` hops:
`/ipns/<key>` through the same gateways, `/ipns/<domain>` through DNSLink
(whose answer is DNS's word: no DNSSEC here).

`resolve_via_kubo` asks a Kubo node instead; that is the node's word, not a
verified record, and the result says so (`verified=False`).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

import aiohttp
import structlog

from agent.ipfs.cid import CID, cid_text, parse_cid
from agent.ipfs.errors import GatewayError
from agent.sources.dnslink import (
    DnslinkError,
    DnslinkMalformed,
    DnslinkResolution,
    normalise_domain,
    parse_content_path,
    resolve_dnslink,
)
from agent.sources.ipns_keys import InvalidName, InvalidValue, IpnsError, IpnsName, parse_ipns_name
from agent.sources.ipns_record import IPNS_RECORD_TYPE, MAX_RECORD_BYTES, IpnsRecord, verify_ipns_record

__all__ = [
    "IpnsChainError",
    "IpnsResolution",
    "IpnsResolutionError",
    "KuboResolveError",
    "Rejection",
    "fetch_ipns_record",
    "resolve_ipns",
    "resolve_via_kubo",
]

log = structlog.get_logger(__name__)

DnslinkResolver = Callable[[str], Awaitable[DnslinkResolution]]
_MAX_KUBO_RESPONSE = 64 * 1024


@dataclass(frozen=True)
class Rejection:
    """A gateway served a record for `name` that failed verification: it was not believed."""

    gateway: str
    name: str
    reason: str


@dataclass(frozen=True)
class IpnsResolution:
    name: str  # canonical name asked for: k51... (or the domain when one was given)
    value: str  # what that name's record (or DNSLink) says, e.g. '/ipns/k51.../a' or '/ipfs/bafy...'
    cid: CID  # where the chain ends
    path: str  # '' or '/a/b' below `cid`
    sequence: int | None  # of the first signed record in the chain (None for DNSLink or Kubo answers)
    gateway: str | None  # gateway that served that record (the RPC URL for Kubo)
    verified: bool = True  # every IPNS hop was a signed record checked here
    validity: datetime | None = None
    ttl_ns: int | None = None
    chain: tuple[str, ...] = ()  # every hop: '/ipns/k51...', '/ipns/example.org', ..., '/ipfs/<cid>/path'
    rejected: tuple[Rejection, ...] = ()


class IpnsResolutionError(IpnsError):
    """No gateway produced a valid record. `answers` says what each gateway did,
    `rejected` lists the records that failed verification."""

    def __init__(
        self, name: str, message: str, answers: dict[str, str] | None = None, rejected: tuple[Rejection, ...] = ()
    ) -> None:
        self.name = name
        self.answers = dict(answers or {})
        self.rejected = rejected
        detail = "; ".join(f"{gw}: {why}" for gw, why in self.answers.items())
        super().__init__(f"{name}: {message}" + (f" ({detail})" if detail else ""))


class IpnsChainError(IpnsResolutionError):
    """A chain of names loops or exceeds the depth limit."""


class KuboResolveError(IpnsError):
    """Kubo's name/resolve failed; `status` and Kubo's own `message`/`code` are kept."""

    def __init__(self, rpc_url: str, message: str, status: int | None = None, code: int | None = None) -> None:
        self.rpc_url = rpc_url
        self.status = status
        self.code = code
        self.message = message
        super().__init__(f"{rpc_url}: {message}")


async def fetch_ipns_record(
    gateway: str,
    name: IpnsName,
    session: aiohttp.ClientSession,
    *,
    max_record_bytes: int = MAX_RECORD_BYTES,
    timeout_s: float = 30.0,
) -> bytes:
    """The raw record a gateway serves for `name` (unverified: pass it to verify_ipns_record)."""
    url = gateway.rstrip("/")
    try:
        async with session.get(
            f"{url}/ipns/{name.text}",
            params={"format": "ipns-record"},
            headers={"Accept": IPNS_RECORD_TYPE},
            allow_redirects=False,
            timeout=aiohttp.ClientTimeout(total=timeout_s),
        ) as resp:
            if resp.status != 200:
                raise GatewayError(url, f"HTTP {resp.status} {resp.reason or ''}".strip(), resp.status)
            got = resp.headers.get("Content-Type", "").split(";")[0].strip().lower()
            if got != IPNS_RECORD_TYPE:
                raise GatewayError(url, f"answered {got or 'no Content-Type'}, not {IPNS_RECORD_TYPE}")
            declared = resp.content_length
            if declared is not None and declared > max_record_bytes:
                raise GatewayError(url, f"offers a {declared}-byte record; limit {max_record_bytes}")
            # Read one byte past the limit so an oversized record is seen as such, not truncated.
            body = await resp.content.read(max_record_bytes + 1)
            if len(body) > max_record_bytes:
                raise GatewayError(url, f"sent a record over {max_record_bytes} bytes")
            return body
    except (TimeoutError, aiohttp.ClientError) as exc:
        raise GatewayError(url, f"{type(exc).__name__}: {exc}".rstrip(": ")) from exc


def _canonical_name(name: str) -> str:
    """k51... for a key name (any accepted spelling), the normalised domain for a DNSLink name."""
    text = name.strip().removeprefix("ipns://").removeprefix("/ipns/").rstrip("/")
    if "." not in text:
        return parse_ipns_name(text).text
    try:
        return normalise_domain(text)
    except DnslinkMalformed as exc:
        raise InvalidName(f"{name!r} is neither an IPNS key nor a valid domain: {exc}") from None


@dataclass(frozen=True)
class _Found:
    record: IpnsRecord
    gateway: str


async def _best_record(
    name: IpnsName,
    gateways: Sequence[str],
    session: aiohttp.ClientSession,
    now: datetime | None,
    max_record_bytes: int,
    timeout_s: float,
    min_sequence: int | None,
) -> tuple[_Found, list[Rejection]]:
    async def ask(gw: str) -> bytes:
        return await fetch_ipns_record(gw, name, session, max_record_bytes=max_record_bytes, timeout_s=timeout_s)

    results = await asyncio.gather(*(ask(gw) for gw in gateways), return_exceptions=True)
    answers: dict[str, str] = {}
    rejected: list[Rejection] = []
    found: list[tuple[int, _Found]] = []
    for order, (gw, result) in enumerate(zip(gateways, results, strict=True)):
        if isinstance(result, GatewayError):
            answers[gw] = str(result.args[0]).removeprefix(f"{gw.rstrip('/')}: ")
            continue
        if isinstance(result, BaseException):
            raise result  # a bug or a cancellation, not a gateway's answer
        try:
            record = verify_ipns_record(name, result, now=now, max_record_bytes=max_record_bytes)
        except IpnsError as exc:
            why = f"{type(exc).__name__}: {exc}"
            rejected.append(Rejection(gw, name.text, why))
            answers[gw] = f"record rejected: {why}"
            log.warning("ipns_record_rejected", gateway=gw, name=name.text, reason=why)
            continue
        if min_sequence is not None and record.sequence < min_sequence:
            # A validly signed but older record: a stale cache or a replay; not believed either way.
            answers[gw] = f"stale record: sequence {record.sequence} < {min_sequence} already seen"
            continue
        answers[gw] = f"valid record, sequence {record.sequence}"
        found.append((order, _Found(record, gw)))
    if not found:
        raise IpnsResolutionError(name.text, "no gateway served a valid record", answers, tuple(rejected))
    _, best = max(found, key=lambda item: (item[1].record.sequence, item[1].record.validity, -item[0]))
    return best, rejected


async def resolve_ipns(
    name: str,
    gateways: Sequence[str],
    session: aiohttp.ClientSession,
    *,
    now: datetime | None = None,
    max_record_bytes: int = MAX_RECORD_BYTES,
    max_depth: int = 8,
    timeout_s: float = 30.0,
    min_sequence: int | None = None,
    dnslink: DnslinkResolver | None = None,
) -> IpnsResolution:
    """Resolve an IPNS name (k51..., bafz..., 12D3KooW..., Qm..., or a DNSLink domain) to a CID and path.

    `now` is the time record EOLs are checked against (real time when None).
    `min_sequence` refuses records older than one already seen for the first
    name. `dnslink` resolves domains met on the way (system DNS by default)."""
    if not gateways:
        raise ValueError("at least one gateway is needed")
    resolve_domain: DnslinkResolver = dnslink or resolve_dnslink
    first = _canonical_name(name)
    hops: list[str] = []
    rejected: list[Rejection] = []
    current, carried = first, ""
    head: tuple[str, _Found | None] | None = None  # (value, record) of the first hop
    while True:
        hop = f"/ipns/{current}"
        if hop in hops:
            raise IpnsChainError(first, "name chain loops: " + " -> ".join([*hops, hop]), rejected=tuple(rejected))
        if len(hops) >= max_depth:
            raise IpnsChainError(
                first, f"name chain longer than {max_depth}: " + " -> ".join(hops), rejected=tuple(rejected)
            )
        hops.append(hop)
        if "." in current:
            try:
                link = await resolve_domain(current)
            except DnslinkError as exc:
                raise IpnsResolutionError(
                    first, f"DNSLink of {current} failed: {exc}", rejected=tuple(rejected)
                ) from exc
            value, path = link.value, link.path + carried
            hops.extend(f"/ipns/{d}" for d in link.chain[1:])  # domains DNSLink followed by itself
            if head is None:
                head = (value, None)
            if link.cid is not None:
                return _result(first, head, link.cid, path, hops, rejected)
            if link.ipns_name is None:  # resolve_dnslink ends every chain at a CID or a name
                raise IpnsChainError(current, f"DNSLink {link.value!r} names neither a CID nor an IPNS name")
            current, carried = link.ipns_name, path
            continue
        found, bad = await _best_record(
            parse_ipns_name(current),
            gateways,
            session,
            now,
            max_record_bytes,
            timeout_s,
            min_sequence if head is None else None,
        )
        rejected.extend(bad)
        if head is None:
            head = (found.record.value, found)
        try:
            namespace, identifier, path = parse_content_path(found.record.value, current)
        except DnslinkMalformed as exc:
            raise InvalidValue(f"{current}: signed value {found.record.value[:120]!r} is unusable: {exc}") from None
        path += carried
        if namespace == "ipfs":
            return _result(first, head, parse_cid(identifier), path, hops, rejected)
        current, carried = identifier, path


def _result(
    name: str, head: tuple[str, _Found | None], cid: CID, path: str, hops: list[str], rejected: list[Rejection]
) -> IpnsResolution:
    value, found = head
    record = found.record if found is not None else None
    return IpnsResolution(
        name=name,
        value=value,
        cid=cid,
        path=path,
        sequence=record.sequence if record else None,
        gateway=found.gateway if found else None,
        verified=True,
        validity=record.validity if record else None,
        ttl_ns=record.ttl_ns if record else None,
        chain=(*hops, f"/ipfs/{cid_text(cid)}{path}"),
        rejected=tuple(rejected),
    )


async def resolve_via_kubo(
    name: str, rpc_url: str, session: aiohttp.ClientSession, *, timeout_s: float = 60.0
) -> IpnsResolution:
    """Ask a Kubo node (`POST /api/v0/name/resolve?arg=<name>&recursive=true`).

    Less trustworthy than resolve_ipns: the node's answer is taken as given, no
    record is seen or verified here, so the result has `verified=False`."""
    canonical = _canonical_name(name)
    url = rpc_url.rstrip("/")
    try:
        async with session.post(
            f"{url}/api/v0/name/resolve",
            params={"arg": f"/ipns/{canonical}", "recursive": "true"},
            allow_redirects=False,
            timeout=aiohttp.ClientTimeout(total=timeout_s),
        ) as resp:
            body = await resp.content.read(_MAX_KUBO_RESPONSE + 1)
            status = resp.status
    except (TimeoutError, aiohttp.ClientError) as exc:
        raise KuboResolveError(url, f"{type(exc).__name__}: {exc}".rstrip(": ")) from exc
    if len(body) > _MAX_KUBO_RESPONSE:
        raise KuboResolveError(url, f"response over {_MAX_KUBO_RESPONSE} bytes", status)
    try:
        doc = json.loads(body) if body else None
    except ValueError:
        doc = None
    if status != 200:
        # Kubo's error body: {"Message": ..., "Code": ..., "Type": "error"} with HTTP 500.
        if isinstance(doc, dict) and isinstance(doc.get("Message"), str):
            code = doc.get("Code")
            raise KuboResolveError(
                url, f"name/resolve {canonical}: {doc['Message']}", status, code if isinstance(code, int) else None
            )
        raise KuboResolveError(url, f"name/resolve {canonical}: HTTP {status}", status)
    if not isinstance(doc, dict) or not isinstance(doc.get("Path"), str):
        raise KuboResolveError(url, f"name/resolve {canonical}: answer has no Path", status)
    value: str = doc["Path"]
    try:
        namespace, identifier, path = parse_content_path(value, canonical)
    except (DnslinkMalformed, InvalidName) as exc:
        raise KuboResolveError(url, f"name/resolve {canonical}: unusable Path {value[:120]!r}: {exc}", status) from None
    if namespace != "ipfs":
        raise KuboResolveError(url, f"name/resolve {canonical}: recursive resolution ended at {value[:120]!r}", status)
    cid = parse_cid(identifier)
    return IpnsResolution(
        name=canonical,
        value=value,
        cid=cid,
        path=path,
        sequence=None,
        gateway=url,
        verified=False,
        chain=(f"/ipns/{canonical}", f"/ipfs/{cid_text(cid)}{path}"),
    )
