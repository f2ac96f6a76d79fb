"""The public entry of the pipeline: target -> enumerate -> fetch (verified) ->
sniff + hash -> report. Knows no HTTP server and no CLI; both call `Scanner.scan`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack

import aiohttp
import structlog

from agent.config import Settings
from agent.ipfs.blocks import BlockSource
from agent.ipfs.cid import CID
from agent.ipfs.errors import IpfsError
from agent.ipfs.gateway import RetrievalMode
from agent.lists.catalog import ListCatalog
from agent.media import MediaHasher
from agent.model.report import ItemReport, ItemSource, ItemStatus, ScanReport
from agent.model.target import Target, TargetError
from agent.model.time import iso_utc, utcnow
from agent.pipeline.factories import media_hasher
from agent.pipeline.gateway_trust import GatewayTrust
from agent.pipeline.hooks import ItemCallback, ScanHooks
from agent.pipeline.run import ScanRun
from agent.sources.targets import parse_target

log = structlog.get_logger(__name__)


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
        trust: GatewayTrust | None = None,
    ) -> None:
        self.settings = settings
        self.gateways = list(gateways) if gateways else []
        self.mode: RetrievalMode = mode
        self.concurrency = max(1, concurrency)
        self.catalog = catalog or ListCatalog.empty()
        self.http = http
        self.on_item = on_item
        self._media = media
        self._hash_media = hash_media
        self.hooks = hooks
        # Liars shared with other scans through the store; None (a one-off scan): this scan's own only.
        self.trust = trust

    async def scan_source(self, source: BlockSource, root: CID, label: str) -> ScanReport:
        """Scan a DAG from a caller-supplied block source (a Kubo node, a local store)."""
        return await self._run(label, lambda run: run.scan_dag(source, root, ()))

    async def examine_bytes(
        self, label: str, path: str, data: bytes, source: ItemSource, key: str | None = None
    ) -> ScanReport:
        """Examine content that arrived whole and already checked by its source (an Arweave
        transaction against its digest): a report with one item."""

        async def one(run: ScanRun) -> None:
            item = ItemReport(
                path=path, cid=None, size=len(data), media_type=None, status=ItemStatus.VERIFIED, source=source
            )
            content = run.new_content()
            try:
                await content.feed(data)
                content.finish()
                await run.analyse(item, content)
            finally:
                content.discard()
            if self.hooks is not None:
                await self.hooks.record(item, key, run.report)
            run.add(item)

        return await self._run(label, one)

    async def _run(self, label: str, body: Callable[[ScanRun], Awaitable[None]]) -> ScanReport:
        report = ScanReport(target=label, root=None, started_at=iso_utc(utcnow()))
        report.lists = [dict(vars(summary)) for summary in self.catalog.summaries]
        try:
            async with AsyncExitStack() as stack:
                media = self._media
                if media is None and self._hash_media:
                    media = await stack.enter_async_context(media_hasher(self.settings))
                await body(ScanRun(self, report, media))
        except (TargetError, IpfsError) as exc:
            report.errors.append(str(exc))
        finally:
            report.finished_at = iso_utc(utcnow())
        log.info("scan.finished", target=report.target, **report.summary())
        return report

    async def scan(self, target: str | Target) -> ScanReport:
        label = target if isinstance(target, str) else target.text

        async def body(run: ScanRun) -> None:
            await run.execute(parse_target(target) if isinstance(target, str) else target)

        return await self._run(str(label), body)
