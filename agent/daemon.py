"""The long-running agent: watches targets on a schedule, keeps lists fresh,
records what it saw, and serves /healthz and /metrics.

State lives in the store (SQLite by default, PostgreSQL for several agents);
the APScheduler job store stays in memory and is rebuilt from the targets table
at start and whenever `dweb-agent targets` changes it."""

from __future__ import annotations

import asyncio
import contextvars
import random
import socket
import time
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import aiohttp
import structlog
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger
from prometheus_client import CollectorRegistry

from agent import __version__
from agent.ipfs.probe import ContentProbe
from agent.alerts.delivery import WebhookDelivery
from agent.alerts.events import FindingOutbox, ItemContext, content_changed, finding_retracted
from agent.model.time import utcnow
from agent.config import Settings
from agent.lists.catalog import ListCatalog
from agent.lists.matcher import MatchIndex
from agent.lists.sync import ListSyncer, SyncState, TcapSourceConfig
from agent.media import MediaHasher
from agent.net.guard import NetGuard
from agent.model.report import ItemReport, ScanReport
from agent.pipeline import KnownItem, Scanner, finding_from_match, list_thresholds, media_hasher
from agent.model.status import ItemState
from agent.store import DuplicateTarget, FindingRow, ItemRow, ListStateRow, LocationRow, Store, TargetRow
from agent.model.target import Target
from agent.sources.targets import parse_watch_target
from agent.watch import PollContext, classify_target, examined, poll
from agent.runtime import process as _process
from agent.runtime.errors import DaemonError as DaemonError  # shim: issue-10 integration removes
from agent.runtime.health import HealthState, HealthStatus
from agent.runtime.metrics import Metrics
from agent.runtime.polls import PollDone as _PollDone
from agent.runtime.polls import PollResult
from agent.runtime.schedule import JitteredInterval, backoff_delay

log = structlog.get_logger(__name__)


class StoreHooks:
    """Makes scans incremental and durable: known CIDs are not fetched again,
    each item and its findings are written as soon as it is examined."""

    def __init__(self, agent: Agent, target: TargetRow | None) -> None:
        self.agent = agent
        self.target = target

    async def known(self, key: str) -> KnownItem | None:
        row = (await self.agent.store.get_items([key])).get(key)
        if row is None or not examined(row.status, row.signals):
            return None
        return KnownItem(row.key, row.size, row.media_type, row.signals, row.status)

    async def record(self, item: ItemReport, key: str | None, report: ScanReport) -> None:
        if key is None:  # local content has no content key; nothing to remember
            return
        self.agent.metrics.items.labels(item.status.value).inc()
        if item.seen_before:
            self.agent.metrics.reused.inc()
        row = ItemRow(
            key=key,
            status=ItemState(item.status.value),
            cid=item.cid,
            size=item.size,
            media_type=item.media_type,
            signals=item.signals,
        )
        target_id = self.target.id if self.target else None
        location = LocationRow(
            item_key=key, path=item.path, target_id=target_id, root_cid=report.root, gateway=item.source.gateway
        )
        findings = [FindingRow.from_finding(key, f) for f in item.findings]
        context = ItemContext(
            key=key,
            cid=item.cid,
            path=item.path,
            root=report.root,
            target_id=target_id,
            target_url=self.target.url if self.target else None,
            size=item.size,
            media_type=item.media_type,
            signals=item.signals,
            first_seen_at=utcnow(),
        )
        new = await self.agent.store.record_item(
            row, location, findings, outbox=FindingOutbox(context, self.agent.settings.gateways.urls)
        )
        self.agent.announce(new, item.path, report.root)

    async def record_directory(self, key: str, cid: str) -> None:
        await self.agent.store.record_directory(key, cid)


class _StateAdapter:
    """The list syncer's cursors (ETag, TCAP checkpoint) kept in the store."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def get(self, name: str) -> SyncState | None:
        row = await self.store.get_list_state(name)
        if row is None:
            return None
        return SyncState(row.name, row.source, row.etag, row.last_modified, row.checkpoint, row.content_hash)

    async def put(self, state: SyncState) -> None:
        await self.store.put_list_state(
            ListStateRow(
                name=state.name,
                source=state.source,
                etag=state.etag,
                last_modified=state.last_modified,
                checkpoint=state.checkpoint,
                content_hash=state.content_hash,
                updated_at=utcnow(),
            )
        )


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
        # Schedules (next runs, backoff, jitter) come from these, so tests can drive them.
        self._now = clock
        self._rng = rng if rng is not None else random.Random()
        self.registry = registry or CollectorRegistry(auto_describe=True)
        self.metrics = Metrics(self.registry)
        # Stable across restarts, so that an agent recognises the scans it left
        # running; two agents on one host sharing a database need distinct node_name.
        self.node = node or settings.agent.node_name or socket.gethostname()
        self.catalog = ListCatalog.empty()
        self.started = time.monotonic()
        self.last_list_sync: datetime | None = None
        self._stack = AsyncExitStack()
        self._scheduler: AsyncIOScheduler | None = None
        self._running: set[asyncio.Task[Any]] = set()
        self._stopping = False
        self._stop_task: asyncio.Task[None] | None = None
        self._hurry = asyncio.Event()  # set: the grace period ends now
        self._targets: dict[int, TargetRow] = {}
        self.delivery: WebhookDelivery | None = None
        self._delivery_stop = asyncio.Event()
        self._delivering: asyncio.Task[None] | None = None
        # Set once lists are loaded and targets scheduled.
        self.ready = asyncio.Event()
        self.store: Store
        self.http: aiohttp.ClientSession
        self.media: MediaHasher
        self.syncer: ListSyncer

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
        self.store = await Store.open(s.agent.database())
        self._stack.push_async_callback(self.store.close)
        interrupted = await self.store.interrupt_running_scans(self.node)
        if interrupted:
            log.warning("agent.scans_interrupted_earlier", count=interrupted)
        released = await self.store.release_leases(self.node)
        if released:
            log.warning("agent.deliveries_resumed", count=released)
        self.http = await self._stack.enter_async_context(
            aiohttp.ClientSession(headers={"User-Agent": f"dweb-agent/{__version__}"})
        )
        self.media = await self._stack.enter_async_context(media_hasher(s))
        tcap = [
            TcapSourceConfig(
                name=t.name,
                url=t.url,
                token=t.secret(),
                checkpoint_param=t.checkpoint_param,
                auth_scheme=t.auth_scheme,
                paging="next" if t.paging == "next" else "checkpoint",
            )
            for t in s.lists.tcap
        ]
        self.syncer = ListSyncer(
            s.lists.sources,
            tcap,
            http=self.http,
            state=_StateAdapter(self.store),
            thresholds=list_thresholds(s),
            max_bytes=s.lists.max_list_bytes,
        )
        for declared in s.targets:
            await self.add_target(declared.url, declared.interval_s)
        a = s.alerts
        self.delivery = await self._stack.enter_async_context(
            WebhookDelivery(
                self.store,
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
        from agent.services.targets import TargetsService  # at the top once daemon.py is split (issue 10)

        # The CLI's policy too: a target watched already comes back as it is.
        added = await TargetsService(self.store, self.settings.schedule.default_interval_s).add(url, interval_s)
        return added.target

    async def shutdown(self) -> None:
        await self.stop_taking_work()
        await self._stack.aclose()

    # -- scheduling --------------------------------------------------------
    async def serve(self, stop: asyncio.Event) -> None:
        """Run until `stop` is set, then let running polls finish within the grace period."""
        await self.refresh_lists()
        scheduler = self._scheduler = AsyncIOScheduler(timezone=UTC)
        sched = self.settings.schedule
        scheduler.add_job(
            self._tracked(self.refresh_lists),
            IntervalTrigger(seconds=sched.lists_interval_s),
            id="lists",
            max_instances=1,
            coalesce=True,
            misfire_grace_time=sched.misfire_grace_s,
        )
        scheduler.add_job(
            self._tracked(self.reconcile),
            IntervalTrigger(seconds=sched.reconcile_interval_s),
            id="reconcile",
            max_instances=1,
            coalesce=True,
            misfire_grace_time=sched.misfire_grace_s,
        )
        scheduler.add_job(
            self._tracked(self.recheck_content, True),
            IntervalTrigger(seconds=self.settings.alerts.recheck_interval_s),
            id="recheck",
            max_instances=1,
            coalesce=True,
            misfire_grace_time=sched.misfire_grace_s,
        )
        scheduler.start()
        await self.reconcile()
        assert self.delivery is not None
        self._delivering = asyncio.create_task(self.delivery.run(self._delivery_stop))
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
        self._stopping = True
        if self._stop_task is None:
            self._stop_task = asyncio.create_task(self._stop_work())
        await asyncio.shield(self._stop_task)

    async def _stop_work(self) -> None:
        scheduler = self._scheduler
        if scheduler is not None and scheduler.running:
            # Paused, not shut down: APScheduler's shutdown cancels the jobs it runs,
            # and a running poll gets the grace period first.
            scheduler.pause()
        self._delivery_stop.set()
        grace = self.settings.agent.shutdown_grace_s
        jobs = {t for t in self._running if not t.done()}
        waiting = set(jobs)
        if self._delivering is not None and not self._delivering.done():
            # Deliveries in flight finish too (their leases would otherwise hold them until expiry).
            waiting.add(self._delivering)
        if jobs:
            log.info("agent.waiting_for_polls", running=len(jobs), grace_s=grace)
        if waiting:
            every = asyncio.ensure_future(asyncio.wait(waiting))
            hurry = asyncio.ensure_future(self._hurry.wait())
            await asyncio.wait([every, hurry], timeout=grace, return_when=asyncio.FIRST_COMPLETED)
            every.cancel()  # only the waiting: the polls themselves are cancelled below
            hurry.cancel()
            late = {t for t in waiting if not t.done()}
            for task in late:
                task.cancel()
            if late:
                await asyncio.gather(*late, return_exceptions=True)
            if late & jobs:
                log.warning("agent.polls_cancelled", count=len(late & jobs), grace_s=grace)
        if scheduler is not None and scheduler.running:
            scheduler.shutdown(wait=False)

    def hurry(self) -> None:
        """End the grace period of a stop now (a second SIGTERM or Ctrl-C)."""
        self._hurry.set()

    def _tracked(self, fn: Callable[..., Awaitable[Any]], *args: Any) -> Callable[[], Awaitable[None]]:
        """A scheduler job that runs `fn` as a task of the agent's own, which the
        scheduler never cancels: stop_taking_work gives it the grace period."""

        async def run() -> None:
            if self._stopping:
                return
            # A fresh context: APScheduler arms its timers from whichever task last
            # touched it, and a job started from that timer would inherit that task's
            # bound log context (one poll's target_id and scan_id on every later line).
            job = asyncio.create_task(self._run_job(fn, *args), context=contextvars.Context())
            self._running.add(job)
            job.add_done_callback(self._running.discard)
            try:
                await asyncio.wait([job])  # the job logs its own failure; wait() never raises it
            except asyncio.CancelledError:
                # The scheduler was shut down under the job: stop_taking_work owns it
                # now. Ending quietly keeps APScheduler from logging a traceback.
                return

        return run

    async def _run_job(self, fn: Callable[..., Awaitable[Any]], *args: Any) -> None:
        try:
            await fn(*args)
        except Exception:
            log.exception("agent.job_failed", job=getattr(fn, "__name__", "job"))

    async def reconcile(self) -> None:
        """Make the scheduler's jobs match the targets table."""
        if self._scheduler is None or self._stopping:
            return
        targets = {t.id: t for t in await self.store.list_targets(enabled_only=True)}
        self.metrics.targets.set(len(targets))
        for target_id in set(self._targets) - set(targets):
            if self._scheduler.get_job(f"target:{target_id}"):
                self._scheduler.remove_job(f"target:{target_id}")
            log.info("target.unscheduled", target_id=target_id)
        sched = self.settings.schedule
        for target_id, target in targets.items():
            old = self._targets.get(target_id)
            if old is not None and old.interval_s == target.interval_s:
                continue
            job_id = f"target:{target_id}"
            if self._scheduler.get_job(job_id):
                self._scheduler.remove_job(job_id)
            now = self._now()
            first = target.next_run_at if target.next_run_at and target.next_run_at > now else now
            self._scheduler.add_job(
                self._tracked(self.poll_target, target_id),
                JitteredInterval(target.interval_s, target.interval_s * sched.jitter_fraction, self._rng),
                id=job_id,
                max_instances=1,
                coalesce=True,
                misfire_grace_time=sched.misfire_grace_s,
                next_run_time=first,
            )
            log.info(
                "target.scheduled",
                target_id=target_id,
                kind=target.kind,
                interval_s=target.interval_s,
                first_run=first.isoformat(),
            )
        self._targets = targets

    def _backoff(self, target: TargetRow, failures: int) -> datetime:
        sched = self.settings.schedule
        return self._now() + timedelta(
            seconds=backoff_delay(target.interval_s, failures, sched.max_backoff_s, sched.jitter_fraction, self._rng)
        )

    # -- work --------------------------------------------------------------
    def scanner(self, target: TargetRow | None) -> Scanner:
        return Scanner(
            self.settings, catalog=self.catalog, media=self.media, http=self.http, hooks=StoreHooks(self, target)
        )

    async def poll_target(self, target_id: int, *, scheduled: bool = True) -> PollResult:
        """One poll. A scheduled poll first claims the target, so that agents sharing a
        database poll each target once per interval; a manual poll (`scheduled=False`) does not."""
        target = await self.store.get_target(target_id)
        if target is None or not target.enabled:
            return PollResult(target_id, True, "target removed")
        if scheduled and not await self.store.claim_poll(target_id, self.node, min_gap_s=target.interval_s / 2):
            return PollResult(target_id, True, "another agent polled this target less than half an interval ago")
        spec: Target = parse_watch_target(target.url)
        started = time.monotonic()
        scan_id = await self.store.start_scan(target_id, target.url, node=self.node)
        # Bound for this poll's lines only (the scan's, its findings'): the binding
        # ends with the block, and nothing that outlives the poll is started in it.
        with structlog.contextvars.bound_contextvars(target_id=target_id, scan_id=scan_id):
            result = await self._poll(target, spec, scan_id)
        self.metrics.polls.labels(spec.kind.value, "ok" if result.error is None else "failed").inc()
        self.metrics.poll_seconds.labels(spec.kind.value).observe(time.monotonic() - started)
        if (
            result.next_run is not None
            and self._scheduler is not None
            and self._scheduler.get_job(f"target:{target_id}")
        ):
            # Outside the poll's log context: APScheduler arms its timer from the calling task.
            self._scheduler.modify_job(f"target:{target_id}", next_run_time=result.next_run)
        if result.error is None:
            log.info("target.polled", target_id=target_id, scan_id=scan_id, kind=spec.kind.value, note=result.note)
        else:
            log.warning(
                "target.poll_failed", target_id=target_id, scan_id=scan_id, kind=spec.kind.value, error=result.error
            )
        return PollResult(target_id, result.error is None, result.note, result.error)

    async def _poll(self, target: TargetRow, spec: Target, scan_id: int) -> _PollDone:
        """Run one poll and record how it ended; a cancelled poll is marked interrupted
        (which releases its claim, so the next agent to start polls it at once)."""
        ctx = PollContext(self.settings, self.http, lambda: self.scanner(target), StoreHooks(self, target).known)
        state = target.state
        summary: dict[str, Any] = {}
        try:
            outcome = await poll(ctx, spec, target.state)
        except asyncio.CancelledError:
            log.warning("target.poll_interrupted", kind=spec.kind.value)
            await self.store.finish_scan(
                scan_id, "interrupted", root_cid=state.get("root"), error="agent stopped during the poll"
            )
            self.metrics.polls.labels(spec.kind.value, "interrupted").inc()
            raise
        except Exception as exc:  # a failing target never stops the others
            error: str | None = f"{type(exc).__name__}: {exc}"
            note = ""
        else:
            state, note, error = outcome.state, outcome.note, outcome.failed
            summary = {"reports": [r.summary() for r in outcome.reports], "note": note}
        await self.store.finish_scan(
            scan_id, "ok" if error is None else "failed", root_cid=state.get("root"), summary=summary, error=error
        )
        if error is None:
            next_run = self._now() + timedelta(seconds=target.interval_s)
        else:
            next_run = self._backoff(target, target.consecutive_failures + 1)
        await self.store.record_poll(target.id, ok=error is None, error=error, next_run_at=next_run, state=state)
        return _PollDone(note, error, next_run if error is not None else None)

    def announce(self, findings: list[FindingRow], path: str, root: str | None) -> None:
        if findings and self.delivery is not None:
            self.delivery.wake()
        for f in findings:
            self.metrics.findings.labels(f.list_name, str(f.retroactive).lower()).inc()
            log.warning(
                "finding.created",
                item=f.item_key,
                path=path,
                root=root,
                list=f.list_name,
                entry=f.entry_id,
                signal_type=f.signal_type,
                distance=f.distance,
                retroactive=f.retroactive,
            )

    async def refresh_lists(self) -> None:
        result = await self.syncer.refresh()
        for error in result.errors:
            log.warning("lists.source_failed", error=error)
        self.metrics.list_syncs.labels("error" if result.errors else "ok").inc()
        self.last_list_sync = utcnow()
        if not result.changed:
            return
        self.catalog = result.catalog  # scans already running keep the catalog they started with
        latest = {v.name: v.content_hash for v in await self.store.latest_list_versions()}
        fresh = {v.name for v in result.versions if latest.get(v.name) != (v.content_hash or "")}
        for summary in result.catalog.summaries:
            self.metrics.list_entries.labels(summary.name).set(summary.entries)
        for name, entry_ids in result.removed.items():
            if entry_ids:
                await self.retract_deleted(name, list(entry_ids))
        added = {name: entries for name, entries in result.added.items() if entries and name in fresh}
        log.info(
            "lists.updated",
            lists=[s.name for s in result.catalog.summaries],
            new_versions=sorted(fresh),
            added={k: len(v) for k, v in added.items()},
        )
        if added:
            await self.rematch(added)
        # Recorded only once its retroactive pass is done: an agent stopped half way
        # through sees the version as new after a restart and matches it again.
        for v in result.versions:
            await self.store.record_list_version(
                v.name, v.source, v.content_hash or "", v.entries, v.deny_rules, v.problems
            )

    async def retract_deleted(self, list_name: str, entry_ids: list[str]) -> list[int]:
        """Entries deleted upstream (a TCAP deletion, a line removed from a list): their findings are retracted."""
        subs = await self.store.list_subscriptions()
        at = utcnow()
        done = await self.store.retract_entries(
            list_name,
            entry_ids,
            f"entry deleted from {list_name}",
            lambda f, recipients: finding_retracted(
                f, "entry_deleted", f"deleted from {list_name}", subs, recipients, at
            ),
        )
        if done:
            log.warning("findings.retracted", list=list_name, findings=done, reason="entry_deleted")
            if self.delivery is not None:
                self.delivery.wake()
        return done

    async def recheck_content(self, scheduled: bool = False) -> int:
        """Takedown tracking: probe matched content; a change of state is an event.

        A scheduled round is claimed once per interval across the agents sharing the
        database (a unique job slot), so two agents never probe and announce the same
        change; a manual call (`scheduled=False`) always runs."""
        if not self.settings.gateways.urls:
            return 0
        if scheduled:
            interval = self.settings.alerts.recheck_interval_s
            if not await self.store.claim_slot("recheck", int(time.time() // interval), self.node):
                return 0
            await self.store.prune_slots(utcnow() - timedelta(days=7))
        probe = ContentProbe(
            self.http, self.settings.gateways.urls, routing_url=self.settings.alerts.routing_url or None
        )
        changed = 0
        for key, cid, first_alert, _status in await self.store.watched_content():
            result = await probe.check(cid)
            if result.state == "unknown":
                continue  # our own outage must not look like a takedown
            detail = {
                "gateways": {url: {"status": a.status, "verdict": a.verdict} for url, a in result.gateways.items()},
                "providers": result.providers,
                "reason": result.reason,
            }
            subs = await self.store.list_subscriptions()
            at = utcnow()
            available = result.state == "available"
            prev, state = await self.store.set_content_state(
                key,
                result.state,
                first_alert_at=first_alert,
                detail=detail,
                follow_up=lambda recipients: content_changed(
                    key, cid, available, first_alert, at, detail, subs, recipients
                ),
            )
            if (prev or "available") != state:
                changed += 1
                self.metrics.content_changes.labels(state).inc()
                log.warning("content.state_changed", item=key, state=state, reason=result.reason)
        if changed and self.delivery is not None:
            self.delivery.wake()
        return changed

    async def rematch(self, added: dict[str, Any]) -> int:
        """Retroactive matching: stored signals against new list entries only, nothing fetched."""
        lists = [hl.with_entries(added[hl.name]) for hl in self.catalog.index.lists if hl.name in added]
        index = MatchIndex(lists)
        if len(index) == 0:
            return 0
        created = 0
        async for batch in self.store.iter_items_with_signals(batch=500):
            for item in batch:
                matches = index.match(item.signals.hashes)
                if item.signals.frames:
                    matches.extend(index.match_video(item.signals.frames))
                if not matches:
                    continue
                rows = [FindingRow.from_finding(item.key, finding_from_match(m), retroactive=True) for m in matches]
                locations = await self.store.locations_of(item.key)
                where = locations[0] if locations else None
                target = await self.store.get_target(where.target_id) if where and where.target_id is not None else None
                context = ItemContext(
                    key=item.key,
                    cid=item.cid,
                    path=where.path if where else "",
                    root=where.root_cid if where else None,
                    target_id=where.target_id if where else None,
                    target_url=target.url if target else None,
                    size=item.size,
                    media_type=item.media_type,
                    signals=item.signals.to_view(),
                    first_seen_at=item.first_seen_at,
                )
                new = await self.store.add_findings(
                    item.key, rows, retroactive=True, outbox=FindingOutbox(context, self.settings.gateways.urls)
                )
                created += len(new)
                self.announce(new, context.path, context.root)
        log.info("lists.rematched", lists=sorted(added), new_findings=created)
        return created

    # -- health --------------------------------------------------------------
    def health(self) -> HealthState:
        status = (
            HealthStatus.STOPPING
            if self._stopping
            else HealthStatus.OK
            if self.ready.is_set()
            else HealthStatus.STARTING
        )
        return HealthState(
            status=status,
            node=self.node,
            uptime_s=time.monotonic() - self.started,
            targets=len(self._targets),
            lists=self.catalog.summaries,
            last_list_sync=self.last_list_sync,
            polls_running=len([t for t in self._running if not t.done()]),
        )


run_daemon = partial(_process.run_daemon, agent_factory=Agent)  # shim: issue-10 integration removes
