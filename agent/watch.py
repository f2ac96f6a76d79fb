"""Watch targets: what each kind of target is, and how one poll of it runs.

A poll turns a target into roots or items (agent.sources), scans only what was
never examined (the store answers `known`), and returns the state to keep for
the next poll (last root, cursors, pins done)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any
from urllib.parse import parse_qsl, urlsplit, urlunsplit

import aiohttp
import structlog

from agent.config import Settings
from agent.ipfs.cid import parse_cid
from agent.ipfs.errors import InvalidCid
from agent.model.report import ItemSource, ItemStatus, ScanReport
from agent.model.signals import ItemSignals
from agent.model.status import ItemState
from agent.pipeline import Scanner, item_examined
from agent.targets import TargetError, parse_target
from agent.targets import TargetKind as ScanTargetKind

log = structlog.get_logger(__name__)

_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$", re.IGNORECASE)


class WatchKind(StrEnum):
    IPFS = "ipfs"
    IPNS = "ipns"
    DNSLINK = "dnslink"
    KUBO = "kubo"
    ARWEAVE = "arweave"


@dataclass(frozen=True)
class WatchTarget:
    kind: WatchKind
    url: str  # normalised: the same target always has the same url
    name: str = ""  # ipns key, dnslink domain, kubo/arweave endpoint
    path: str = ""
    tags: dict[str, list[str]] = field(default_factory=dict)
    min_height: int | None = None


def _is_ipns_key(text: str) -> bool:
    try:
        parse_cid(text)
        return True
    except InvalidCid:
        return bool(re.fullmatch(r"(12D3KooW|Qm)[1-9A-HJ-NP-Za-km-z]{40,60}", text))


def classify_target(text: str) -> WatchTarget:
    """Parse a watch target URL; raises TargetError with the reason when it is none."""
    raw = text.strip()
    if raw.startswith(("kubo://",)) or re.match(r"^https?://[^/]+/api/v0/?$", raw):
        url = urlsplit(raw if "://" in raw else f"kubo://{raw}")
        base = f"http://{url.netloc}" if url.scheme == "kubo" else f"{url.scheme}://{url.netloc}"
        return WatchTarget(WatchKind.KUBO, f"kubo://{url.netloc}" if url.scheme == "kubo" else base, name=base)
    if raw.startswith(("arweave+http://", "arweave+https://")):
        url = urlsplit(raw[len("arweave+") :])
        tags: dict[str, list[str]] = {}
        min_height: int | None = None
        for key, value in parse_qsl(url.query, keep_blank_values=False):
            if key == "min_height":
                min_height = int(value)
            else:
                tags.setdefault(key, []).extend(v for v in value.split(",") if v)
        if not tags:
            raise TargetError(f"{raw}: an Arweave target needs at least one tag filter (?Content-Type=image/png)")
        gateway = urlunsplit((url.scheme, url.netloc, "", "", ""))
        graphql = url.path or "/graphql"
        query = "&".join(f"{k}={','.join(sorted(v))}" for k, v in sorted(tags.items()))
        if min_height is not None:
            query += f"&min_height={min_height}"
        return WatchTarget(
            WatchKind.ARWEAVE,
            f"arweave+{gateway}{graphql}?{query}",
            name=gateway,
            path=graphql,
            tags={k: sorted(v) for k, v in tags.items()},
            min_height=min_height,
        )
    for prefix in ("ipns://", "/ipns/", "dnslink://"):
        if raw.startswith(prefix):
            name, _, path = raw[len(prefix) :].partition("/")
            path = path.strip("/")
            if prefix != "dnslink://" and _is_ipns_key(name):
                return WatchTarget(
                    WatchKind.IPNS, f"ipns://{name}" + (f"/{path}" if path else ""), name=name, path=path
                )
            domain = name.lower().rstrip(".")
            if not _DOMAIN.match(domain):
                raise TargetError(f"{raw}: {name!r} is neither an IPNS key nor a DNS name")
            return WatchTarget(
                WatchKind.DNSLINK, f"dnslink://{domain}" + (f"/{path}" if path else ""), name=domain, path=path
            )
    target = parse_target(raw)
    if target.kind != ScanTargetKind.IPFS or target.cid is None:
        raise TargetError(f"{raw}: local files are scanned with `dweb-agent scan`, not watched")
    path = "/".join(target.path)
    return WatchTarget(WatchKind.IPFS, f"ipfs://{target.cid}" + (f"/{path}" if path else ""), path=path)


@dataclass
class PollOutcome:
    state: dict[str, Any]
    summary: dict[str, Any] = field(default_factory=dict)
    reports: list[ScanReport] = field(default_factory=list)
    note: str = ""

    @property
    def failed(self) -> str | None:
        """Why this poll must count as a failure (scan-level errors), or None."""
        errors = [e for r in self.reports for e in r.errors]
        return "; ".join(errors) if errors else None


def examined(status: ItemState | ItemStatus, signals: ItemSignals) -> bool:
    """Whether a stored item needs no further fetch (a directory remembered as examined
    included): see agent.pipeline.item_examined."""
    return item_examined(status, signals)


def _complete(report: ScanReport) -> bool:
    """A root is done when every item was examined (blocked and denylisted count as examined)."""
    return not report.errors and all(
        examined(i.status, i.signals)
        or i.status == ItemStatus.BLOCKED
        or (i.status == ItemStatus.SKIPPED and i.findings)
        for i in report.items
    )


@dataclass
class PollContext:
    settings: Settings
    http: aiohttp.ClientSession
    # A Scanner for this target: its store hooks and the lists current when called.
    new_scanner: Callable[[], Scanner]


async def _scan_root(ctx: PollContext, root: str, path: str, state: dict[str, Any], outcome: PollOutcome) -> None:
    """Scan `root` unless it is the root completed last time; the store makes it incremental."""
    if state.get("root") == root and state.get("complete"):
        outcome.note = f"unchanged: {root}"
        return
    report = await ctx.new_scanner().scan(f"ipfs://{root}" + (f"/{path}" if path else ""))
    outcome.reports.append(report)
    state.update(root=root, complete=_complete(report))
    outcome.note = f"scanned {root}: {report.summary()}"


async def poll(ctx: PollContext, target: WatchTarget, state: dict[str, Any]) -> PollOutcome:
    state = dict(state)
    outcome = PollOutcome(state)
    if target.kind == WatchKind.IPFS:
        await _scan_root(ctx, target.url[len("ipfs://") :].split("/", 1)[0], target.path, state, outcome)
    elif target.kind == WatchKind.IPNS:
        from agent.sources.ipns import resolve_ipns

        resolution = await resolve_ipns(target.name, ctx.settings.gateways.urls, ctx.http)
        state["sequence"] = resolution.sequence
        path = "/".join(p for p in (resolution.path.strip("/"), target.path) if p)
        await _scan_root(ctx, str(resolution.cid), path, state, outcome)
    elif target.kind == WatchKind.DNSLINK:
        from agent.sources.dnslink import resolve_dnslink
        from agent.sources.ipns import resolve_ipns

        d = ctx.settings.dnslink
        link = await resolve_dnslink(target.name, nameservers=d.nameservers or None, port=d.port, timeout=d.timeout_s)
        state["dnslink"] = link.value
        root: Any = link.cid
        path = link.path.strip("/")
        if root is None and link.ipns_name:
            resolution = await resolve_ipns(link.ipns_name, ctx.settings.gateways.urls, ctx.http)
            root, path = resolution.cid, "/".join(p for p in (resolution.path.strip("/"), path) if p)
        if root is None:
            raise TargetError(f"{target.name}: dnslink {link.value!r} names no content")
        path = "/".join(p for p in (path, target.path) if p)
        await _scan_root(ctx, str(root), path, state, outcome)
    elif target.kind == WatchKind.KUBO:
        await _poll_kubo(ctx, target, state, outcome)
    elif target.kind == WatchKind.ARWEAVE:
        await _poll_arweave(ctx, target, state, outcome)
    outcome.state = state
    return outcome


async def _poll_kubo(ctx: PollContext, target: WatchTarget, state: dict[str, Any], outcome: PollOutcome) -> None:
    from agent.sources.kubo import KuboBlockSource, KuboClient

    rpc = KuboClient(target.name, ctx.http)
    pins = await rpc.pin_ls()
    done = set(state.get("pins_done", []))
    new = sorted(cid for cid in pins if cid not in done)
    for pin in new:
        report = await ctx.new_scanner().scan_source(KuboBlockSource(rpc), parse_cid(pin), f"{target.url}/pin/{pin}")
        outcome.reports.append(report)
        if _complete(report):
            done.add(pin)
    state["pins_done"] = sorted(done & set(pins))  # forget unpinned ones: re-pinning scans again (cheaply)
    outcome.note = f"{len(pins)} pins, {len(new)} new"


async def _poll_arweave(ctx: PollContext, target: WatchTarget, state: dict[str, Any], outcome: PollOutcome) -> None:
    from agent.sources.arweave import ArweaveClient, ArweaveCursor, new_transactions

    client = ArweaveClient(target.name, ctx.http, graphql_path=target.path or "/graphql")
    cursor = ArweaveCursor.from_json(state.get("cursor"))
    if cursor.height is None and cursor.cursor is None and target.min_height is not None:
        cursor = ArweaveCursor(height=target.min_height)
    txs, next_cursor = await new_transactions(
        client,
        target.tags,
        cursor,
        max_pages=ctx.settings.arweave.max_pages_per_poll,
        page_size=ctx.settings.arweave.page_size,
    )
    retry = list(state.get("retry", []))
    pending = [*retry, *(tx.id for tx in txs)]
    failed: list[str] = []
    scanner = ctx.new_scanner()
    for txid in dict.fromkeys(pending):
        if scanner.hooks is not None and await scanner.hooks.known(f"ar:{txid}") is not None:
            continue
        try:
            content = await client.fetch(txid, max_bytes=ctx.settings.limits.max_item_bytes)
        except Exception as exc:  # one transaction failing must not stop the others; it is retried next poll
            log.warning("arweave.fetch_failed", target=target.url, txid=txid, error=str(exc))
            failed.append(txid)
            continue
        source = ItemSource(gateway=content.gateway, verified=content.digest_checked, gateways=[content.gateway])
        outcome.reports.append(
            await scanner.examine_bytes(target.url, f"ar:{txid}", content.data, source, key=f"ar:{txid}")
        )
    state.update(cursor=next_cursor.to_json(), retry=failed)
    outcome.note = f"{len(txs)} new transactions, {len(failed)} to retry"
