"""What the scan-job tests share: test DAGs, an Agent serving in the background, and a
runner's scanners for a bare store (a second node with no Agent around it)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import aiohttp

from agent.config import ApiSettings, Settings
from agent.ipfs.cid import CID
from agent.ipfs.gateway import RetrievalMode
from agent.lists.catalog import ListCatalog
from agent.model.jobs import JobStatus, ScanJobRow
from agent.model.report import ItemReport
from agent.pipeline import Scanner
from agent.runtime.agent import Agent
from agent.services.recording import ItemRecorder
from agent.services.scan_jobs import ScanJobsService
from agent.store import Store
from tests.support.unixfs_builder import UnixFSBuilder
from tests.support.wait import until

# Report keys that are wall-clock times (everything else must be equal between the CLI and a job).
TIME_KEYS = ("started_at", "finished_at")


def tree(files: dict[str, bytes]) -> tuple[CID, list[tuple[CID, bytes]]]:
    builder = UnixFSBuilder()
    entries = {name: builder.add_file(data) for name, data in files.items()}
    root, _ = builder.add_directory(entries)
    return root, builder.blocks


def with_api(settings: Settings, **api: Any) -> Settings:
    return settings.model_copy(update={"api": ApiSettings(**api)})


def comparable(report: dict[str, Any]) -> dict[str, Any]:
    """The report minus its times, items in path order (scanned concurrently, they finish in any order)."""
    out = {k: v for k, v in report.items() if k not in TIME_KEYS}
    out["items"] = sorted(report["items"], key=lambda item: str(item["path"]))
    return out


async def finished(service: ScanJobsService, job_id: int, seconds: float = 90) -> ScanJobRow:
    async def done() -> bool:
        return (await service.get(job_id)).status.finished

    await until(done, seconds, why=lambda: f"scan job {job_id} did not finish")
    return await service.get(job_id)


@asynccontextmanager
async def serving(settings: Settings, **kw: Any) -> AsyncIterator[Agent]:
    """An Agent serving (lists loaded, the job runner started) until the block ends."""
    stop = asyncio.Event()
    async with Agent(settings, **kw) as agent:
        task = asyncio.create_task(agent.serve(stop))
        ready = asyncio.create_task(agent.ready.wait())
        await asyncio.wait([task, ready], return_when=asyncio.FIRST_COMPLETED)
        if task.done():
            ready.cancel()
            task.result()
        try:
            yield agent
        finally:
            stop.set()
            await task


async def statuses(store: Store, ids: list[int]) -> list[JobStatus]:
    return [row.status for row in [await store.jobs.get(i) for i in ids] if row is not None]


class StoreScanners:
    """A node's scanners with no Agent: its own recorder over `store`, no media hashing."""

    def __init__(self, settings: Settings, store: Store) -> None:
        self._settings = settings
        self._store = store
        self.catalog = ListCatalog.empty()

    def job_scanner(
        self,
        catalog: ListCatalog,
        gateways: list[str],
        mode: RetrievalMode,
        http: aiohttp.ClientSession,
        on_item: Callable[[ItemReport], None],
    ) -> Scanner:
        return Scanner(
            self._settings,
            gateways=gateways,
            mode=mode,
            http=http,
            on_item=on_item,
            catalog=catalog,
            hash_media=False,
            hooks=ItemRecorder(self._store, self._settings.gateways.urls),
        )
