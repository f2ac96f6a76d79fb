"""The pipeline: target -> enumerate -> fetch (verified) -> sniff + hash -> report.

Knows no HTTP server and no CLI; both call `Scanner.scan`."""

from __future__ import annotations

import asyncio
import os
import stat
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Protocol

import aiohttp
import structlog

from agent.model.time import iso_utc, utcnow
from agent.config import Settings
from agent.ipfs.blocks import BlockSource, Provenance
from agent.ipfs.carfile import CarFileBlockSource
from agent.ipfs.cid import CID, block_key, cid_text, parse_cid
from agent.ipfs.dag import DagEntry, DagWalker, EntryKind
from agent.ipfs.dagpb import DAG_PB, RAW
from agent.ipfs.errors import BlockedContent, IpfsError, MissingBlock, TooLarge
from agent.ipfs.gateway import GatewayPool, RetrievalMode, TrustlessGateway
from agent.lists.catalog import ListCatalog, Thresholds, load_catalog
from agent.lists.denylist import DenyDecision, RuleKind
from agent.lists.matcher import Match
from agent.media import CryptoHasher, MediaError, MediaHasher, MediaLimits, MediaResult
from agent.media.sniff import media_kind, sniff_media_type
from agent.model.report import ItemReport, ItemSource, ItemStatus, ScanReport
from agent.model.signals import Signal, SignalType
from agent.targets import Target, TargetError, TargetKind, parse_target

log = structlog.get_logger(__name__)

ItemCallback = Callable[[ItemReport], None]
_LOCAL_CHUNK = 1 << 20
# Hash in a worker thread above this size: hashlib releases the GIL, so content
# hashing overlaps with block verification and network reads.
_THREAD_HASH_MIN = 64 * 1024


@dataclass
class _Content:
    """What the scan keeps of a file's bytes as they stream past: digests, the
    head for sniffing, and (for images and videos only) a temporary file for
    the perceptual hashers. Nothing else is stored; the media is deleted after."""

    sniff_bytes: int
    retain_limit: int = 0  # keep images/videos up to this many bytes; 0 keeps nothing
    tmp_dir: Path | None = None
    crypto: CryptoHasher = field(default_factory=CryptoHasher)
    head: bytearray = field(default_factory=bytearray)
    size: int = 0
    media_type: str | None = None
    path: Path | None = None
    too_large: bool = False
    _pending: list[bytes] = field(default_factory=list)
    _file: IO[bytes] | None = None

    async def feed(self, chunk: bytes) -> None:
        if len(self.head) < self.sniff_bytes:
            self.head += chunk[: self.sniff_bytes - len(self.head)]
        self.size += len(chunk)
        if len(chunk) >= _THREAD_HASH_MIN:
            await asyncio.to_thread(self.crypto.update, chunk)
        else:
            self.crypto.update(chunk)
        if self.media_type is None:
            self._pending.append(chunk)
            if len(self.head) >= self.sniff_bytes:
                self._decide()
        elif self._file is not None:
            self._keep(chunk)

    def _decide(self) -> None:
        self.media_type = sniff_media_type(bytes(self.head)) if self.size else "inode/x-empty"
        pending, self._pending = self._pending, []
        if self.retain_limit and media_kind(self.media_type) in ("image", "video"):
            handle = tempfile.NamedTemporaryFile(prefix="dweb-agent-", dir=self.tmp_dir, delete=False)
            self._file, self.path = handle, Path(handle.name)
            for chunk in pending:
                self._keep(chunk)

    def _keep(self, chunk: bytes) -> None:
        assert self._file is not None
        if self.size > self.retain_limit:
            self.too_large = True
            self._drop_file()
            return
        self._file.write(chunk)

    def finish(self) -> None:
        if self.media_type is None:
            self._decide()
        if self._file is not None:
            self._file.close()
            self._file = None

    def _drop_file(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        if self.path is not None:
            self.path.unlink(missing_ok=True)
            self.path = None

    def discard(self) -> None:
        self._drop_file()

    def signals(self) -> list[Signal]:
        return self.crypto.signals()


def signals_view(signals: list[Signal], media: MediaResult | None) -> dict[str, Any]:
    """The report's `signals` object: the first value of each type by name,
    PDQ quality beside it, further values (stored orientation, animation
    frames) under `more`, and a vPDQ summary for videos."""
    view: dict[str, Any] = {}
    more: list[dict[str, Any]] = []
    for sig in signals:
        if sig.type.value not in view:
            view[sig.type.value] = sig.value
            if sig.type is SignalType.PDQ:
                view["pdq_quality"] = sig.quality
        elif sig.value != view[sig.type.value]:
            more.append({"type": sig.type.value, "value": sig.value, "quality": sig.quality})
    if more:
        view["more"] = more
    if media is not None and media.video is not None:
        view["vpdq"] = {
            "frames": len(media.video.frames),
            "frame_rate": round(media.video.frame_rate, 3),
            "truncated": media.video.truncated,
        }
    return view


def signals_from_view(view: dict[str, Any]) -> list[Signal]:
    """The inverse of signals_view: what was stored, as signals to match again."""
    out: list[Signal] = []
    for kind in SignalType:
        value = view.get(kind.value)
        if isinstance(value, str):
            quality = view.get("pdq_quality") if kind is SignalType.PDQ else None
            out.append(Signal(kind, value, quality if isinstance(quality, int) else None))
    for extra in view.get("more", []) or []:
        try:
            out.append(Signal(SignalType(extra["type"]), str(extra["value"]), extra.get("quality")))
        except (KeyError, ValueError, TypeError):
            continue
    return out


def finding_view(match: Match) -> dict[str, Any]:
    found: dict[str, Any] = {
        "list": match.list_name,
        "entry": match.entry_value,
        "entry_id": match.entry_id,
        "signal_type": match.signal_type.value,
        "distance": match.distance,
        "labels": list(match.labels),
        "query": match.signal.value if match.signal is not None else None,
        "list_source": match.source or None,
        "list_line": match.line,
    }
    if match.compared_percent is not None:
        found["compared_percent"] = match.compared_percent
    return found


def deny_finding(decision: DenyDecision, signal_type: str) -> dict[str, Any]:
    rule = decision.rule
    return {
        "list": rule.list_name,
        "entry": rule.raw,
        # The list name and a hash of the rule: no operator path, and stable
        # however the path was typed or the line moved (stored ids of the old
        # `path:line` form map over with agent.lists.denylist.migrated_entry_id).
        "entry_id": rule.entry_id,
        "signal_type": signal_type,
        "distance": 0,
        "labels": [f"{k}={v}" for k, v in sorted(rule.hints.items())],
        "query": decision.matched,
        "list_source": rule.public_source,
        "list_line": rule.line,
    }


def _status_for(exc: BaseException) -> ItemStatus:
    if isinstance(exc, BlockedContent):
        return ItemStatus.BLOCKED
    if isinstance(exc, MissingBlock):
        return ItemStatus.INCOMPLETE
    if isinstance(exc, TooLarge):
        return ItemStatus.SKIPPED
    return ItemStatus.ERROR


def _source(provenance: Provenance, status: ItemStatus) -> ItemSource:
    remote = [s for s in provenance.served_by if not s.startswith("car:")]
    local = next((s[len("car:") :] for s in provenance.served_by if s.startswith("car:")), None)
    return ItemSource(
        gateway=remote[0] if remote else None,
        local=local,
        verified=status == ItemStatus.VERIFIED,
        gateways=remote,
        lied=list(provenance.lied),
        blocked_at=dict(provenance.blocked_at),
    )


_DOCUMENT_TYPES = {
    "dag-cbor": "application/vnd.ipld.dag-cbor",
    "dag-json": "application/vnd.ipld.dag-json",
    "cbor": "application/cbor",
    "json": "application/json",
}


def media_hasher(settings: Settings) -> MediaHasher:
    """The process pool for decoding and perceptual hashing, with the [media] limits."""
    m = settings.media
    limits = MediaLimits(
        max_pixels=m.max_pixels,
        max_frames=m.max_frames,
        max_bytes=m.max_bytes,
        max_video_seconds=m.max_video_seconds,
        timeout_s=m.timeout_s,
        video_fps_sample=m.video_fps_sample,
        worker_start_timeout_s=m.worker_start_timeout_s,
        max_worker_memory_bytes=m.max_worker_memory_bytes,
    )
    return MediaHasher(limits, workers=m.workers or None)


def list_thresholds(settings: Settings) -> dict[str, Thresholds]:
    """[lists.thresholds.<name>] from the configuration, in the lists layer's terms."""
    out: dict[str, Thresholds] = {}
    for name, t in settings.lists.thresholds.items():
        image = {
            SignalType(kind): value
            for kind in ("phash", "dhash", "ahash", "whash")
            if (value := getattr(t, f"{kind}_distance")) is not None
        }
        out[name] = Thresholds(t.pdq_distance, t.pdq_min_quality, image, t.vpdq_match_percent, t.vpdq_compared_percent)
    return out


async def load_scan_catalog(settings: Settings, extra_sources: list[str] | None = None) -> ListCatalog:
    """The configured lists plus any given for this scan, with their thresholds."""
    sources = [*settings.lists.sources, *(extra_sources or [])]
    if not sources:
        return ListCatalog.empty()
    # List URLs are the operator's own choice (CLI or config), so they are not
    # subject to the SSRF guard that protects webhook and API-supplied URLs.
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=300)) as http:
        return await load_catalog(
            sources, http=http, max_bytes=settings.lists.max_list_bytes, thresholds=list_thresholds(settings)
        )


@dataclass(frozen=True)
class KnownItem:
    """What an earlier scan stored about a CID."""

    key: str
    size: int | None
    media_type: str | None
    signals: dict[str, Any]
    # "error" when the bytes were verified but could not be decoded as media: the
    # same bytes would fail the same way, so they are not fetched again either.
    # DIRECTORY_STATUS for a directory or HAMT shard whose every entry was examined.
    status: str = "verified"


# A directory (or HAMT shard) remembered because everything under it was examined.
DIRECTORY_STATUS = "directory"


def item_examined(status: str, signals: dict[str, Any]) -> bool:
    """Whether an item needs no further fetch: verified, or verified bytes whose media
    could not be decoded (an error that the same bytes would repeat)."""
    return status in (ItemStatus.VERIFIED, DIRECTORY_STATUS) or (status == ItemStatus.ERROR and "sha256" in signals)


class ScanHooks(Protocol):
    """How a long-running agent makes scans incremental and durable.

    `known` is asked before a CID is fetched (by its multihash, hex); an answer
    means it is not fetched again. `record` is called as soon as each item is
    examined, so an interrupted scan loses nothing it had finished.
    `record_directory` is called for each directory or HAMT shard once every
    entry under it was examined completely (a partial walk records nothing, so
    it can never hide content): `known` then answers it with DIRECTORY_STATUS
    and a later root containing it skips the whole subtree."""

    async def known(self, key: str) -> KnownItem | None: ...

    async def record(self, item: ItemReport, key: str | None, report: ScanReport) -> None: ...

    async def record_directory(self, key: str, cid: str) -> None: ...


class Scanner:
    """One-off scans. Create one per scan or reuse; it holds no per-scan state between calls."""

    def __init__(
        self,
        settings: Settings,
        *,
        gateways: list[str] | None = None,
        mode: RetrievalMode = "car",
        concurrency: int = 4,
        http: aiohttp.ClientSession | None = None,
        on_item: ItemCallback | None = None,
        catalog: ListCatalog | None = None,
        media: MediaHasher | None = None,
        hash_media: bool = True,
        hooks: ScanHooks | None = None,
    ) -> None:
        self.settings = settings
        self.gateways = list(gateways) if gateways else []
        self.mode: RetrievalMode = mode
        self.concurrency = max(1, concurrency)
        self.catalog = catalog or ListCatalog.empty()
        self._http = http
        self._on_item = on_item
        self._media = media
        self._hash_media = hash_media
        self.hooks = hooks

    async def scan_source(self, source: BlockSource, root: CID, label: str) -> ScanReport:
        """Scan a DAG from a caller-supplied block source (a Kubo node, a local store)."""
        return await self._run(label, lambda run: run._scan_dag(source, root, ()))

    async def examine_bytes(
        self, label: str, path: str, data: bytes, source: ItemSource, key: str | None = None
    ) -> ScanReport:
        """Examine content that arrived whole and already checked by its source (an Arweave
        transaction against its digest): a report with one item."""

        async def one(run: _ScanRun) -> None:
            item = ItemReport(
                path=path, cid=None, size=len(data), media_type=None, status=ItemStatus.VERIFIED, source=source
            )
            content = run._new_content()
            try:
                await content.feed(data)
                content.finish()
                await run._analyse(item, content)
            finally:
                content.discard()
            if self.hooks is not None:
                await self.hooks.record(item, key, run.report)
            run._add(item)

        return await self._run(label, one)

    async def _run(self, label: str, body: Callable[[_ScanRun], Awaitable[None]]) -> ScanReport:
        report = ScanReport(target=label, root=None, started_at=iso_utc(utcnow()))
        report.lists = [dict(vars(summary)) for summary in self.catalog.summaries]
        try:
            async with AsyncExitStack() as stack:
                media = self._media
                if media is None and self._hash_media:
                    media = await stack.enter_async_context(media_hasher(self.settings))
                await body(_ScanRun(self, report, media))
        except (TargetError, IpfsError) as exc:
            report.errors.append(str(exc))
        finally:
            report.finished_at = iso_utc(utcnow())
        log.info("scan.finished", target=report.target, **report.summary())
        return report

    async def scan(self, target: str | Target) -> ScanReport:
        label = target if isinstance(target, str) else target.text

        async def body(run: _ScanRun) -> None:
            await run.execute(parse_target(target) if isinstance(target, str) else target)

        return await self._run(str(label), body)


class _ScanRun:
    """The state of one scan: byte budget, items already examined, the report."""

    def __init__(self, scanner: Scanner, report: ScanReport, media: MediaHasher | None) -> None:
        self.scanner = scanner
        self.media = media
        self.catalog = scanner.catalog
        self.tmp_dir: Path | None = None
        self.settings = scanner.settings
        self.limits = scanner.settings.limits
        self.report = report
        self.bytes_fetched = 0
        # One examination per distinct file CID; later paths wait for the first.
        self.examined: dict[bytes, asyncio.Future[ItemReport]] = {}
        # What the store said about CIDs the walker was told not to fetch (asked once per CID).
        self._known: dict[str, KnownItem] = {}
        # A remembered directory is skipped whole, so the paths below it are never
        # listed: only safe while no denylist rule names paths (a rule added since
        # could name one under it).
        self._skip_directories = not any(
            rule.kind is RuleKind.PATH or (rule.kind is RuleKind.IPFS and (rule.path.path or rule.path.prefix))
            for rule in self.catalog.denylist.rules
        )

    def _add(self, item: ItemReport) -> ItemReport:
        self.report.items.append(item)
        self._notify(item)
        return item

    def _notify(self, item: ItemReport) -> None:
        """Tell the caller (a progress bar) that an item was examined, as soon as it was."""
        if self.scanner._on_item is not None:
            self.scanner._on_item(item)

    async def execute(self, target: Target) -> None:
        if target.kind == TargetKind.LOCAL:
            assert target.local_path is not None
            await self._scan_local(target.local_path)
            return
        async with AsyncExitStack() as stack:
            if target.kind == TargetKind.CAR_FILE:
                assert target.local_path is not None
                carsource = await CarFileBlockSource.index(
                    target.local_path, max_block_bytes=self.limits.max_block_bytes
                )
                stack.callback(carsource.close)
                roots = list(carsource.header.roots)
                if not roots:
                    raise TargetError(f"{target.local_path}: the CAR names no root")
                for root in roots:
                    await self._scan_dag(carsource, root, ())
                return
            assert target.cid is not None
            urls = self.scanner.gateways or ([target.gateway_hint] if target.gateway_hint else []) + [
                u for u in self.settings.gateways.urls if u != target.gateway_hint
            ]
            if not urls:
                raise TargetError("no gateway configured: pass --gateway URL or set [gateways] urls")
            http = self.scanner._http
            if http is None:
                http = await stack.enter_async_context(
                    aiohttp.ClientSession(headers={"User-Agent": "dweb-agent (+verified retrieval)"})
                )
            g = self.settings.gateways
            pool = GatewayPool(
                [
                    TrustlessGateway(
                        u,
                        http,
                        max_block_bytes=self.limits.max_block_bytes,
                        connect_timeout_s=g.connect_timeout_s,
                        read_timeout_s=g.read_timeout_s,
                        response_deadline_s=g.response_deadline_s,
                        min_bytes_per_s=g.min_bytes_per_s,
                        throughput_grace_s=g.throughput_grace_s,
                    )
                    for u in urls
                ],
                mode=self.scanner.mode,
                max_buffered_bytes=self.limits.max_buffered_bytes,
                max_unrequested_bytes=self.limits.max_unrequested_bytes,
                max_retry_after_s=g.max_retry_after_s,
            )
            try:
                await self._scan_dag(pool, target.cid, target.path)
            finally:
                self.report.gateways = pool.report()

    async def _scan_dag(self, source: BlockSource, root: CID, path: tuple[str, ...]) -> None:
        walker = DagWalker(
            source,
            max_depth=self.limits.max_dag_depth,
            max_items=self.limits.max_items,
            max_nodes=self.limits.max_dag_nodes,
            max_file_blocks=self.limits.max_file_blocks,
            before_fetch=self._before_fetch,
        )
        self.report.root = self.report.root or cid_text(root)
        decision = self.catalog.denylist.check_cid(cid_text(root))
        if decision is not None and decision.blocked:
            self.report.findings.append(deny_finding(decision, "cid"))
        start = root
        if path:
            start = await walker.resolve(root, list(path))
            self.report.resolved = cid_text(start)
        queue: asyncio.Queue[tuple[int, DagEntry] | None] = asyncio.Queue(maxsize=self.scanner.concurrency)
        results: dict[int, ItemReport] = {}

        async def produce() -> None:
            try:
                index = 0
                async for entry in walker.walk(start, "/".join(path)):
                    await queue.put((index, entry))
                    index += 1
            finally:
                for _ in range(self.scanner.concurrency):
                    await queue.put(None)

        async def consume() -> None:
            while (job := await queue.get()) is not None:
                index, entry = job
                try:
                    item = results[index] = await self._examine(walker, entry)
                finally:
                    await entry.release()
                # Reported now, in the order items finish; the report keeps DAG order (below).
                self._notify(item)
                if self.scanner.hooks is not None:
                    # A directory is remembered only once all under it is examined
                    # (_record_directories); a repeat is recorded by its first path.
                    content = item.kind != EntryKind.DIRECTORY and entry.duplicate_of is None
                    await self.scanner.hooks.record(item, block_key(entry.cid).hex() if content else None, self.report)

        producer = asyncio.create_task(produce())
        consumers = [asyncio.create_task(consume()) for _ in range(self.scanner.concurrency)]
        try:
            await asyncio.gather(producer, *consumers)
            await self._record_directories(walker, results)
        except BaseException:
            for task in (producer, *consumers):
                task.cancel()
            await asyncio.gather(producer, *consumers, return_exceptions=True)
            while not queue.empty():
                job = queue.get_nowait()
                if job is not None:
                    await job[1].release()
            raise
        finally:
            self.report.items.extend(results[index] for index in sorted(results))

    async def _record_directories(self, walker: DagWalker, results: dict[int, ItemReport]) -> None:
        """Tell the store about each directory and HAMT shard everything under which
        was examined: a repeat under it counts only if its first walk was complete."""
        hooks = self.scanner.hooks
        if hooks is None:
            return
        complete: set[bytes] = set()

        def done(item: ItemReport | None) -> bool:
            if item is None or not item_examined(item.status, item.signals):
                return False
            if item.duplicate_of is None or item.kind not in (EntryKind.DIRECTORY, EntryKind.DOCUMENT):
                return True
            return item.cid is not None and block_key(parse_cid(item.cid)) in complete

        for node in walker.walked_nodes:  # in the order they ended: a repeat's first walk comes first
            if not all(done(results.get(i)) for i in range(node.first, node.end)):
                continue
            complete.add(block_key(node.cid))
            if node.cid.codec.code == DAG_PB:  # documents are items themselves
                await hooks.record_directory(block_key(node.cid).hex(), cid_text(node.cid))

    async def _examine(self, walker: DagWalker, entry: DagEntry) -> ItemReport:
        item = ItemReport(
            path=entry.path,
            cid=cid_text(entry.cid),
            size=entry.size,
            media_type=None,
            status=ItemStatus.VERIFIED,
            kind=entry.kind.value,
            codec=entry.codec or None,
            mode=f"{entry.mode:04o}" if entry.mode is not None else None,
            mtime=entry.mtime,
        )
        provenance = entry.provenance
        try:
            if entry.kind == EntryKind.ERROR:
                assert entry.error is not None
                item.findings = self._denied(item)
                raise entry.error
            if entry.duplicate_of is not None:
                # Walked under its first path already: its entries are reported there.
                item.duplicate_of = entry.duplicate_of
                item.media_type = "inode/directory"
                item.findings = self._denied(item)
                first = self.examined.get(block_key(entry.cid))
                if entry.kind == EntryKind.DOCUMENT and first is not None:
                    self._reuse(item, await asyncio.shield(first), entry.duplicate_of)
            elif entry.kind == EntryKind.KNOWN:
                await self._reuse_known(item, entry)
            elif entry.kind == EntryKind.WITHHELD:
                item.findings = self._denied(item)
                raise TooLarge(
                    f"on a denylist ({item.findings[0]['entry']}): not fetched; "
                    "set scan.fetch_denylisted = true to fetch it anyway"
                )
            elif entry.kind == EntryKind.SYMLINK:
                item.findings = self._denied(item)
                item.media_type = "inode/symlink"
                item.symlink_target = entry.symlink_target
            elif entry.kind == EntryKind.DOCUMENT:
                await self._examine_document(entry, item)
            else:
                await self._examine_file(walker, entry, item)
        except (IpfsError, OSError) as exc:
            item.status = _status_for(exc)
            item.error = str(exc)
        item.source = _source(provenance, item.status)
        return item

    def _reuse(self, item: ItemReport, earlier: ItemReport, first_path: str) -> None:
        """Same CID, same bytes: what was computed for the first path, with this path's own denylist findings."""
        item.media_type, item.signals, item.size = earlier.media_type, dict(earlier.signals), earlier.size
        item.findings = [f for f in earlier.findings if f["signal_type"] != "path"] + [
            f for f in self._denied(item) if f["signal_type"] == "path"
        ]
        item.duplicate_of = first_path
        item.status, item.error = earlier.status, earlier.error

    async def _examine_document(self, entry: DagEntry, item: ItemReport) -> None:
        mine: asyncio.Future[ItemReport] = asyncio.get_running_loop().create_future()
        self.examined[block_key(entry.cid)] = mine  # a repeat of this document waits for it
        try:
            item.media_type = _DOCUMENT_TYPES.get(entry.codec, "application/octet-stream")
            item.findings = self._denied(item)
            content = _Content(self.settings.scan.sniff_bytes)
            await content.feed(entry.root_block or b"")
            content.finish()
            item.signals = signals_view(content.signals(), None)
            item.findings.extend(finding_view(m) for m in self.catalog.index.match(content.signals()))
            if entry.error is not None:
                item.status, item.error = _status_for(entry.error), str(entry.error)
        finally:
            mine.set_result(item)

    async def _examine_file(self, walker: DagWalker, entry: DagEntry, item: ItemReport) -> None:
        key = block_key(entry.cid)
        first = self.examined.get(key)
        if first is not None:
            earlier = await asyncio.shield(first)
            if earlier.status == ItemStatus.VERIFIED:
                # Same CID, same bytes: reuse what was computed, fetch nothing again.
                self._reuse(item, earlier, earlier.path)
                entry.provenance.merge(Provenance(served_by=list(earlier.source.gateways)))
                return
        mine: asyncio.Future[ItemReport] = asyncio.get_running_loop().create_future()
        self.examined[key] = mine
        try:
            await self._fetch_file(walker, entry, item)
        except BaseException:
            item.status = ItemStatus.ERROR  # provisional, so waiters refetch rather than reuse
            raise
        finally:
            mine.set_result(item)

    async def _reuse_known(self, item: ItemReport, entry: DagEntry) -> None:
        known = self._known[block_key(entry.cid).hex()]  # cached by _before_fetch, which made it KNOWN
        if known.status == DIRECTORY_STATUS:  # examined completely under an earlier root: skipped whole
            item.kind, item.media_type, item.seen_before = EntryKind.DIRECTORY.value, "inode/directory", True
            item.findings = self._denied(item)
            return
        item.kind = "file"
        item.size, item.media_type, item.signals = known.size, known.media_type, dict(known.signals)
        item.seen_before = True
        if known.status == ItemStatus.ERROR:
            item.status = ItemStatus.ERROR
            item.error = f"{known.media_type}: could not be decoded when first examined; not fetched again"
        item.findings = self._denied(item)

    async def _before_fetch(self, cid: CID, path: str) -> EntryKind | None:
        if not self.settings.scan.fetch_denylisted:
            probe = ItemReport(path=path, cid=cid_text(cid), size=None, media_type=None, status=ItemStatus.SKIPPED)
            if self._denied(probe):
                return EntryKind.WITHHELD
        hooks = self.scanner.hooks
        if hooks is not None:
            key = block_key(cid).hex()
            known = self._known.get(key) or await hooks.known(key)
            if (
                known is not None
                and known.status == DIRECTORY_STATUS
                and (cid.codec.code != DAG_PB or not self._skip_directories)
            ):
                # Linked as a file (the same bytes as a remembered directory), or path
                # rules are loaded: walk it again (its files are still known, not fetched).
                known = None
            elif known is not None and cid.codec.code not in (DAG_PB, RAW):
                # A dag-cbor/dag-json document is an item of its own, recorded when its
                # block was read, not when everything it links to was: answering it from
                # the store would hide a link that could not be fetched the first time.
                # Its one block is read again; what it links to is still asked of the store.
                known = None
            if known is not None:
                self._known[key] = known
                return EntryKind.KNOWN
        return None

    def _denied(self, item: ItemReport) -> list[dict[str, Any]]:
        """Denylist findings for an item's CID and its path under the root: known before any fetch."""
        denylist = self.catalog.denylist
        if item.cid is None or not denylist.rules:
            return []
        found = []
        decision = denylist.check_cid(item.cid)
        if decision is not None and decision.blocked:
            found.append(deny_finding(decision, "cid"))
        if self.report.root is not None and item.path:
            decision = denylist.check_path(self.report.root, item.path)
            if decision is not None and decision.blocked and decision.rule.raw not in {f["entry"] for f in found}:
                found.append(deny_finding(decision, "path"))
        return found

    def _new_content(self) -> _Content:
        retain = self.scanner.settings.media.max_bytes if self.media is not None else 0
        return _Content(self.settings.scan.sniff_bytes, retain_limit=retain, tmp_dir=self.tmp_dir)

    async def _fetch_file(self, walker: DagWalker, entry: DagEntry, item: ItemReport) -> None:
        item.findings = self._denied(item)
        budget = self.limits.max_scan_bytes - self.bytes_fetched
        if budget <= 0:
            raise TooLarge(f"scan byte budget of {self.limits.max_scan_bytes} bytes is spent; item not fetched")
        content = self._new_content()
        limit = min(self.limits.max_item_bytes, budget)
        try:
            try:
                async for chunk in walker.read_file(entry, max_bytes=limit):
                    self.bytes_fetched += len(chunk)
                    await content.feed(chunk)
            finally:
                content.finish()
                item.media_type = content.media_type if content.size else None
            await self._analyse(item, content)
        finally:
            content.discard()

    async def _analyse(self, item: ItemReport, content: _Content) -> None:
        """Digests, perceptual hashes and list matches of fully read content."""
        item.size = content.size
        item.media_type = content.media_type
        signals = content.signals()
        media: MediaResult | None = None
        media_error: MediaError | None = None
        if content.too_large:
            media_error = MediaError(
                f"{content.size} bytes is over media.max_bytes "
                f"({self.settings.media.max_bytes}); not hashed perceptually"
            )
        elif content.path is not None and self.media is not None and content.media_type is not None:
            try:
                media = await self.media.signals_for(content.path, content.media_type)
                signals.extend(media.signals)
            except MediaError as exc:
                media_error = exc
        item.signals = signals_view(signals, media)
        if media is not None and media.video_frames:
            item.video_frames = [(f.frame, f.quality, f.pdq_hex, f.timestamp) for f in media.video_frames]
        matches = self.catalog.index.match(signals)
        if media is not None and media.video_frames:
            matches.extend(self.catalog.index.match_video(media.video_frames))
        item.findings.extend(finding_view(m) for m in matches)
        if media_error is not None:
            # Digests and their matches stand; the perceptual part could not be done.
            item.status = ItemStatus.ERROR
            item.error = f"{item.media_type}: {media_error}"

    async def _scan_local(self, root: Path) -> None:
        self.report.root = None
        for path in _local_files(root):
            rel = path.relative_to(root).as_posix() if path != root else path.name
            item = ItemReport(
                path=rel,
                cid=None,
                size=None,
                media_type=None,
                status=ItemStatus.VERIFIED,
                source=ItemSource(local=str(path), verified=True),
            )
            try:
                info = path.lstat()
                if stat.S_ISLNK(info.st_mode):
                    item.kind, item.media_type = "symlink", "inode/symlink"
                    item.symlink_target = os.readlink(path)
                elif not stat.S_ISREG(info.st_mode):
                    # A FIFO would block the scan for ever and a device never ends: never opened.
                    raise NotRegularFile(f"not a regular file ({_file_type(info.st_mode)}); not read")
                elif info.st_size > self.limits.max_item_bytes:
                    raise TooLarge(f"file is {info.st_size} bytes; the limit per item is {self.limits.max_item_bytes}")
                else:
                    content = self._new_content()
                    try:
                        async for chunk in _read_local(path):
                            await content.feed(chunk)
                        content.finish()
                        await self._analyse(item, content)
                    finally:
                        content.discard()
            except (IpfsError, OSError) as exc:
                item.status, item.error = _status_for(exc), str(exc)
                item.source.verified = False
            self._add(item)


def _local_files(root: Path) -> list[Path]:
    """Files under `root`, sorted; symlinks are listed, never followed."""
    if not root.is_dir() or root.is_symlink():
        return [root]
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames.sort()
        base = Path(dirpath)
        found.extend(base / name for name in sorted(filenames))
        found.extend(base / name for name in dirnames if (base / name).is_symlink())
    return sorted(found)


class NotRegularFile(OSError):
    """A local path that is a FIFO, device or socket: reading it could block or never end."""


def _file_type(mode: int) -> str:
    for test, name in (
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISDIR, "a directory"),
    ):
        if test(mode):
            return name
    return "not a file"


async def _read_local(path: Path) -> AsyncIterator[bytes]:
    # O_NOFOLLOW and O_NONBLOCK: a path swapped for a symlink or a FIFO after lstat()
    # is refused instead of followed or waited on.
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise NotRegularFile(f"not a regular file ({_file_type(info.st_mode)}); not read")
    with os.fdopen(fd, "rb") as fh:
        while chunk := await asyncio.to_thread(fh.read, _LOCAL_CHUNK):
            yield chunk
