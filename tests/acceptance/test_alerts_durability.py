"""The agent killed with SIGKILL while webhook deliveries are in flight: after a
restart every event reaches the receiver at least once, none is lost, and any
duplicate carries the same webhook-id."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable
from pathlib import Path

from agent.alerts.signing import new_secret
from agent.store import Store
from tests.conftest import MEDIA_FIXTURES
from tests.support.cli import spawn_agent
from tests.support.gateway import FixtureGateway
from tests.support.media_dag import expected_pdq
from tests.support.unixfs_builder import UnixFSBuilder
from tests.support.wait import until
from tests.support.webhook_receiver import WebhookReceiver

MakeGateway = Callable[..., Awaitable[FixtureGateway]]


async def test_sigkill_with_deliveries_in_flight_loses_no_event(make_gateway: MakeGateway, tmp_path: Path) -> None:
    photos = sorted((MEDIA_FIXTURES / "pdq" / "bridge-mods").iterdir())
    builder = UnixFSBuilder()
    root, _ = builder.add_directory({p.name: builder.add_file(p.read_bytes()) for p in photos})
    gw = await make_gateway()
    gw.add_blocks(builder.blocks)
    listing = tmp_path / "list.txt"
    listing.write_text(f"pdq {expected_pdq()['pdq/bridge-mods/aaa-orig.jpg'][0]}\n")
    data_dir = tmp_path / "data"
    config = tmp_path / "agent.toml"
    config.write_text(f"""
[agent]
data_dir = "{data_dir}"
health_port = 0
shutdown_grace_s = 2
[api]
port = 0
[gateways]
urls = ["{gw.url}"]
[lists]
sources = ["{listing}"]
[media]
workers = 1
[alerts]
allow_hosts = ["127.0.0.1"]
recheck_interval_s = 86400
[[targets]]
url = "ipfs://{root}"
interval_s = 3600
""")
    database = f"sqlite+aiosqlite:///{data_dir / 'agent.sqlite3'}"
    secret = new_secret()
    data_dir.mkdir()
    async with WebhookReceiver([secret]) as receiver:
        async with await Store.open(database) as store:
            await store.subscriptions.add(receiver.url("/hook"), secret, max_in_flight=4)
        held = asyncio.Event()
        receiver.script("/hook", hold=held)

        first = await spawn_agent(config, tmp_path / "first.log", "durability-test")
        try:
            await receiver.wait_for(4, "/hook", timeout=120)  # four requests in flight, none answered
            assert not held.is_set()
        finally:
            if first.returncode is None:
                first.send_signal(signal.SIGKILL)
            await first.wait()
        in_flight_at_kill = {r.webhook_id for r in receiver.at("/hook")}
        receiver.script("/hook")  # the receiver answers 204 from now on
        held.set()

        second = await spawn_agent(config, tmp_path / "second.log", "durability-test")
        events: set[str] = set()
        try:

            async def all_delivered() -> bool:
                nonlocal events
                async with await Store.open(database) as store:
                    target = (await store.targets.all())[0]
                    events = {e.id for e in await store.outbox.events(limit=1000)}
                delivered = {r.webhook_id for r in receiver.at("/hook") if r.status == 204}
                return target.last_success_at is not None and len(events) == len(photos) and delivered >= events

            await until(all_delivered, 120, why=lambda: (tmp_path / "second.log").read_text()[-3000:])
        finally:
            if second.returncode is None:
                second.send_signal(signal.SIGTERM)
            await asyncio.wait_for(second.wait(), 60)
        assert second.returncode == 0

    received = receiver.at("/hook")
    assert all(r.verified for r in received)
    assert {r.webhook_id for r in received} == events, "no event lost, none invented"
    assert in_flight_at_kill and in_flight_at_kill <= {r.webhook_id for r in received if r.status == 204}, (
        "deliveries in flight when the agent died are sent again, with the same webhook-id"
    )
    assert len(received) > len(events), "those duplicates carry the same id as the first attempt"
    async with await Store.open(database) as store:
        statuses = {d.status for e in events for d in await store.outbox.deliveries_of(event_id=e)}
    assert statuses == {"succeeded"}
