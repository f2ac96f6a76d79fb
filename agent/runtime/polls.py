"""One poll of a target, as the scheduler runs it: claim, scan record, the poll itself
(agent.services.polling), next run or backoff from the injected clock and random source,
metrics and the target.* log lines."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import structlog

from agent.runtime.schedule import backoff_delay
from agent.services.polling import PollContext, poll
from agent.sources.targets import parse_watch_target

if TYPE_CHECKING:
    import aiohttp

    from agent.config import Settings
    from agent.model.target import Target
    from agent.pipeline import Scanner
    from agent.runtime.metrics import Metrics
    from agent.services.recording import ItemRecorder
    from agent.store import Store, TargetRow

log = structlog.get_logger("agent.daemon")  # the name operators' log filters already use


@dataclass(frozen=True)
class PollDone:
    """A poll recorded in the store; next_run is set when the scheduler must be told (a backoff)."""

    note: str
    error: str | None
    next_run: datetime | None


@dataclass
class PollResult:
    target_id: int
    ok: bool
    note: str
    error: str | None = None


class TargetPoller:
    def __init__(
        self,
        settings: Settings,
        store: Store,
        http: aiohttp.ClientSession,
        *,
        node: str,
        metrics: Metrics,
        clock: Callable[[], datetime],
        rng: random.Random,
        scanner: Callable[[TargetRow], Scanner],
        recorder: Callable[[TargetRow], ItemRecorder],
        rearm: Callable[[int, datetime], None],
    ) -> None:
        self._settings = settings
        self._store = store
        self._http = http
        self._node = node
        self._metrics = metrics
        self._now = clock
        self._rng = rng
        self._scanner = scanner
        self._recorder = recorder
        self._rearm = rearm

    async def poll_target(self, target_id: int, *, scheduled: bool = True) -> PollResult:
        """One poll. A scheduled poll first claims the target, so that agents sharing a
        database poll each target once per interval; a manual poll (`scheduled=False`) does not."""
        store = self._store
        target = await store.targets.get(target_id)
        if target is None or not target.enabled:
            return PollResult(target_id, True, "target removed")
        if scheduled and not await store.targets.claim_poll(target_id, self._node, min_gap_s=target.interval_s / 2):
            return PollResult(target_id, True, "another agent polled this target less than half an interval ago")
        spec = parse_watch_target(target.url)
        started = time.monotonic()
        scan_id = await store.scans.start(target_id, target.url, node=self._node)
        # Bound for this poll's lines only (the scan's, its findings'): the binding
        # ends with the block, and nothing that outlives the poll is started in it.
        with structlog.contextvars.bound_contextvars(target_id=target_id, scan_id=scan_id):
            result = await self._poll(target, spec, scan_id)
        kind = spec.kind.value
        self._metrics.polls.labels(kind, "ok" if result.error is None else "failed").inc()
        self._metrics.poll_seconds.labels(kind).observe(time.monotonic() - started)
        if result.next_run is not None:
            # Outside the poll's log context: APScheduler arms its timer from the calling task.
            self._rearm(target_id, result.next_run)
        if result.error is None:
            log.info("target.polled", target_id=target_id, scan_id=scan_id, kind=kind, note=result.note)
        else:
            log.warning("target.poll_failed", target_id=target_id, scan_id=scan_id, kind=kind, error=result.error)
        return PollResult(target_id, result.error is None, result.note, result.error)

    async def _poll(self, target: TargetRow, spec: Target, scan_id: int) -> PollDone:
        """Run one poll and record how it ended; a cancelled poll is marked interrupted
        (which releases its claim, so the next agent to start polls it at once)."""
        ctx = PollContext(self._settings, self._http, lambda: self._scanner(target), self._recorder(target).known)
        state = target.state
        summary: dict[str, Any] = {}  # the scan's JSON column
        try:
            outcome = await poll(ctx, spec, target.state)
        except asyncio.CancelledError:
            log.warning("target.poll_interrupted", kind=spec.kind.value)
            await self._store.scans.finish(
                scan_id, "interrupted", root_cid=state.get("root"), error="agent stopped during the poll"
            )
            self._metrics.polls.labels(spec.kind.value, "interrupted").inc()
            raise
        except Exception as exc:  # noqa: BLE001 -- a failing target never stops the others; the error is recorded
            error: str | None = f"{type(exc).__name__}: {exc}"
            note = ""
        else:
            state, note, error = outcome.state, outcome.note, outcome.failed
            summary = {"reports": [r.summary() for r in outcome.reports], "note": note}
        await self._store.scans.finish(
            scan_id, "ok" if error is None else "failed", root_cid=state.get("root"), summary=summary, error=error
        )
        if error is None:
            next_run = self._now() + timedelta(seconds=target.interval_s)
        else:
            next_run = self._backoff(target, target.consecutive_failures + 1)
        await self._store.targets.record_poll(
            target.id, ok=error is None, error=error, next_run_at=next_run, state=state
        )
        return PollDone(note, error, next_run if error is not None else None)

    def _backoff(self, target: TargetRow, failures: int) -> datetime:
        sched = self._settings.schedule
        return self._now() + timedelta(
            seconds=backoff_delay(target.interval_s, failures, sched.max_backoff_s, sched.jitter_fraction, self._rng)
        )
