"""The pipeline: target -> enumerate -> fetch (verified) -> sniff + hash -> report.

Knows no HTTP server and no CLI; both call `Scanner.scan`."""

from __future__ import annotations

import asyncio
import hashlib
import os
import stat
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import structlog

from agent.config import Settings
from agent.ipfs.blocks import BlockSource, Provenance
from agent.ipfs.carfile import CarFileBlockSource
from agent.ipfs.cid import CID, block_key, cid_text
from agent.ipfs.dag import DagEntry, DagWalker, EntryKind
from agent.ipfs.errors import BlockedContent, IpfsError, MissingBlock, TooLarge
from agent.ipfs.gateway import GatewayPool, RetrievalMode, TrustlessGateway
from agent.media.sniff import sniff_media_type
from agent.report import ItemReport, ItemSource, ItemStatus, ScanReport, utcnow
from agent.targets import Target, TargetError, TargetKind, parse_target

log = structlog.get_logger(__name__)

ItemCallback = Callable[[ItemReport], None]
_LOCAL_CHUNK = 1 << 20
# Hash in a worker thread above this size: hashlib releases the GIL, so content
# hashing overlaps with block verification and network reads.
_THREAD_HASH_MIN = 64 * 1024


@dataclass
class _Content:
    """Accumulates what the scan needs from a file's bytes as they stream past."""

    sniff_bytes: int
    md5: Any = field(default_factory=hashlib.md5)
    sha256: Any = field(default_factory=hashlib.sha256)
    head: bytearray = field(default_factory=bytearray)
    size: int = 0

    def _update(self, chunk: bytes) -> None:
        self.md5.update(chunk)
        self.sha256.update(chunk)

    async def feed(self, chunk: bytes) -> None:
        if len(self.head) < self.sniff_bytes:
            self.head += chunk[: self.sniff_bytes - len(self.head)]
        self.size += len(chunk)
        if len(chunk) >= _THREAD_HASH_MIN:
            await asyncio.to_thread(self._update, chunk)
        else:
            self._update(chunk)

    def signals(self) -> dict[str, Any]:
        return {"md5": self.md5.hexdigest(), "sha256": self.sha256.hexdigest()}


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
    local = next((s[len("car:"):] for s in provenance.served_by if s.startswith("car:")), None)
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
    ) -> None:
        self.settings = settings
        self.gateways = list(gateways) if gateways else []
        self.mode: RetrievalMode = mode
        self.concurrency = max(1, concurrency)
        self._http = http
        self._on_item = on_item

    async def scan(self, target: str | Target) -> ScanReport:
        report = ScanReport(target=str(target if isinstance(target, str) else target.text), root=None,
                            started_at=utcnow())
        run = _ScanRun(self, report)
        try:
            parsed = parse_target(target) if isinstance(target, str) else target
            await run.execute(parsed)
        except (TargetError, IpfsError) as exc:
            report.errors.append(str(exc))
        finally:
            report.finished_at = utcnow()
        log.info("scan.finished", target=report.target, **report.summary())
        return report


class _ScanRun:
    """The state of one scan: byte budget, items already examined, the report."""

    def __init__(self, scanner: Scanner, report: ScanReport) -> None:
        self.scanner = scanner
        self.settings = scanner.settings
        self.limits = scanner.settings.limits
        self.report = report
        self.bytes_fetched = 0
        # One examination per distinct file CID; later paths wait for the first.
        self.examined: dict[bytes, asyncio.Future[ItemReport]] = {}

    def _add(self, item: ItemReport) -> ItemReport:
        self.report.items.append(item)
        if self.scanner._on_item is not None:
            self.scanner._on_item(item)
        return item

    async def execute(self, target: Target) -> None:
        if target.kind == TargetKind.LOCAL:
            assert target.local_path is not None
            await self._scan_local(target.local_path)
            return
        async with AsyncExitStack() as stack:
            if target.kind == TargetKind.CAR_FILE:
                assert target.local_path is not None
                carsource = await CarFileBlockSource.index(target.local_path, max_block_bytes=self.limits.max_block_bytes)
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
                http = await stack.enter_async_context(aiohttp.ClientSession(
                    headers={"User-Agent": "dweb-agent (+verified retrieval)"}))
            g = self.settings.gateways
            pool = GatewayPool(
                [TrustlessGateway(u, http, max_block_bytes=self.limits.max_block_bytes,
                                  connect_timeout_s=g.connect_timeout_s, read_timeout_s=g.read_timeout_s) for u in urls],
                mode=self.scanner.mode,
                max_buffered_bytes=self.limits.max_buffered_bytes,
                max_retry_after_s=g.max_retry_after_s,
            )
            try:
                await self._scan_dag(pool, target.cid, target.path)
            finally:
                self.report.gateways = [
                    {"url": h.url, "served": h.successes, "failures": h.failures, "lied": h.lies,
                     "blocked": h.blocked, "trusted": not h.bad, "last_error": h.last_error}
                    for h in pool.health.values()
                ]

    async def _scan_dag(self, source: BlockSource, root: CID, path: tuple[str, ...]) -> None:
        walker = DagWalker(source, max_depth=self.limits.max_dag_depth, max_items=self.limits.max_items)
        self.report.root = self.report.root or cid_text(root)
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
                    results[index] = await self._examine(walker, entry)
                finally:
                    await entry.release()

        producer = asyncio.create_task(produce())
        consumers = [asyncio.create_task(consume()) for _ in range(self.scanner.concurrency)]
        try:
            await asyncio.gather(producer, *consumers)
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
            for index in sorted(results):
                self._add(results[index])

    async def _examine(self, walker: DagWalker, entry: DagEntry) -> ItemReport:
        item = ItemReport(path=entry.path, cid=cid_text(entry.cid), size=entry.size, media_type=None,
                          status=ItemStatus.VERIFIED, kind=entry.kind.value, codec=entry.codec or None,
                          mode=f"{entry.mode:04o}" if entry.mode is not None else None, mtime=entry.mtime)
        provenance = entry.provenance
        try:
            if entry.kind == EntryKind.ERROR:
                assert entry.error is not None
                raise entry.error
            if entry.kind == EntryKind.SYMLINK:
                item.media_type = "inode/symlink"
                item.symlink_target = entry.symlink_target
            elif entry.kind == EntryKind.DOCUMENT:
                item.media_type = _DOCUMENT_TYPES.get(entry.codec, "application/octet-stream")
                content = _Content(self.settings.scan.sniff_bytes)
                await content.feed(entry.root_block or b"")
                item.signals = content.signals()
                if entry.error is not None:
                    raise entry.error
            else:
                await self._examine_file(walker, entry, item)
        except (IpfsError, OSError) as exc:
            item.status = _status_for(exc)
            item.error = str(exc)
        item.source = _source(provenance, item.status)
        return item

    async def _examine_file(self, walker: DagWalker, entry: DagEntry, item: ItemReport) -> None:
        key = block_key(entry.cid)
        first = self.examined.get(key)
        if first is not None:
            earlier = await asyncio.shield(first)
            if earlier.status == ItemStatus.VERIFIED:
                # Same CID, same bytes: reuse what was computed, fetch nothing again.
                item.media_type, item.signals, item.size = earlier.media_type, dict(earlier.signals), earlier.size
                item.duplicate_of = earlier.path
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

    async def _fetch_file(self, walker: DagWalker, entry: DagEntry, item: ItemReport) -> None:
        budget = self.limits.max_scan_bytes - self.bytes_fetched
        if budget <= 0:
            raise TooLarge(f"scan byte budget of {self.limits.max_scan_bytes} bytes is spent; item not fetched")
        content = _Content(self.settings.scan.sniff_bytes)
        limit = min(self.limits.max_item_bytes, budget)
        try:
            async for chunk in walker.read_file(entry, max_bytes=limit):
                self.bytes_fetched += len(chunk)
                await content.feed(chunk)
        finally:
            item.media_type = sniff_media_type(bytes(content.head)) if content.size else None
        item.size = content.size
        item.signals = content.signals()

    async def _scan_local(self, root: Path) -> None:
        self.report.root = None
        for path in _local_files(root):
            rel = path.relative_to(root).as_posix() if path != root else path.name
            item = ItemReport(path=rel, cid=None, size=None, media_type=None, status=ItemStatus.VERIFIED,
                              source=ItemSource(local=str(path), verified=True))
            try:
                info = path.lstat()
                if stat.S_ISLNK(info.st_mode):
                    item.kind, item.media_type = "symlink", "inode/symlink"
                    item.symlink_target = os.readlink(path)
                elif info.st_size > self.limits.max_item_bytes:
                    raise TooLarge(f"file is {info.st_size} bytes; the limit per item is {self.limits.max_item_bytes}")
                else:
                    content = _Content(self.settings.scan.sniff_bytes)
                    async for chunk in _read_local(path):
                        await content.feed(chunk)
                    item.size, item.signals = content.size, content.signals()
                    item.media_type = sniff_media_type(bytes(content.head)) if content.size else None
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


async def _read_local(path: Path) -> AsyncIterator[bytes]:
    with path.open("rb") as fh:
        while chunk := await asyncio.to_thread(fh.read, _LOCAL_CHUNK):
            yield chunk
