"""Running the scans queued through the API: claimed from the store under a lease, scanned
with the agent's own media pool and recorder, reported back into the store.

The runner claims up to [api] scan_concurrency jobs for this node whenever it is woken (a
submit on this agent) and every `poll_s` (a submit on another agent, a lease that expired
when its node died). Each job renews its lease every scan_lease_s / 3 with its progress;
that renewal is where a cancel is seen (the scan is stopped, the job finished CANCELLED) and
where a lost lease is noticed (the scan is stopped, the job left to the node holding it).
Everything the job fetches goes through the SSRF guard of agent.services.scan_jobs, inside
the session (so a name that resolves to a private address at fetch time is refused too)."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp
import structlog
from aiohttp.abc import AbstractResolver

from agent.config import Settings
from agent.ipfs.gateway import RetrievalMode
from agent.lists.catalog import ListCatalog, ListLoadError, load_catalog
from agent.lists.denylist import Denylist
from agent.lists.limits import ProblemLog
from agent.lists.matcher import MatchIndex
from agent.model.jobs import JobProgress, JobStatus, ScanJobRow
from agent.model.report import ItemReport, ItemStatus
from agent.net.addresses import BlockedDestination
from agent.net.connector import guarded_session
from agent.net.http import Purpose
from agent.pipeline import Scanner, list_thresholds
from agent.services.errors import Invalid
from agent.services.scan_jobs import network_target
from agent.services.untrusted import api_guard
from agent.store import Store

log = structlog.get_logger("agent.daemon")

# A job claimed this many times has taken its agent down each time (or been cut off by stops).
MAX_ATTEMPTS = 10


class JobScanners(Protocol):
    """What a job is scanned with (the Agent: its media pool and its recorder, target None)."""

    def job_scanner(
        self,
        catalog: ListCatalog,
        gateways: list[str],
        mode: RetrievalMode,
        http: aiohttp.ClientSession,
        on_item: Callable[[ItemReport], None],
    ) -> Scanner: ...

    @property
    def catalog(self) -> ListCatalog: ...


@dataclass(frozen=True, slots=True)
class JobOutcome:
    status: JobStatus
    report: dict[str, Any] | None = None
    error: str | None = None


class _Tally:
    """Items reported so far, counted as the scan reports them (written at each renewal)."""

    def __init__(self) -> None:
        self.items = self.verified = self.errors = self.findings = 0

    def add(self, item: ItemReport) -> None:
        self.items += 1
        self.verified += item.status is ItemStatus.VERIFIED
        self.errors += item.status in (ItemStatus.ERROR, ItemStatus.INCOMPLETE)
        self.findings += len(item.findings)

    def progress(self) -> JobProgress:
        return JobProgress(self.items, self.verified, self.errors, self.findings)


def with_lists(base: ListCatalog, extra: ListCatalog) -> ListCatalog:
    """`base` and the lists of `extra`, matched together (each list keeps its own thresholds)."""
    problems = ProblemLog()
    problems.extend(base.problems)
    problems.extend(extra.problems)
    return ListCatalog(
        MatchIndex([*base.index.lists, *extra.index.lists]),
        Denylist.combine([base.denylist, extra.denylist]),
        base.summaries + extra.summaries,
        problems.result(),
    )


class ScanJobRunner:
    """Claims and runs this node's share of the queued scans. `run(stop)` until stopped."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        node: str,
        scanners: JobScanners,
        *,
        on_finished: Callable[[JobStatus], None] | None = None,
        resolver: AbstractResolver | None = None,
        poll_s: float = 5.0,
    ) -> None:
        self._settings = settings
        self._store = store
        self._node = node
        self._scanners = scanners
        self._on_finished = on_finished
        # The resolver the guarded session wraps (None: the system's); tests pass a table.
        self._resolver = resolver
        self._poll_s = poll_s
        self._wake = asyncio.Event()
        self._jobs: dict[int, asyncio.Task[None]] = {}

    @property
    def running(self) -> int:
        return len(self._jobs)

    def wake(self) -> None:
        """Look for queued jobs now (called after a submit)."""
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Claim and start jobs until `stop` is set, then wait for the running ones.
        Cancelled (the agent's grace period ran out), it cancels them: they stay this
        node's until Agent.release_jobs (or a restart) queues them again."""
        try:
            while not stop.is_set():
                await self.claim()
                waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self._wake.wait())]
                await asyncio.wait(waiters, timeout=self._poll_s, return_when=asyncio.FIRST_COMPLETED)
                for waiter in waiters:
                    waiter.cancel()
                self._wake.clear()
            if self._jobs:
                await asyncio.wait(list(self._jobs.values()))
        finally:
            left = [t for t in self._jobs.values() if not t.done()]
            for task in left:
                task.cancel()
            if left:
                await asyncio.gather(*left, return_exceptions=True)

    async def claim(self) -> list[ScanJobRow]:
        """Claim as many jobs as there is room for and start them."""
        api = self._settings.api
        room = api.scan_concurrency - len(self._jobs)
        if room <= 0:
            return []
        claimed = await self._store.jobs.claim(self._node, limit=room, lease_s=api.scan_lease_s)
        for job in claimed:
            log.info("scan_job.started", job=job.id, attempt=job.attempts)
            task = asyncio.create_task(self._run_job(job), name=f"scan-job-{job.id}")
            self._jobs[job.id] = task
            task.add_done_callback(functools.partial(self._done, job.id))
        return claimed

    def _done(self, job_id: int, _task: asyncio.Task[None]) -> None:
        self._jobs.pop(job_id, None)
        self._wake.set()  # room for another

    async def _run_job(self, job: ScanJobRow) -> None:
        api = self._settings.api
        tally = _Tally()
        if job.attempts > MAX_ATTEMPTS:
            # Each attempt ended with its node gone (a crash, an OOM kill): do not take the next one down.
            error = f"given up after {job.attempts - 1} attempts that ended with their agent stopped or killed"
            await self._finish(job, JobOutcome(JobStatus.FAILED, error=error), tally)
            return
        scan = asyncio.create_task(self._scan(job, tally), name=f"scan-job-{job.id}-scan")
        try:
            while True:
                done, _ = await asyncio.wait({scan}, timeout=api.scan_lease_s / 3)
                if done:
                    break
                row = await self._store.jobs.renew(
                    job.id, self._node, lease_s=api.scan_lease_s, progress=tally.progress()
                )
                if row is None:
                    log.warning("scan_job.lease_lost", job=job.id)
                    return
                if row.cancel_requested:
                    await _stopped(scan)
                    await self._finish(job, JobOutcome(JobStatus.CANCELLED), tally)
                    return
        finally:
            # Lease lost, or this task cancelled (the agent stopping): the scan stops, the job stays as it is.
            await _stopped(scan)
        try:
            outcome = scan.result()
        # Any error: a scan that crashed ends FAILED, or the next node to claim it would crash too.
        except Exception as exc:
            log.exception("scan_job.crashed", job=job.id)
            outcome = JobOutcome(JobStatus.FAILED, error=f"the scan stopped on an unexpected error: {exc!r}"[:2000])
        await self._finish(job, outcome, tally)

    async def _finish(self, job: ScanJobRow, outcome: JobOutcome, tally: _Tally) -> None:
        held = await self._store.jobs.finish(
            job.id, self._node, outcome.status, report=outcome.report, error=outcome.error, progress=tally.progress()
        )
        if not held:
            log.warning("scan_job.lease_lost", job=job.id)
            return
        log.info("scan_job.finished", job=job.id, status=outcome.status.value, error=outcome.error)
        if self._on_finished is not None:
            self._on_finished(outcome.status)

    async def _scan(self, job: ScanJobRow, tally: _Tally) -> JobOutcome:
        s = self._settings
        try:
            # Parsed again: a file named like the CID may exist by now, and is still never read.
            target = network_target(job.target)
            guard = api_guard(s)
        except Invalid as exc:  # the target, or a malformed [api] allow_hosts entry (named)
            return JobOutcome(JobStatus.FAILED, error=exc.message)
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=s.gateways.connect_timeout_s)
        async with guarded_session(guard, timeout=timeout, resolver=self._resolver, purpose=Purpose.SCAN) as http:
            # The catalog current now: a list refresh swaps it for jobs started later.
            catalog = self._scanners.catalog
            if job.options.lists:
                try:
                    extra = await load_catalog(
                        list(job.options.lists),
                        http=http,
                        max_bytes=s.lists.max_list_bytes,
                        thresholds=list_thresholds(s),
                    )
                except ListLoadError as exc:
                    return JobOutcome(JobStatus.FAILED, error=f"list {exc}")
                except BlockedDestination as exc:
                    return JobOutcome(JobStatus.FAILED, error=f"list {exc}")
                catalog = with_lists(catalog, extra)
            scanner = self._scanners.job_scanner(catalog, list(job.options.gateways), job.options.mode, http, tally.add)
            try:
                report = await scanner.scan(target)
            except BlockedDestination as exc:
                # A gateway whose name now resolves to a forbidden address (DNS rebinding).
                return JobOutcome(JobStatus.FAILED, error=f"gateway {exc}")
        return JobOutcome(JobStatus.DONE, report=report.to_dict())


async def _stopped(task: asyncio.Task[Any]) -> None:
    """Cancel `task` unless it is done, and wait for it (its own error stays in it, for result())."""
    if not task.done():
        task.cancel()
        await asyncio.wait({task})
