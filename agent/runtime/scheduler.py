"""When work runs: the APScheduler jobs (lists, reconcile, recheck, one per target), the
tasks they run, and the graceful stop that gives running work its grace period.

Each job runs as a task of the scheduler's own, in a fresh context, which APScheduler
never cancels: `stop` pauses the scheduler (it does not shut it down, which would cancel
the jobs it runs), waits out the grace period or a `hurry()`, then cancels what is left."""

from __future__ import annotations

import asyncio
import contextvars
import random
from collections.abc import Awaitable, Callable, Collection, Sequence
from datetime import UTC, datetime
from typing import Any

import structlog
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from agent.config import ScheduleSettings
from agent.runtime.schedule import JitteredInterval
from agent.store import TargetRow

log = structlog.get_logger("agent.daemon")  # the name operators' log filters already use

Job = Callable[..., Awaitable[object]]


def _job_id(target_id: int) -> str:
    return f"target:{target_id}"


class Scheduler:
    def __init__(self, settings: ScheduleSettings, *, clock: Callable[[], datetime], rng: random.Random) -> None:
        self._settings = settings
        self._now = clock
        self._rng = rng
        self._scheduler: AsyncIOScheduler | None = None
        self._running: set[asyncio.Task[None]] = set()
        self._stopping = False
        self._stop_task: asyncio.Task[None] | None = None
        self._hurry = asyncio.Event()  # set: the grace period ends now
        self._targets: dict[int, TargetRow] = {}

    # -- what /healthz reads -------------------------------------------------
    @property
    def stopping(self) -> bool:
        return self._stopping

    @property
    def running(self) -> int:
        """Jobs running now (polls, list refreshes, rechecks)."""
        return len([t for t in self._running if not t.done()])

    @property
    def scheduled_count(self) -> int:
        """Targets with a poll job."""
        return len(self._targets)

    @property
    def started(self) -> bool:
        """Whether serving has begun (jobs were added): a reconcile before that has nothing to do."""
        return self._scheduler is not None

    # -- jobs ----------------------------------------------------------------
    def start(self) -> None:
        self._sched().start()

    def _sched(self) -> AsyncIOScheduler:
        if self._scheduler is None:
            # Created in the running loop, never at import or construction.
            self._scheduler = AsyncIOScheduler(timezone=UTC)
        return self._scheduler

    def add_interval(self, job_id: str, seconds: int, fn: Job, *args: object) -> None:
        """Run `fn(*args)` every `seconds`, one at a time; a missed run is coalesced."""
        self._sched().add_job(
            self._tracked(fn, *args),
            IntervalTrigger(seconds=seconds),
            id=job_id,
            max_instances=1,
            coalesce=True,
            misfire_grace_time=self._settings.misfire_grace_s,
        )

    def reconcile(self, targets: Sequence[TargetRow], poll: Callable[[int], Awaitable[object]]) -> None:
        """Make the per-target jobs match `targets` (the enabled ones): new targets get a job
        (first run: their stored next run, or now), removed ones lose theirs, a changed
        interval re-creates it."""
        scheduler = self._sched()
        wanted = {t.id: t for t in targets}
        for target_id in set(self._targets) - set(wanted):
            if scheduler.get_job(_job_id(target_id)):
                scheduler.remove_job(_job_id(target_id))
            log.info("target.unscheduled", target_id=target_id)
        sched = self._settings
        for target_id, target in wanted.items():
            old = self._targets.get(target_id)
            if old is not None and old.interval_s == target.interval_s:
                continue
            job_id = _job_id(target_id)
            if scheduler.get_job(job_id):
                scheduler.remove_job(job_id)
            now = self._now()
            first = target.next_run_at if target.next_run_at and target.next_run_at > now else now
            scheduler.add_job(
                self._tracked(poll, target_id),
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
        self._targets = wanted

    def rearm(self, target_id: int, when: datetime) -> None:
        """Move a target's next poll (a backoff); nothing when it has no job (a manual poll).
        Call it outside a poll's log context: APScheduler arms its timer from the calling task."""
        if self._scheduler is not None and self._scheduler.get_job(_job_id(target_id)):
            self._scheduler.modify_job(_job_id(target_id), next_run_time=when)

    def _tracked(self, fn: Job, *args: object) -> Callable[[], Awaitable[None]]:
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
                # The scheduler was shut down under the job: stop() owns it now.
                # Ending quietly keeps APScheduler from logging a traceback.
                return

        return run

    async def _run_job(self, fn: Job, *args: object) -> None:
        try:
            await fn(*args)
        except Exception:
            log.exception("agent.job_failed", job=getattr(fn, "__name__", "job"))

    # -- stopping ------------------------------------------------------------
    async def stop(self, grace_s: float, also: Collection[asyncio.Task[Any]] = ()) -> None:
        """Take no new work; let running jobs (and the tasks `also`) finish within `grace_s`,
        then cancel what is left. Every caller waits for the same stop."""
        self._stopping = True
        if self._stop_task is None:
            self._stop_task = asyncio.create_task(self._stop(grace_s, also))
        await asyncio.shield(self._stop_task)

    def hurry(self) -> None:
        """End the grace period of a stop now (a second SIGTERM or Ctrl-C)."""
        self._hurry.set()

    async def _stop(self, grace_s: float, also: Collection[asyncio.Task[Any]]) -> None:
        scheduler = self._scheduler
        if scheduler is not None and scheduler.running:
            # Paused, not shut down: APScheduler's shutdown cancels the jobs it runs,
            # and a running poll gets the grace period first.
            scheduler.pause()
        jobs: set[asyncio.Task[Any]] = {t for t in self._running if not t.done()}
        waiting = jobs | {t for t in also if not t.done()}
        if jobs:
            log.info("agent.waiting_for_polls", running=len(jobs), grace_s=grace_s)
        if waiting:
            every = asyncio.ensure_future(asyncio.wait(waiting))
            hurry = asyncio.ensure_future(self._hurry.wait())
            await asyncio.wait([every, hurry], timeout=grace_s, return_when=asyncio.FIRST_COMPLETED)
            every.cancel()  # only the waiting: the jobs themselves are cancelled below
            hurry.cancel()
            late = {t for t in waiting if not t.done()}
            for task in late:
                task.cancel()
            if late:
                await asyncio.gather(*late, return_exceptions=True)
            if late & jobs:
                log.warning("agent.polls_cancelled", count=len(late & jobs), grace_s=grace_s)
        if scheduler is not None and scheduler.running:
            scheduler.shutdown(wait=False)
