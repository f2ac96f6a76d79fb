"""One scan's work: the DAG walk with bounded concurrency, the examination of each
entry (fetch, sniff, hash, match), and reuse of what was already examined (the same
CID under another path, or an item an earlier scan stored)."""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack
from pathlib import Path
from typing import TYPE_CHECKING

from agent.ipfs.blocks import BlockSource, Provenance
from agent.ipfs.carfile import CarFileBlockSource
from agent.ipfs.cid import CID, block_key, cid_text, parse_cid
from agent.ipfs.dag import DagWalker
from agent.ipfs.dagpb import DAG_PB, RAW
from agent.ipfs.entries import DagEntry, EntryKind
from agent.ipfs.errors import IpfsError, TooLarge
from agent.lists.denylist import RuleKind
from agent.media import MediaError, MediaHasher, MediaResult
from agent.model.finding import DenyBasis, Finding
from agent.model.item_key import content_key
from agent.model.report import ItemReport, ItemStatus, ScanReport
from agent.model.signals import ItemSignals
from agent.model.status import ItemState
from agent.model.target import Target, TargetError, TargetKind
from agent.net.http import Purpose, client_session
from agent.pipeline.content import Content
from agent.pipeline.factories import gateway_pool
from agent.pipeline.findings import finding_from_match, finding_from_rule
from agent.pipeline.hooks import KnownItem, item_examined
from agent.pipeline.items import DOCUMENT_TYPES, media_signals, source_of, status_for
from agent.pipeline.local import scan_local
from agent.pipeline.names import NAMED_KINDS, resolve_named

if TYPE_CHECKING:
    from agent.pipeline.scanner import Scanner


class ScanRun:
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

    def add(self, item: ItemReport) -> ItemReport:
        self.report.items.append(item)
        self._notify(item)
        return item

    def _notify(self, item: ItemReport) -> None:
        """Tell the caller (a progress bar) that an item was examined, as soon as it was."""
        if self.scanner.on_item is not None:
            self.scanner.on_item(item)

    async def execute(self, target: Target) -> None:
        # parse_target sets local_path for LOCAL and CAR_FILE targets and cid for the rest.
        if target.kind == TargetKind.LOCAL and target.local_path is not None:
            await scan_local(self, target.local_path)
            return
        async with AsyncExitStack() as stack:
            if target.kind == TargetKind.CAR_FILE and target.local_path is not None:
                carsource = await CarFileBlockSource.index(
                    target.local_path, max_block_bytes=self.limits.max_block_bytes
                )
                stack.callback(carsource.close)
                roots = list(carsource.header.roots)
                if not roots:
                    raise TargetError(f"{target.local_path}: the CAR names no root")
                for root in roots:
                    await self.scan_dag(carsource, root, ())
                return
            if target.cid is None and target.kind not in NAMED_KINDS:
                raise TargetError(f"{target.text}: names no file, CAR or CID to scan")
            urls = self.scanner.gateways or ([target.gateway_hint] if target.gateway_hint else []) + [
                u for u in self.settings.gateways.urls if u != target.gateway_hint
            ]
            if not urls:
                raise TargetError("no gateway configured: pass --gateway URL or set [gateways] urls")
            http = self.scanner.http
            if http is None:
                http = await stack.enter_async_context(client_session(Purpose.SCAN))
            if target.kind in NAMED_KINDS:
                # Resolved now, through the gateways this scan fetches from: the root it names today.
                target = await resolve_named(target, urls, http, self.settings.dnslink)
            if target.cid is None:
                raise TargetError(f"{target.text}: names no file, CAR or CID to scan")
            trust = self.scanner.trust
            distrusted = await trust.distrusted() if trust is not None else {}
            pool = gateway_pool(self.settings, urls, http, self.scanner.mode, distrusted=distrusted)
            try:
                await self.scan_dag(pool, target.cid, target.path)
            finally:
                self.report.gateways = pool.report()
                if trust is not None and pool.lies:
                    # Written at the end: within this scan the pool already shuns a liar.
                    await trust.record(pool.lies)

    async def scan_dag(self, source: BlockSource, root: CID, path: tuple[str, ...]) -> None:
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
            self.report.findings.append(finding_from_rule(decision, DenyBasis.CID))
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
                    key = content_key(block_key(entry.cid)) if content else None
                    await self.scanner.hooks.record(item, key, self.report)

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
                await hooks.record_directory(content_key(block_key(node.cid)), cid_text(node.cid))

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
                item.findings = self._denied(item)
                raise entry.error or IpfsError(f"{entry.path}: could not be walked")
            if entry.duplicate_of is not None:
                # Walked under its first path already: its entries are reported there.
                item.duplicate_of = entry.duplicate_of
                item.media_type = "inode/directory"
                item.findings = self._denied(item)
                first = self.examined.get(block_key(entry.cid))
                if entry.kind == EntryKind.DOCUMENT and first is not None:
                    self._reuse(item, await asyncio.shield(first), entry.duplicate_of)
            elif entry.kind == EntryKind.KNOWN:
                self._reuse_known(item, entry)
            elif entry.kind == EntryKind.WITHHELD:
                item.findings = self._denied(item)
                raise TooLarge(
                    f"on a denylist ({item.findings[0].entry}): not fetched; "
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
            item.status = status_for(exc)
            item.error = str(exc)
        item.source = source_of(provenance, item.status)
        return item

    def _reuse(self, item: ItemReport, earlier: ItemReport, first_path: str) -> None:
        """Same CID, same bytes: what was computed for the first path, with this path's own denylist findings."""
        item.media_type, item.signals, item.size = earlier.media_type, earlier.signals, earlier.size
        item.findings = [f for f in earlier.findings if not f.on_path] + [f for f in self._denied(item) if f.on_path]
        item.duplicate_of = first_path
        item.status, item.error = earlier.status, earlier.error

    async def _examine_document(self, entry: DagEntry, item: ItemReport) -> None:
        mine: asyncio.Future[ItemReport] = asyncio.get_running_loop().create_future()
        self.examined[block_key(entry.cid)] = mine  # a repeat of this document waits for it
        try:
            item.media_type = DOCUMENT_TYPES.get(entry.codec, "application/octet-stream")
            item.findings = self._denied(item)
            content = Content(self.settings.scan.sniff_bytes)
            await content.feed(entry.root_block or b"")
            content.finish()
            item.signals = ItemSignals(tuple(content.signals()))
            item.findings.extend(finding_from_match(m) for m in self.catalog.index.match(content.signals()))
            if entry.error is not None:
                item.status, item.error = status_for(entry.error), str(entry.error)
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

    def _reuse_known(self, item: ItemReport, entry: DagEntry) -> None:
        known = self._known[content_key(block_key(entry.cid))]  # cached by _before_fetch, which made it KNOWN
        if known.status is ItemState.DIRECTORY:  # examined completely under an earlier root: skipped whole
            item.kind, item.media_type, item.seen_before = EntryKind.DIRECTORY.value, "inode/directory", True
            item.findings = self._denied(item)
            return
        item.kind = "file"
        item.size, item.media_type, item.signals = known.size, known.media_type, known.signals
        item.seen_before = True
        if known.status is ItemState.ERROR:
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
            key = content_key(block_key(cid))
            known = self._known.get(key) or await hooks.known(key)
            if (
                known is not None
                and known.status is ItemState.DIRECTORY
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

    def _denied(self, item: ItemReport) -> list[Finding]:
        """Denylist findings for an item's CID and its path under the root: known before any fetch."""
        denylist = self.catalog.denylist
        if item.cid is None or not denylist.rules:
            return []
        found: list[Finding] = []
        decision = denylist.check_cid(item.cid)
        if decision is not None and decision.blocked:
            found.append(finding_from_rule(decision, DenyBasis.CID))
        if self.report.root is not None and item.path:
            decision = denylist.check_path(self.report.root, item.path)
            if decision is not None and decision.blocked and decision.rule.raw not in {f.entry for f in found}:
                found.append(finding_from_rule(decision, DenyBasis.PATH))
        return found

    def new_content(self) -> Content:
        retain = self.scanner.settings.media.max_bytes if self.media is not None else 0
        return Content(self.settings.scan.sniff_bytes, retain_limit=retain, tmp_dir=self.tmp_dir)

    async def _fetch_file(self, walker: DagWalker, entry: DagEntry, item: ItemReport) -> None:
        item.findings = self._denied(item)
        budget = self.limits.max_scan_bytes - self.bytes_fetched
        if budget <= 0:
            raise TooLarge(f"scan byte budget of {self.limits.max_scan_bytes} bytes is spent; item not fetched")
        content = self.new_content()
        limit = min(self.limits.max_item_bytes, budget)
        try:
            try:
                async for chunk in walker.read_file(entry, max_bytes=limit):
                    self.bytes_fetched += len(chunk)
                    await content.feed(chunk)
            finally:
                content.finish()
                item.media_type = content.media_type if content.size else None
            await self.analyse(item, content)
        finally:
            content.discard()

    async def analyse(self, item: ItemReport, content: Content) -> None:
        """Digests, perceptual hashes and list matches of fully read content."""
        item.size = content.size
        item.media_type = content.media_type
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
            except MediaError as exc:
                media_error = exc
        item.signals = media_signals(content, media)
        matches = self.catalog.index.match(item.signals.hashes)
        if item.signals.frames:
            matches.extend(self.catalog.index.match_video(item.signals.frames))
        item.findings.extend(finding_from_match(m) for m in matches)
        if media_error is not None:
            # Digests and their matches stand; the perceptual part could not be done.
            item.status = ItemStatus.ERROR
            item.error = f"{item.media_type}: {media_error}"
