"""The outbox worker: sends leased deliveries to webhooks, signed, with retries.

Events reach the outbox in the transaction that records what they announce
in the store; this worker only moves rows from "pending" to
"succeeded" / "failed" / "cancelled". Every attempt is audited by the store.
Delivery is at-least-once: a worker that dies mid-POST leaves its lease to
expire and the delivery is sent again, with the same `webhook-id`, so the
receiver can drop the duplicate. Within a valid lease a delivery is never sent
twice (see `_lease_still_safe`).

Outcomes of one attempt:

    2xx                          succeeded; the subscription's failure streak ends
    410 Gone                     cancelled; the subscription is disabled
    429 / 503 with Retry-After   retry after Retry-After (capped at the longest step)
    3xx, other status, timeout,
    connection error             retry at the next step of the schedule (±jitter)
    SSRF guard refuses the URL   retry on the schedule: a configuration problem (the error names
                                 `[alerts] allow_hosts` and the address refused); it never
                                 disables the subscription nor counts towards its failure streak
    schedule exhausted           failed; kept, `store.outbox.replay` sends it again
    failing > disable_after      subscription disabled ("failing since ...")

Pending deliveries of a disabled subscription stay pending: re-enabling it
sends them, so disabling never loses an alert."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from types import TracebackType
from typing import Final, Self

import aiohttp

from agent.alerts.queue import DeliveryQueue
from agent.alerts.schedule import DEFAULT_SCHEDULE, RetrySchedule
from agent.alerts.signing import event_body, webhook_headers
from agent.alerts.verdicts import GONE_REASON, Verdict, describe_error, guard_refusal, http_error
from agent.model.records import DeliveryJob
from agent.model.status import AttemptOutcome
from agent.model.time import utcnow
from agent.net.addresses import BlockedDestination
from agent.net.connector import guarded_request, guarded_session
from agent.net.guard import NetGuard
from agent.net.retry_after import parse_retry_after

__all__ = ["DEFAULT_SCHEDULE", "GONE_REASON", "DeliveryQueue", "OnResult", "WebhookDelivery"]

log = logging.getLogger(__name__)

# A delivery is only sent while its lease will outlive the request by this
# much: the store call that ends the lease must land before another worker
# may lease the row again.
_LEASE_MARGIN_S: Final = 5.0
# Response bodies are not needed (only the status is); reading a little keeps
# the connection reusable without letting a hostile endpoint stream forever.
_MAX_DRAIN: Final = 64 * 1024

OnResult = Callable[[str, float], None]


class WebhookDelivery:
    """``async with WebhookDelivery(store, guard, node) as worker: await worker.run(stop)``.

    One guarded aiohttp session serves the worker's whole life (connections
    to a platform are reused across deliveries). `now` is the scheduling
    clock (leases, next attempts, failure streaks, rotation grace; tests drive
    it). `signing_clock` stamps `webhook-timestamp`: receivers check it against
    their own wall clock, so it stays the real time even under a test clock."""

    def __init__(
        self,
        store: DeliveryQueue,
        guard: NetGuard,
        node: str,
        *,
        timeout_s: float = 15.0,
        schedule: Sequence[timedelta] = DEFAULT_SCHEDULE,
        jitter: float = 0.2,
        disable_after: timedelta = timedelta(days=5),
        lease_s: float = 60.0,
        batch: int = 100,
        now: Callable[[], datetime] = utcnow,
        signing_clock: Callable[[], datetime] = utcnow,
        rng: random.Random | None = None,
        on_result: OnResult | None = None,
    ) -> None:
        self._schedule = RetrySchedule(tuple(schedule), jitter)  # raises on an empty schedule or a bad jitter
        if lease_s < timeout_s + _LEASE_MARGIN_S:
            # Otherwise a lease could expire mid-request and another worker
            # would send the same delivery while we still wait for an answer.
            raise ValueError(f"lease_s must be at least timeout_s + {_LEASE_MARGIN_S:g}")
        self._store = store
        self._guard = guard
        self._node = node
        self._timeout_s = timeout_s
        self._disable_after = disable_after
        self._lease_s = lease_s
        self._batch = batch
        self._now = now
        self._signing_clock = signing_clock
        self._rng = rng if rng is not None else random.Random()  # noqa: S311 - jitter, not a secret
        self._on_result = on_result
        self._session: aiohttp.ClientSession | None = None
        self._wake = asyncio.Event()
        # Per subscription: the limit its semaphore was made with, the
        # semaphore, and how many leased jobs (sending or waiting) it holds.
        self._sems: dict[int, tuple[int, asyncio.Semaphore]] = {}
        self._held: dict[int, int] = {}
        self._tasks: set[asyncio.Task[bool]] = set()

    # -------------------------------------------------------------- lifetime

    async def __aenter__(self) -> Self:
        self._session = guarded_session(self._guard, timeout=aiohttp.ClientTimeout(total=self._timeout_s))
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        # Cancelled sends keep their lease until it expires and are then sent
        # again by whoever leases them: at-least-once, never lost.
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
            self._session = None

    def wake(self) -> None:
        """New events are in the outbox: lease now instead of at the next idle tick."""
        self._wake.set()

    # ---------------------------------------------------------------- loops

    async def run_once(self) -> int:
        """Lease what is due, send all of it concurrently, wait for the answers.

        Returns the number of attempts made (a delivery whose lease ran out
        while it waited for its subscription's slot is left for re-lease and
        not counted)."""
        tasks = await self._dispatch()
        if not tasks:
            return 0
        return sum(await asyncio.gather(*tasks))

    async def run(self, stop: asyncio.Event, idle_s: float = 1.0) -> None:
        """Deliver until `stop` is set. Unlike run_once this never waits for a
        slow endpoint: sends run as tasks and leasing goes on beside them."""
        stopping = asyncio.ensure_future(stop.wait())
        try:
            while not stop.is_set():
                self._wake.clear()
                try:
                    started = await self._dispatch()
                except Exception:
                    # A database hiccup must not end the worker: nothing was
                    # sent, the rows are still pending; try again next tick.
                    log.exception("leasing webhook deliveries failed")
                    started = []
                if len(started) >= self._batch:
                    continue  # more may be due right now
                waking = asyncio.ensure_future(self._wake.wait())
                try:
                    await asyncio.wait({waking, stopping}, timeout=idle_s, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    waking.cancel()
        finally:
            stopping.cancel()
            # Let in-flight sends finish (bounded by timeout_s) so their
            # outcome is recorded rather than re-sent after the lease expires.
            if self._tasks:
                await asyncio.gather(*self._tasks, return_exceptions=True)

    # ------------------------------------------------------------- leasing

    def _semaphore(self, subscription_id: int, limit: int) -> asyncio.Semaphore:
        limit = max(1, limit)
        current = self._sems.get(subscription_id)
        # A changed max_in_flight takes effect once the old slots are free.
        if current is None or (current[0] != limit and not self._held.get(subscription_id)):
            current = (limit, asyncio.Semaphore(limit))
            self._sems[subscription_id] = current
        return current[1]

    def _full(self) -> list[int]:
        return [sid for sid, (limit, _) in self._sems.items() if self._held.get(sid, 0) >= limit]

    async def _dispatch(self) -> list[asyncio.Task[bool]]:
        if self._session is None:
            raise RuntimeError("use `async with WebhookDelivery(...)` before delivering")
        # Subscriptions whose slots are all taken are skipped: their rows stay
        # unleased (free for another node) instead of queueing here.
        jobs = await self._store.outbox.lease(
            self._node, limit=self._batch, lease_s=self._lease_s, now=self._now(), skip_subscriptions=self._full()
        )
        leased_at = time.monotonic()
        started = []
        for job in jobs:
            sid = job.subscription.id
            sem = self._semaphore(sid, job.subscription.max_in_flight)
            self._held[sid] = self._held.get(sid, 0) + 1
            task = asyncio.create_task(self._deliver(job, sem, leased_at), name=f"webhook-delivery-{job.delivery.id}")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            started.append(task)
        return started

    def _lease_still_safe(self, leased_at: float) -> bool:
        return time.monotonic() - leased_at + self._timeout_s + _LEASE_MARGIN_S <= self._lease_s

    # ------------------------------------------------------------- sending

    async def _deliver(self, job: DeliveryJob, sem: asyncio.Semaphore, leased_at: float) -> bool:
        sid = job.subscription.id
        try:
            async with sem:
                if not self._lease_still_safe(leased_at):
                    # Waited too long for a slot: sending now could overlap a
                    # re-lease by another worker. Leave it; the lease expires
                    # and the row is due again (no attempt is counted).
                    log.info("delivery %s waited past its lease; left for re-lease", job.delivery.id)
                    return False
                started = time.monotonic()
                verdict = await self._attempt(job)
                elapsed = time.monotonic() - started
                await self._record(job, verdict, elapsed)
                if self._on_result is not None:
                    self._on_result(verdict.outcome.value, elapsed)
                return True
        except asyncio.CancelledError:
            raise
        except Exception:
            # The store failed while recording: the lease expires and the
            # delivery is attempted again. Never let one job end the worker.
            log.exception("delivery %s: recording the attempt failed", job.delivery.id)
            return True
        finally:
            held = self._held.get(sid, 0) - 1
            if held > 0:
                self._held[sid] = held
            else:
                self._held.pop(sid, None)
            self._wake.set()  # a slot is free: rows skipped for it may be due

    async def _attempt(self, job: DeliveryJob) -> Verdict:
        if self._session is None:
            raise RuntimeError("use `async with WebhookDelivery(...)` before delivering")
        sub = job.subscription
        attempt = job.delivery.attempts + 1
        body = event_body(job.event)
        try:
            headers = webhook_headers(job.event.id, body, sub.secrets(self._now()), self._signing_clock())
        except ValueError as exc:
            # A broken secret will not fix itself; stop and tell the operator.
            return Verdict(AttemptOutcome.FAILED, None, str(exc), disable=str(exc))
        headers["Content-Type"] = "application/json"
        try:
            async with guarded_request(
                self._session, self._guard, "POST", sub.url, data=body.encode("utf-8"), headers=headers
            ) as resp:
                status = resp.status
                retry_after = resp.headers.get("Retry-After")
                with contextlib.suppress(aiohttp.ClientError, asyncio.TimeoutError):
                    await resp.content.read(_MAX_DRAIN)
        except BlockedDestination as exc:
            # The operator's configuration decides (a config without the
            # allow_hosts entry, a `webhooks test` run with another config):
            # retry on the schedule, so fixing the config is enough.
            return self._retry(attempt, None, guard_refusal(exc), endpoint_failed=False)
        except TimeoutError:
            return self._retry(attempt, None, f"timed out after {self._timeout_s:g} s")
        except aiohttp.ClientError as exc:
            return self._retry(attempt, None, describe_error(exc, sub.url))
        if 200 <= status < 300:
            return Verdict(AttemptOutcome.SUCCEEDED, status, None)
        if status == 410:
            return Verdict(AttemptOutcome.CANCELLED, status, GONE_REASON, disable=GONE_REASON)
        # Only these two statuses mean "come back then"; the schedule caps the wait, so a
        # hostile or confused endpoint cannot park an alert for a year.
        retry_after_s = parse_retry_after(retry_after) if status in (429, 503) else None
        return self._retry(attempt, status, http_error(status), retry_after_s)

    def _retry(
        self,
        attempt: int,
        status: int | None,
        error: str,
        retry_after_s: float | None = None,
        *,
        endpoint_failed: bool = True,
    ) -> Verdict:
        wait = self._schedule.wait_after(attempt, self._rng, retry_after_s)
        if wait is None:
            return Verdict(
                AttemptOutcome.FAILED,
                status,
                f"{error}; gave up after {attempt} attempts",
                endpoint_failed=endpoint_failed,
            )
        return Verdict(AttemptOutcome.RETRY, status, error, next_at=self._now() + wait, endpoint_failed=endpoint_failed)

    async def _record(self, job: DeliveryJob, verdict: Verdict, elapsed: float) -> None:
        sub = job.subscription
        await self._store.outbox.record_attempt(
            job.delivery.id,
            outcome=verdict.outcome.value,
            http_status=verdict.status,
            error=verdict.error,
            duration_ms=round(elapsed * 1000),
            next_attempt_at=verdict.next_at,
        )
        if verdict.outcome is AttemptOutcome.SUCCEEDED:
            if sub.failing_since is not None:
                await self._store.subscriptions.set_failing_since(sub.id, None)
            return
        log.warning(
            "webhook subscription %s, delivery %s: %s (%s)",
            sub.id,
            job.delivery.id,
            verdict.error,
            verdict.outcome.value,
        )
        if verdict.disable is not None:
            await self._disable(sub.id, verdict.disable)
            return
        if not verdict.endpoint_failed:
            return
        now = self._now()
        if sub.failing_since is None:
            await self._store.subscriptions.set_failing_since(sub.id, now)
        elif now - sub.failing_since > self._disable_after:
            await self._disable(sub.id, f"failing since {sub.failing_since.isoformat()}")

    async def _disable(self, subscription_id: int, reason: str) -> None:
        log.warning("webhook subscription %s disabled: %s", subscription_id, reason)
        await self._store.subscriptions.set_enabled(subscription_id, False, reason)
