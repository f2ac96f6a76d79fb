"""WebhookDelivery against a real receiver on 127.0.0.1 that verifies every
request with the `standardwebhooks` library, as a platform would.

The store is a SQLite file in tmp_path (one test also runs two workers on
PostgreSQL). Scheduling runs on a test clock (`Clock`: real time plus an
offset the test advances), so retry delays of hours cost nothing: advance the
clock, call run_once. No test sleeps; waits are on events the receiver sets."""

from __future__ import annotations

import asyncio
import email.utils
import ipaddress
import itertools
import logging
import os
import ssl
import time
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from aiohttp import web
from sqlalchemy.ext.asyncio import create_async_engine
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from agent.alerts.delivery import WebhookDelivery
from agent.alerts.schedule import DEFAULT_SCHEDULE
from agent.alerts.signing import event_body, new_secret, webhook_headers
from agent.alerts.verdicts import GONE_REASON
from agent.model.records import DeliveryRow, NewEvent, SubscriptionRow
from agent.net.guard import NetGuard
from agent.store import Store
from agent.store.schema import delivery_attempts
from tests.support.postgres import connect_admin
from tests.support.webhook_receiver import WebhookReceiver

GUARD = NetGuard(allow_hosts=frozenset({"127.0.0.1"}))
POSTGRES_URL = os.environ.get("DWEB_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")


class Clock:
    """A frozen scheduling clock, a minute ahead of the real time when the test
    starts: events the store writes with its real clock during the test are due
    at once, advancing jumps over retry delays, and a time the worker computed
    can be compared exactly with one the test reads later, however slow the
    machine is in between."""

    def __init__(self) -> None:
        self._start = datetime.now(UTC) + timedelta(seconds=60)
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        return self._start + self.offset

    def advance(self, delta: timedelta) -> None:
        self.offset += delta


@pytest.fixture
def secret() -> str:
    return new_secret()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def db_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'agent.db'}"


@pytest.fixture
async def store(db_url: str) -> AsyncIterator[Store]:
    s = await Store.open(db_url)
    yield s
    await s.close()


@pytest.fixture
async def receiver(secret: str) -> AsyncIterator[WebhookReceiver]:
    async with WebhookReceiver([secret]) as r:
        yield r


@pytest.fixture
async def worker(store: Store, clock: Clock) -> AsyncIterator[WebhookDelivery]:
    # jitter=0: the tests compute exact due times; jitter has its own test.
    async with WebhookDelivery(store, GUARD, "node-a", now=clock, jitter=0.0) as w:
        yield w


async def emit(store: Store, *subs: SubscriptionRow, n: int = 1, payload: dict[str, Any] | None = None) -> list[str]:
    ids = [f"evt_{uuid.uuid4().hex}" for _ in range(n)]
    await store.outbox.emit(
        [
            NewEvent(
                id=i,
                type="finding.created",
                payload=payload or {"cid": "bafy", "n": k},
                subscription_ids=tuple(s.id for s in subs),
            )
            for k, i in enumerate(ids)
        ]
    )
    return ids


async def only_delivery(store: Store, event_id: str) -> DeliveryRow:
    (row,) = await store.outbox.deliveries_of(event_id=event_id)
    return row


def close_to(a: datetime, b: datetime, seconds: float = 0.01) -> bool:
    return abs((a - b).total_seconds()) <= seconds


# ---------------------------------------------------------------- signing


async def test_delivery_is_signed_and_verified(
    store: Store, receiver: WebhookReceiver, worker: WebhookDelivery, secret: str
) -> None:
    sub = await store.subscriptions.add(receiver.url("/hook"), secret)
    (event_id,) = await emit(store, sub, payload={"cid": "bafyé", "labels": ["a", "b"]})

    assert await worker.run_once() == 1

    (got,) = receiver.received
    assert got.verified, got.error
    assert got.webhook_id == event_id
    assert got.headers["content-type"] == "application/json"
    (event,) = await store.outbox.events()
    assert got.body == event_body(event)
    assert Webhook(secret).verify(got.body, got.headers)["data"] == {"cid": "bafyé", "labels": ["a", "b"]}
    assert got.body.startswith('{"type":"finding.created","timestamp":"') and '"data":' in got.body
    row = await only_delivery(store, event_id)
    assert (row.status, row.attempts, row.last_status) == ("succeeded", 1, 204)


async def test_tampered_body_and_old_timestamp_fail_verification(
    store: Store, receiver: WebhookReceiver, worker: WebhookDelivery, secret: str
) -> None:
    sub = await store.subscriptions.add(receiver.url("/hook"), secret)
    await emit(store, sub)
    await worker.run_once()
    (got,) = receiver.received
    assert got.verified
    receiver.verify(got.body, got.headers)  # the genuine request passes

    tampered = got.body.replace('"cid":"bafy"', '"cid":"bafz"')
    assert tampered != got.body
    with pytest.raises(WebhookVerificationError, match="No matching signature"):
        receiver.verify(tampered, got.headers)
    with pytest.raises(WebhookVerificationError):
        receiver.verify(got.body, {**got.headers, "webhook-id": "evt_other"})

    stale = webhook_headers(got.webhook_id or "", got.body, [secret], datetime.now(UTC) - timedelta(minutes=6))
    with pytest.raises(WebhookVerificationError, match="too old"):
        receiver.verify(got.body, stale)
    fresh = webhook_headers(got.webhook_id or "", got.body, [secret], datetime.now(UTC))
    receiver.verify(got.body, fresh)


def test_secrets_never_reach_error_messages() -> None:
    secret = new_secret()
    assert secret.startswith("whsec_") and len(secret) == 6 + 44
    broken = "whsec_" + "%%%not-base64%%%"
    with pytest.raises(ValueError, match="not valid base64") as info:
        webhook_headers("evt_1", "{}", [broken], datetime.now(UTC))
    assert "not-base64" not in str(info.value) and info.value.__cause__ is None
    assert info.value.__suppress_context__
    with pytest.raises(ValueError, match="naive"):
        webhook_headers("evt_1", "{}", [secret], datetime.now())  # noqa: DTZ005 - the naive time under test


# ---------------------------------------------------------------- retries


async def test_retries_keep_the_id_and_refresh_the_timestamp(
    store: Store, receiver: WebhookReceiver, secret: str, clock: Clock, db_url: str
) -> None:
    # A signing clock that moves 2 s per attempt proves each attempt is
    # stamped afresh (real attempts here happen within the same second).
    ticks = itertools.count()
    base = datetime.now(UTC)

    def signing_clock() -> datetime:
        return base + timedelta(seconds=2 * next(ticks))

    receiver.script("/hook", statuses=[500, 500, 200])
    sub = await store.subscriptions.add(receiver.url("/hook"), secret)
    (event_id,) = await emit(store, sub)
    async with WebhookDelivery(store, GUARD, "node-a", now=clock, jitter=0.0, signing_clock=signing_clock) as w:
        assert await w.run_once() == 1
        row = await only_delivery(store, event_id)
        assert (row.status, row.attempts, row.last_status) == ("pending", 1, 500)
        assert close_to(row.next_attempt_at, clock() + DEFAULT_SCHEDULE[1])
        assert await w.run_once() == 0  # not due yet

        clock.advance(DEFAULT_SCHEDULE[1])
        assert await w.run_once() == 1
        row = await only_delivery(store, event_id)
        assert close_to(row.next_attempt_at, clock() + DEFAULT_SCHEDULE[2])

        clock.advance(DEFAULT_SCHEDULE[2])
        assert await w.run_once() == 1
        assert await w.run_once() == 0

    got = receiver.at("/hook")
    assert [r.status for r in got] == [500, 500, 200]
    assert {r.webhook_id for r in got} == {event_id}
    assert all(r.verified for r in got)
    assert len({r.body for r in got}) == 1  # same bytes every attempt
    stamps = [int(r.headers["webhook-timestamp"]) for r in got]
    assert stamps == sorted(stamps) and len(set(stamps)) == 3
    row = await only_delivery(store, event_id)
    assert (row.status, row.attempts, row.last_status, row.last_error) == ("succeeded", 3, 200, None)
    assert row.succeeded_at is not None

    # The audit trail: one row per attempt.
    engine = create_async_engine(db_url)
    try:
        async with engine.connect() as conn:
            audit = (
                await conn.execute(
                    sa.select(delivery_attempts.c.attempt, delivery_attempts.c.status)
                    .where(delivery_attempts.c.delivery_id == row.id)
                    .order_by(delivery_attempts.c.attempt)
                )
            ).all()
    finally:
        await engine.dispose()
    assert [tuple(a) for a in audit] == [(1, 500), (2, 500), (3, 200)]
    assert (await store.subscriptions.get(sub.id)).failing_since is None  # type: ignore[union-attr]


async def test_gone_disables_the_subscription(
    store: Store, receiver: WebhookReceiver, worker: WebhookDelivery, secret: str
) -> None:
    receiver.script("/gone", status=410)
    gone = await store.subscriptions.add(receiver.url("/gone"), secret)
    other = await store.subscriptions.add(receiver.url("/other"), secret)
    (first,) = await emit(store, gone, other)
    assert await worker.run_once() == 2

    rows = {r.subscription_id: r for r in await store.outbox.deliveries_of(event_id=first)}
    assert (rows[gone.id].status, rows[gone.id].last_status) == ("cancelled", 410)
    assert rows[other.id].status == "succeeded"
    after = await store.subscriptions.get(gone.id)
    assert after is not None and not after.enabled and after.disabled_reason == GONE_REASON

    (later,) = await emit(store, gone, other)
    assert await worker.run_once() == 1
    assert len(receiver.at("/gone")) == 1
    assert len(receiver.at("/other")) == 2
    rows = {r.subscription_id: r for r in await store.outbox.deliveries_of(event_id=later)}
    assert rows[gone.id].status == "pending"  # kept: re-enabling the subscription sends it


@pytest.mark.parametrize("status", [429, 503])
async def test_retry_after_delta_is_honoured(
    store: Store, receiver: WebhookReceiver, worker: WebhookDelivery, secret: str, clock: Clock, status: int
) -> None:
    receiver.script("/hook", statuses=[status], retry_after="120")
    sub = await store.subscriptions.add(receiver.url("/hook"), secret)
    (event_id,) = await emit(store, sub)
    assert await worker.run_once() == 1
    row = await only_delivery(store, event_id)
    assert (row.status, row.last_status) == ("pending", status)
    assert close_to(row.next_attempt_at, clock() + timedelta(seconds=120))
    clock.advance(timedelta(seconds=121))
    assert await worker.run_once() == 1
    assert (await only_delivery(store, event_id)).status == "succeeded"


async def test_retry_after_http_date_and_cap(
    store: Store, receiver: WebhookReceiver, worker: WebhookDelivery, secret: str, clock: Clock
) -> None:
    receiver.script("/date", status=429, retry_after=email.utils.formatdate(time.time() + 600, usegmt=True))
    receiver.script("/huge", status=503, retry_after=str(10**9))
    dated = await store.subscriptions.add(receiver.url("/date"), secret)
    huge = await store.subscriptions.add(receiver.url("/huge"), secret)
    (a,) = await emit(store, dated)
    (b,) = await emit(store, huge)
    assert await worker.run_once() == 2
    assert close_to((await only_delivery(store, a)).next_attempt_at, clock() + timedelta(seconds=600), 3)
    assert close_to((await only_delivery(store, b)).next_attempt_at, clock() + max(DEFAULT_SCHEDULE))


async def test_schedule_exhaustion_then_replay(
    store: Store,
    receiver: WebhookReceiver,
    worker: WebhookDelivery,
    secret: str,
    clock: Clock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="agent")
    receiver.script("/hook", status=500)
    sub = await store.subscriptions.add(receiver.url("/hook"), secret)
    (event_id,) = await emit(store, sub)
    (event,) = await store.outbox.events()

    for step in DEFAULT_SCHEDULE[1:]:
        assert await worker.run_once() == 1
        clock.advance(step)
    assert await worker.run_once() == 1  # the 8th and last
    row = await only_delivery(store, event_id)
    assert (row.status, row.attempts, row.last_status) == ("failed", 8, 500)
    assert "gave up after 8 attempts" in (row.last_error or "")
    clock.advance(timedelta(days=1))
    assert await worker.run_once() == 0
    assert len(receiver.received) == 8

    receiver.script("/hook", status=200)
    assert await store.outbox.replay(event.created_at - timedelta(seconds=1)) == 1
    assert await worker.run_once() == 1
    got = receiver.at("/hook")
    assert len(got) == 9 and {r.webhook_id for r in got} == {event_id}
    assert all(r.verified for r in got)  # signed with the real time, even 28 h "later"
    assert (await only_delivery(store, event_id)).status == "succeeded"
    assert secret not in caplog.text and secret[6:20] not in caplog.text


async def test_schedule_jitter_stays_within_bounds(
    store: Store, receiver: WebhookReceiver, secret: str, clock: Clock
) -> None:
    import random

    receiver.script("/hook", status=500)
    sub = await store.subscriptions.add(receiver.url("/hook"), secret)
    ids = await emit(store, sub, n=20)
    # One instant for the whole test: the worker's "now" does not move while it and
    # the test run, so each delay is exactly the schedule's step with its jitter,
    # however long a loaded machine takes between computing it and reading it back.
    at = clock()
    async with WebhookDelivery(store, GUARD, "node-a", now=lambda: at, rng=random.Random(7)) as w:
        assert await w.run_once() == 20
    delays = [((await only_delivery(store, i)).next_attempt_at - at).total_seconds() for i in ids]
    assert all(4.0 - 1e-3 <= d <= 6.0 + 1e-3 for d in delays), delays  # 5 s ± 20 %
    assert len({round(d, 3) for d in delays}) > 1


async def test_redirect_is_a_failure_and_not_followed(
    store: Store, receiver: WebhookReceiver, worker: WebhookDelivery, secret: str
) -> None:
    receiver.script("/moved", redirect_to=receiver.url("/target"))
    sub = await store.subscriptions.add(receiver.url("/moved"), secret)
    (event_id,) = await emit(store, sub)
    assert await worker.run_once() == 1
    row = await only_delivery(store, event_id)
    assert (row.status, row.last_status) == ("pending", 302)
    assert "redirects are not followed" in (row.last_error or "")
    assert receiver.at("/target") == []


async def test_timeout_and_connection_error_are_retried(
    store: Store, receiver: WebhookReceiver, secret: str, clock: Clock
) -> None:
    hang = asyncio.Event()  # never set during the attempt: the endpoint hangs
    receiver.script("/hang", hold=hang)
    hung = await store.subscriptions.add(receiver.url("/hang"), secret)
    # A port nothing listens on: bind and close to get one.
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead_port = sock.getsockname()[1]
    dead = await store.subscriptions.add(f"http://127.0.0.1:{dead_port}/hook?token=SECRET_TOKEN", secret)
    (event_id,) = await emit(store, hung, dead)
    async with WebhookDelivery(store, GUARD, "node-a", now=clock, jitter=0.0, timeout_s=0.3) as w:
        assert await w.run_once() == 2
    hang.set()
    rows = {r.subscription_id: r for r in await store.outbox.deliveries_of(event_id=event_id)}
    assert rows[hung.id].status == "pending" and "timed out" in (rows[hung.id].last_error or "")
    assert rows[dead.id].status == "pending" and rows[dead.id].last_status is None
    assert "SECRET_TOKEN" not in (rows[dead.id].last_error or "")
    for sid in (hung.id, dead.id):
        s = await store.subscriptions.get(sid)
        assert s is not None and s.failing_since is not None and s.enabled


# --------------------------------------------------------------- rotation


async def test_secret_rotation_signs_with_both_during_grace(
    store: Store, receiver: WebhookReceiver, worker: WebhookDelivery, secret: str, clock: Clock
) -> None:
    sub = await store.subscriptions.add(receiver.url("/hook"), secret)
    rotated = new_secret()
    await store.subscriptions.rotate_secret(sub.id, rotated, grace_until=clock() + timedelta(hours=1))

    await emit(store, sub)
    assert await worker.run_once() == 1
    (during,) = receiver.received
    assert len(during.headers["webhook-signature"].split(" ")) == 2
    assert during.verified  # this receiver knows only the old secret
    Webhook(rotated).verify(during.body, during.headers)  # and one that knows only the new one

    clock.advance(timedelta(hours=2))
    await emit(store, sub)
    assert await worker.run_once() == 1
    after = receiver.received[1]
    assert len(after.headers["webhook-signature"].split(" ")) == 1
    assert not after.verified and after.error == "No matching signature found"
    Webhook(rotated).verify(after.body, after.headers)


# ------------------------------------------------------------ concurrency


async def test_slow_endpoint_does_not_delay_others(
    store: Store, receiver: WebhookReceiver, worker: WebhookDelivery, secret: str
) -> None:
    hold = asyncio.Event()
    receiver.script("/slow", hold=hold)
    slow = await store.subscriptions.add(receiver.url("/slow"), secret)
    fast = await store.subscriptions.add(receiver.url("/fast"), secret)
    await emit(store, slow)
    (fast_event,) = await emit(store, fast)

    task = asyncio.create_task(worker.run_once())
    await receiver.wait_for(1, "/slow")
    (got,) = await receiver.wait_for(1, "/fast")
    assert got.webhook_id == fast_event and got.verified
    assert receiver.in_flight["/slow"] == 1 and not task.done()  # slow one still held
    hold.set()
    assert await task == 2


@pytest.mark.parametrize("limit", [1, 3])
async def test_max_in_flight_per_subscription(
    store: Store, receiver: WebhookReceiver, worker: WebhookDelivery, secret: str, limit: int
) -> None:
    # The gate holds every request until the test lets one through, so
    # requests sent together are necessarily in flight together.
    gate = asyncio.Semaphore(0)
    receiver.script("/slow", gate=gate)
    sub = await store.subscriptions.add(receiver.url("/slow"), secret, max_in_flight=limit)
    await emit(store, sub, n=3)
    task = asyncio.create_task(worker.run_once())
    if limit == 1:
        for seen in (1, 2, 3):
            await receiver.wait_for(seen, "/slow")
            assert receiver.in_flight["/slow"] == 1
            gate.release()
        assert receiver.max_in_flight["/slow"] == 1
    else:
        await receiver.wait_for(3, "/slow")  # all three at once: the limit above is what serialises
        assert receiver.in_flight["/slow"] == 3
        for _ in range(3):
            gate.release()
    assert await task == 3
    assert all(r.verified for r in receiver.received)


async def test_run_loop_delivers_on_wake_and_stops(
    store: Store, receiver: WebhookReceiver, worker: WebhookDelivery, secret: str
) -> None:
    sub = await store.subscriptions.add(receiver.url("/hook"), secret)
    stop = asyncio.Event()
    loop_task = asyncio.create_task(worker.run(stop, idle_s=60.0))
    await emit(store, sub)
    worker.wake()
    await receiver.wait_for(1)
    await emit(store, sub)
    worker.wake()
    await receiver.wait_for(2)
    stop.set()
    await asyncio.wait_for(loop_task, 10)
    assert len({r.webhook_id for r in receiver.received}) == 2


# -------------------------------------------------- SSRF and disabling


async def test_ssrf_refusal_is_retried_and_never_disables(
    store: Store, receiver: WebhookReceiver, worker: WebhookDelivery, secret: str, clock: Clock
) -> None:
    private = await store.subscriptions.add("http://10.0.0.1/hook", secret)
    # Loopback by name: not on the allow list, so the guard must refuse it
    # after resolving; the receiver proves no connection was made.
    by_name = await store.subscriptions.add(receiver.url("/hook").replace("127.0.0.1", "localhost"), secret)
    (event_id,) = await emit(store, private, by_name)
    start = clock()
    assert await worker.run_once() == 2
    assert receiver.received == []
    for sub, host, address in ((private, "10.0.0.1", "10.0.0.1"), (by_name, "localhost", "localhost")):
        (row,) = [r for r in await store.outbox.deliveries_of(event_id=event_id) if r.subscription_id == sub.id]
        # A configuration problem: due again on the normal schedule, not failed.
        assert row.status == "pending" and row.attempts == 1
        assert close_to(row.next_attempt_at, start + DEFAULT_SCHEDULE[1])
        error = row.last_error or ""
        assert error.startswith("refused by the SSRF guard: ")
        assert "[alerts] allow_hosts" in error and f"'{host}'" in error and address in error
        after = await store.subscriptions.get(sub.id)
        assert after is not None and after.enabled and after.disabled_reason is None
        assert after.failing_since is None, "the endpoint did nothing wrong: no failure streak"

    # Refused for longer than the five days that disable a failing endpoint: still enabled.
    clock.advance(timedelta(days=6))
    await emit(store, private)
    assert await worker.run_once() >= 2
    after = await store.subscriptions.get(private.id)
    assert after is not None and after.enabled and after.failing_since is None

    # Once the operator allows the host, the same pending delivery goes out.
    allowed = NetGuard(allow_hosts=frozenset({"localhost"}))
    async with WebhookDelivery(store, allowed, "node-a", now=clock, jitter=0.0) as fixed:
        clock.advance(DEFAULT_SCHEDULE[-1])
        await fixed.run_once()
    assert [r.webhook_id for r in receiver.received] == [event_id]
    (row,) = [r for r in await store.outbox.deliveries_of(event_id=event_id) if r.subscription_id == by_name.id]
    assert row.status == "succeeded"


async def test_a_refusal_allow_hosts_cannot_lift_says_the_url_must_change(
    store: Store, worker: WebhookDelivery, secret: str
) -> None:
    sub = await store.subscriptions.add("ftp://hooks.example/x", secret)
    (event_id,) = await emit(store, sub)
    assert await worker.run_once() == 1
    row = await only_delivery(store, event_id)
    assert row.status == "pending" and "scheme 'ftp' is not allowed" in (row.last_error or "")
    assert "cannot allow this" in (row.last_error or "")
    assert (await store.subscriptions.get(sub.id)).enabled  # type: ignore[union-attr]


async def test_failing_for_more_than_five_days_disables(
    store: Store, receiver: WebhookReceiver, worker: WebhookDelivery, secret: str, clock: Clock
) -> None:
    receiver.script("/hook", status=500)
    sub = await store.subscriptions.add(receiver.url("/hook"), secret)
    await emit(store, sub)
    start = clock()
    assert await worker.run_once() == 1
    failing = await store.subscriptions.get(sub.id)
    assert failing is not None and failing.enabled and failing.failing_since is not None
    assert close_to(failing.failing_since, start)

    clock.advance(timedelta(days=4))
    await emit(store, sub)
    assert await worker.run_once() == 2
    assert (await store.subscriptions.get(sub.id)).enabled  # type: ignore[union-attr]

    clock.advance(timedelta(days=1, hours=1))
    assert await worker.run_once() >= 1
    after = await store.subscriptions.get(sub.id)
    assert after is not None and not after.enabled
    assert (after.disabled_reason or "").startswith("failing since ")


async def test_success_ends_the_failure_streak(
    store: Store, receiver: WebhookReceiver, worker: WebhookDelivery, secret: str, clock: Clock
) -> None:
    receiver.script("/hook", statuses=[500], status=200)
    sub = await store.subscriptions.add(receiver.url("/hook"), secret)
    await emit(store, sub)
    await worker.run_once()
    assert (await store.subscriptions.get(sub.id)).failing_since is not None  # type: ignore[union-attr]
    clock.advance(timedelta(seconds=10))
    await worker.run_once()
    assert (await store.subscriptions.get(sub.id)).failing_since is None  # type: ignore[union-attr]


async def test_on_result_callback(store: Store, receiver: WebhookReceiver, secret: str, clock: Clock) -> None:
    seen: list[tuple[str, float]] = []
    receiver.script("/hook", statuses=[500])
    sub = await store.subscriptions.add(receiver.url("/hook"), secret)
    await emit(store, sub)
    async with WebhookDelivery(store, GUARD, "n", now=clock, on_result=lambda o, s: seen.append((o, s))) as w:
        await w.run_once()
        clock.advance(timedelta(seconds=10))
        await w.run_once()
    assert [o for o, _ in seen] == ["retry", "succeeded"] and all(s >= 0 for _, s in seen)


# -------------------------------------------------------------- PostgreSQL


@pytest.fixture
async def postgres_opener() -> AsyncIterator[Callable[[], Any]]:
    admin = await connect_admin(POSTGRES_URL)  # fails under CI=true when the server is down
    schema = f"t_{uuid.uuid4().hex[:12]}"
    async with admin.begin() as conn:
        await conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    stores: list[Store] = []

    async def open_store() -> Store:
        s = await Store.open(POSTGRES_URL, schema=schema)
        stores.append(s)
        return s

    try:
        yield open_store
    finally:
        for s in stores:
            await s.close()
        async with admin.begin() as conn:
            await conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        await admin.dispose()


@pytest.mark.postgres
async def test_two_workers_on_postgres_deliver_each_event_once(
    postgres_opener: Callable[[], Any], receiver: WebhookReceiver, secret: str
) -> None:
    store_a: Store = await postgres_opener()
    store_b: Store = await postgres_opener()
    sub = await store_a.subscriptions.add(receiver.url("/hook"), secret, max_in_flight=8)
    ids = await emit(store_a, sub, n=50)
    counts = {"a": 0, "b": 0}
    async with (
        WebhookDelivery(store_a, GUARD, "node-a", batch=7) as a,
        WebhookDelivery(store_b, GUARD, "node-b", batch=7) as b,
    ):
        for _ in range(50):
            made_a, made_b = await asyncio.gather(a.run_once(), b.run_once())
            counts["a"] += made_a
            counts["b"] += made_b
            if made_a == made_b == 0:
                break
    got = receiver.at("/hook")
    assert sorted(r.webhook_id or "" for r in got) == sorted(ids)  # each exactly once
    assert all(r.verified for r in got)
    assert counts["a"] + counts["b"] == 50 and counts["a"] > 0 and counts["b"] > 0
    assert {r.status for r in await store_b.outbox.deliveries_of(subscription_id=sub.id)} == {"succeeded"}


def self_signed(tmp: Path) -> ssl.SSLContext:
    """A server context with a certificate nobody trusts (as a misconfigured endpoint has)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .sign(key, hashes.SHA256())
    )
    (tmp / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp / "key.pem").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(tmp / "cert.pem", tmp / "key.pem")
    return ctx


async def test_a_tls_failure_is_named_as_such(
    store: Store, worker: WebhookDelivery, secret: str, tmp_path: Path
) -> None:
    reached: list[str] = []

    async def hook(request: web.Request) -> web.Response:
        reached.append(request.path)
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0, ssl_context=self_signed(tmp_path)).start()
        port = runner.addresses[0][1]
        sub = await store.subscriptions.add(f"https://127.0.0.1:{port}/hook", secret)
        (event_id,) = await emit(store, sub)
        assert await worker.run_once() == 1
    finally:
        await runner.cleanup()
    row = await only_delivery(store, event_id)
    assert reached == [] and row.status == "pending"
    assert (row.last_error or "").startswith("TLS error: "), row.last_error
