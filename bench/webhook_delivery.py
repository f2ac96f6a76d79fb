"""Webhook delivery throughput and latency over loopback.

    python bench/webhook_delivery.py [--events 2000] [--max-in-flight 4]

A SQLite store in a temp dir, a receiver on 127.0.0.1 that verifies every
signature with `standardwebhooks` (as a platform would), and one
WebhookDelivery worker running its daemon loop. Receiver and worker share
this process and its event loop, so verification cost is included too.
Scenarios, each for 1 and for 4 subscriptions:
  * backlog: N events already in the outbox; deliveries/s until all arrived,
    and latency from the event's creation (store.outbox.emit) to its receipt;
  * paced: events emitted in small batches (the worker woken after each, as
    the daemon does after findings); latency when the worker keeps up.
Numbers are printed; nothing is asserted."""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from agent.alerts.delivery import WebhookDelivery
from agent.alerts.signing import new_secret
from agent.net.guard import NetGuard
from agent.store import NewEvent, Store
from tests.support.webhook_receiver import WebhookReceiver

GUARD = NetGuard(allow_hosts=frozenset({"127.0.0.1"}))


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


async def scenario(tmp: Path, events: int, subs: int, max_in_flight: int, paced: bool) -> None:
    secret = new_secret()
    store = await Store.open(f"sqlite+aiosqlite:///{tmp / uuid.uuid4().hex / 'agent.db'}")
    receiver = await WebhookReceiver([secret]).start()
    try:
        sub_rows = [
            await store.subscriptions.add(receiver.url(f"/hook{i}"), secret, max_in_flight=max_in_flight)
            for i in range(subs)
        ]
        # Each event goes to one subscription (round robin), so N deliveries in all.
        new = [
            NewEvent(
                id=f"evt_{uuid.uuid4().hex}",
                type="finding.created",
                payload={"cid": f"bafy{k:06d}", "list": "bench", "labels": ["tvec"], "distance": 0},
                subscription_ids=(sub_rows[k % subs].id,),
            )
            for k in range(events)
        ]
        stop = asyncio.Event()
        async with WebhookDelivery(store, GUARD, "bench", batch=200) as worker:
            start = time.perf_counter()
            if not paced:
                for i in range(0, events, 500):
                    await store.outbox.emit(new[i : i + 500])
                start = time.perf_counter()
                loop = asyncio.create_task(worker.run(stop, idle_s=0.05))
            else:
                loop = asyncio.create_task(worker.run(stop, idle_s=0.05))
                for i in range(0, events, 10):
                    await store.outbox.emit(new[i : i + 10])
                    worker.wake()
                    await asyncio.sleep(0.01)  # a bench, not a test: pacing the producer
            await receiver.wait_for(events, timeout=600)
            elapsed = time.perf_counter() - start
            stop.set()
            await loop
        created = {e.id: e.created_at for e in await store.outbox.events(limit=events)}
        latencies = [
            (r.at - created[r.webhook_id]).total_seconds() * 1000 for r in receiver.received if r.webhook_id in created
        ]
        ids = [r.webhook_id for r in receiver.received]
        bad = sum(not r.verified for r in receiver.received)
        kind = "paced  " if paced else "backlog"
        print(
            f"{kind} subs={subs} max_in_flight={max_in_flight}: {len(ids)} deliveries in {elapsed:.2f} s = "
            f"{len(ids) / elapsed:7.0f}/s   latency p50 {statistics.median(latencies):7.1f} ms  "
            f"p99 {pct(latencies, 99):7.1f} ms   duplicates {len(ids) - len(set(ids))}  unverified {bad}"
        )
    finally:
        await receiver.stop()
        await store.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--max-in-flight", type=int, default=4)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for paced in (False, True):
            for subs in (1, 4):
                await scenario(Path(tmp), args.events, subs, args.max_in_flight, paced)


if __name__ == "__main__":
    asyncio.run(main())
