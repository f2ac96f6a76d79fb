"""The agent: the composition root of the daemon. It opens the store, the daemon's HTTP
session, the media pool, the list syncer and the webhook worker, builds the services and
the poller over them, and turns what the services return into metrics, log lines and
wakes of the delivery worker (they know none of these)."""

from __future__ import annotations

import asyncio
import random
import socket
import time
from collections.abc import Callable, Sequence
from contextlib import AsyncExitStack
from datetime import datetime, timedelta

import aiohttp
import structlog
from prometheus_client import CollectorRegistry

from agent.alerts.delivery import WebhookDelivery
from agent.config import Settings
from agent.ipfs.gateway import RetrievalMode
from agent.lists.catalog import ListCatalog
from agent.media import MediaHasher
from agent.model.jobs import JobStatus
from agent.model.report import ItemReport, ItemStatus
from agent.model.time import utcnow
from agent.net.guard import NetGuard
from agent.net.http import Purpose, client_session
from agent.pipeline import Scanner, media_hasher
from agent.pipeline.gateway_trust import GatewayTrust
from agent.runtime.health import HealthState, HealthStatus
from agent.runtime.metrics import Metrics
from agent.runtime.polls import PollResult, TargetPoller
from agent.runtime.scan_jobs import ScanJobRunner
from agent.runtime.scheduler import Scheduler
from agent.services.findings import FindingsService
from agent.services.list_refresh import ListRefresher, list_syncer
from agent.services.recording import ItemRecorder, NewFindings
from agent.services.rematch import Rematcher
from agent.services.takedown import TakedownService
from agent.services.targets import TargetsService
from agent.store import FindingRow, Store, TargetRow

log = structlog.get_logger("agent.daemon")  # the name operators' log filters already use


class Agent:
    """One agent process. `async with Agent(settings, registry) as agent: await agent.serve(stop)`."""

    def __init__(
        self,
        settings: Settings,
        registry: CollectorRegistry | None = None,
        *,
        node: str | None = None,
        clock: Callable[[], datetime] = utcnow,
        rng: random.Random | None = None,
    ) -> None:
        self.settings = settings
        # Schedules (next runs, backoff, jitter, the recheck slot) come from these, so tests can drive them.
        self._now = clock
        # Spreads polls and backoffs, decides nothing secret.
        self._rng = rng if rng is not None else random.Random()  # noqa: S311
        self.registry = registry or CollectorRegistry(auto_describe=True)
        self.metrics = Metrics(self.registry)
        # Stable across restarts, so that an agent recognises the scans it left
        # running; two agents on one host sharing a database need distinct node_name.
        self.node = node or settings.agent.node_name or socket.gethostname()
        self.catalog = ListCatalog.empty()
        self.started = time.monotonic()
        self.last_list_sync: datetime | None = None
        self._stack = AsyncExitStack()
        self.scheduler = Scheduler(settings.schedule, clock=clock, rng=self._rng)
        self.delivery: WebhookDelivery | None = None
        self._delivery_stop = asyncio.Event()
        self._delivering: asyncio.Task[None] | None = None
        self._jobs_stop = asyncio.Event()
        self._scanning: asyncio.Task[None] | None = None
        # Set once lists are loaded and targets scheduled.
        self.ready = asyncio.Event()
        self.store: Store
        self.http: aiohttp.ClientSession
        self.media: MediaHasher
        self._targets: TargetsService
        self._lists: ListRefresher
        self._takedown: TakedownService
        self._poller: TargetPoller
        self.jobs: ScanJobRunner

    # -- lifecycle ---------------------------------------------------------
    async def __aenter__(self) -> Agent:
        try:
            await self._open()
        except BaseException:
            await self._stack.aclose()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.shutdown()

    async def _open(self) -> None:
        s = self.settings
        s.agent.data_dir.mkdir(parents=True, exist_ok=True)
        store = self.store = await Store.open(s.agent.database())
        self._stack.push_async_callback(store.close)
        interrupted = await store.scans.interrupt_running(self.node)
        if interrupted:
            log.warning("agent.scans_interrupted_earlier", count=interrupted)
        requeued = await store.jobs.requeue_own(self.node)
        if requeued:
            log.warning("agent.api_scans_resumed", count=requeued)
        released = await store.outbox.release_leases(self.node)
        if released:
            log.warning("agent.deliveries_resumed", count=released)
        self.http = await self._stack.enter_async_context(client_session(Purpose.DAEMON))
        self.media = await self._stack.enter_async_context(media_hasher(s))
        gateways = s.gateways.urls
        self._targets = TargetsService(store, s.schedule.default_interval_s)
        self._lists = ListRefresher(
            store, list_syncer(s, store, self.http), FindingsService(store), Rematcher(store, gateways)
        )
        self._takedown = TakedownService(store, self.http, gateways, routing_url=s.alerts.routing_url or None)
        self._poller = TargetPoller(
            s,
            store,
            self.http,
            node=self.node,
            metrics=self.metrics,
            clock=self._now,
            rng=self._rng,
            scanner=self.scanner,
            recorder=self.recorder,
            rearm=self.scheduler.rearm,
        )
        self.jobs = ScanJobRunner(s, store, self.node, self, on_finished=self._api_scan_finished)
        for declared in s.targets:
            await self.add_target(declared.url, declared.interval_s)
        a = s.alerts
        self.delivery = await self._stack.enter_async_context(
            WebhookDelivery(
                store,
                NetGuard.from_settings(a),
                self.node,
                timeout_s=a.delivery_timeout_s,
                disable_after=timedelta(days=a.disable_after_days),
                on_result=self._delivery_result,
            )
        )

    def _delivery_result(self, outcome: str, seconds: float) -> None:
        self.metrics.deliveries.labels(outcome).inc()
        self.metrics.delivery_seconds.observe(seconds)

    async def add_target(self, url: str, interval_s: int | None = None) -> TargetRow:
        # The CLI's policy too: a target watched already comes back as it is.
        return (await self._targets.add(url, interval_s)).target

    async def shutdown(self) -> None:
        await self.stop_taking_work()
        await self._stack.aclose()

    # -- scheduling --------------------------------------------------------
    async def serve(self, stop: asyncio.Event) -> None:
        """Run until `stop` is set, then let running polls finish within the grace period."""
        await self.refresh_lists()
        sched = self.settings.schedule
        self.scheduler.add_interval("lists", sched.lists_interval_s, self.refresh_lists)
        self.scheduler.add_interval("reconcile", sched.reconcile_interval_s, self.reconcile)
        self.scheduler.add_interval("recheck", self.settings.alerts.recheck_interval_s, self.recheck_content, True)
        self.scheduler.start()
        await self.reconcile()
        if self.delivery is None:
            raise RuntimeError("serve() outside `async with Agent(...)`")
        self._delivering = asyncio.create_task(self.delivery.run(self._delivery_stop))
        self._scanning = asyncio.create_task(self.jobs.run(self._jobs_stop))
        self.metrics.up.set(1)
        self.ready.set()
        try:
            await stop.wait()
        finally:
            self.metrics.up.set(0)
            await self.stop_taking_work()

    async def stop_taking_work(self) -> None:
        """Take no new work; let running polls and deliveries finish within
        shutdown_grace_s, then cancel what is left. Every caller waits for the same stop."""
        self._delivery_stop.set()
        self._jobs_stop.set()
        # Deliveries and API scans in flight finish too (their leases would otherwise hold them until expiry).
        also = [t for t in (self._delivering, self._scanning) if t is not None]
        await self.scheduler.stop(self.settings.agent.shutdown_grace_s, also)
        if self._scanning is not None:
            # API scans cut off by the grace period are queued again now, not at their lease's expiry.
            self._scanning = None
            requeued = await self.store.jobs.requeue_own(self.node)
            if requeued:
                log.warning("agent.api_scans_requeued", count=requeued)

    def hurry(self) -> None:
        """End the grace period of a stop now (a second SIGTERM or Ctrl-C)."""
        self.scheduler.hurry()

    async def reconcile(self) -> None:
        """Make the scheduler's jobs match the targets table."""
        if not self.scheduler.started or self.scheduler.stopping:
            return
        targets = await self.store.targets.all(enabled_only=True)
        self.metrics.targets.set(len(targets))
        self.scheduler.reconcile(targets, self.poll_target)

    # -- work --------------------------------------------------------------
    def recorder(self, target: TargetRow | None) -> ItemRecorder:
        return ItemRecorder(
            self.store, self.settings.gateways.urls, target, on_item=self._item_recorded, on_findings=self._announce
        )

    def scanner(self, target: TargetRow | None) -> Scanner:
        # The catalog current now: a list refresh swaps it for scans started later.
        return Scanner(
            self.settings,
            catalog=self.catalog,
            media=self.media,
            http=self.http,
            hooks=self.recorder(target),
            trust=self.gateway_trust(),
        )

    def gateway_trust(self) -> GatewayTrust:
        """Liars this node's scans share with every node's through the store."""
        return GatewayTrust(self.store, self.node, self.settings.gateways.distrust_liar_s)

    def job_scanner(
        self,
        catalog: ListCatalog,
        gateways: list[str],
        mode: RetrievalMode,
        http: aiohttp.ClientSession,
        on_item: Callable[[ItemReport], None],
    ) -> Scanner:
        """An API scan's scanner: the agent's media pool and recorder (no target: its findings
        reach every subscriber as a poll's do), the job's guarded session, gateways and lists."""
        return Scanner(
            self.settings,
            gateways=gateways,
            mode=mode,
            http=http,
            on_item=on_item,
            catalog=catalog,
            media=self.media,
            hooks=self.recorder(None),
            trust=self.gateway_trust(),
        )

    def wake_scans(self) -> None:
        """Claim queued API scans now (after a submit) rather than at the next poll of the queue."""
        self.jobs.wake()

    def _api_scan_finished(self, status: JobStatus) -> None:
        self.metrics.api_scans.labels(status.value).inc()

    async def poll_target(self, target_id: int, *, scheduled: bool = True) -> PollResult:
        """One poll (see TargetPoller.poll_target); `scheduled=False` is a manual poll."""
        return await self._poller.poll_target(target_id, scheduled=scheduled)

    async def refresh_lists(self) -> None:
        result = await self._lists.sync()
        for error in result.errors:
            log.warning("lists.source_failed", error=error)
        self.metrics.list_syncs.labels("error" if result.errors else "ok").inc()
        self.last_list_sync = utcnow()
        if not result.changed:
            return
        self.catalog = result.catalog  # scans already running keep the catalog they started with
        for summary in result.catalog.summaries:
            self.metrics.list_entries.labels(summary.name).set(summary.entries)
        outcome = await self._lists.apply(result)
        for name, done in outcome.retracted.items():
            log.warning("findings.retracted", list=name, findings=done, reason="entry_deleted")
        if outcome.retracted:
            self._wake()
        log.info(
            "lists.updated",
            lists=[s.name for s in result.catalog.summaries],
            new_versions=sorted(outcome.fresh),
            added=dict(outcome.added),
        )
        if outcome.added:
            for finding, item in outcome.new_findings:
                self._announce(NewFindings([finding], item.path, item.root))
            log.info("lists.rematched", lists=sorted(outcome.added), new_findings=len(outcome.new_findings))

    async def recheck_content(self, scheduled: bool = False) -> int:
        """Takedown tracking: probe matched content; a change of state is an event.

        A scheduled round is claimed once per interval across the agents sharing the
        database, its slot numbered from the injected clock; a manual call always runs."""
        slot = None
        if scheduled:
            slot = int(self._now().timestamp() // self.settings.alerts.recheck_interval_s)
        changes = await self._takedown.recheck(slot, self.node)
        for change in changes:
            self.metrics.content_changes.labels(change.state.value).inc()
            log.warning("content.state_changed", item=change.item_key, state=change.state, reason=change.reason)
        if changes:
            self._wake()
        return len(changes)

    def _item_recorded(self, status: ItemStatus, reused: bool) -> None:
        self.metrics.items.labels(status.value).inc()
        if reused:
            self.metrics.reused.inc()

    def _announce(self, new: NewFindings) -> None:
        findings: Sequence[FindingRow] = new.findings
        if findings:
            self._wake()
        for f in findings:
            self.metrics.findings.labels(f.list_name, str(f.retroactive).lower()).inc()
            log.warning(
                "finding.created",
                item=f.item_key,
                path=new.path,
                root=new.root,
                list=f.list_name,
                entry=f.entry_id,
                signal_type=f.signal_type,
                distance=f.distance,
                retroactive=f.retroactive,
            )

    def _wake(self) -> None:
        if self.delivery is not None:
            self.delivery.wake()

    # -- health --------------------------------------------------------------
    def health(self) -> HealthState:
        status = (
            HealthStatus.STOPPING
            if self.scheduler.stopping
            else HealthStatus.OK
            if self.ready.is_set()
            else HealthStatus.STARTING
        )
        return HealthState(
            status=status,
            node=self.node,
            uptime_s=time.monotonic() - self.started,
            targets=self.scheduler.scheduled_count,
            lists=self.catalog.summaries,
            last_list_sync=self.last_list_sync,
            polls_running=self.scheduler.running,
        )
