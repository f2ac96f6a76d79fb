"""The real `dweb-agent run` stopped and started around a poll, against a test
gateway that counts (and can hold) requests: SIGTERM lets a running poll finish
within shutdown_grace_s, then cancels it; a poll cut short is polled again at once
after the restart; a second agent on the same port fails with one clear line and
disturbs nothing; every line the agent writes off a terminal is JSON; a poll's log
context never reaches later lines."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from agent.alerts.signing import new_secret
from agent.ipfs.cid import CID, parse_cid
from agent.store import Store
from tests.conftest import MEDIA_FIXTURES
from tests.support.cli import run_cli, spawn_agent
from tests.support.config import write_agent_config
from tests.support.gateway import FixtureGateway
from tests.support.media_dag import expected_pdq
from tests.support.unixfs_builder import UnixFSBuilder
from tests.support.wait import until
from tests.support.webhook_receiver import WebhookReceiver

MakeGateway = Callable[..., Awaitable[FixtureGateway]]
NODE = "agent-under-test"
ORIGINAL_PDQ = expected_pdq()["pdq/bridge-mods/aaa-orig.jpg"][0]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _photo_dag() -> tuple[CID, dict[str, str], UnixFSBuilder]:
    """A directory of the bridge-mods photos; file multihash hex -> name."""
    builder = UnixFSBuilder()
    keys: dict[str, str] = {}
    entries = {}
    for path in sorted((MEDIA_FIXTURES / "pdq" / "bridge-mods").iterdir()):
        cid, size = builder.add_file(path.read_bytes())
        keys[bytes(cid.digest).hex()] = path.name
        entries[path.name] = (cid, size)
    root, _ = builder.add_directory(entries)
    return root, keys, builder


class Run:
    """One data directory and config; agents started on it log to numbered files."""

    def __init__(
        self,
        tmp_path: Path,
        gateway: str,
        targets: list[str],
        *,
        grace_s: float,
        lists_interval_s: int = 300,
        health_port: int = 0,
        receiver_host: bool = False,
    ) -> None:
        self.tmp = tmp_path
        self.data = tmp_path / "data"
        self.data.mkdir()
        self.listing = tmp_path / "list.txt"
        self.listing.write_text(f"pdq {ORIGINAL_PDQ}\n")
        self.port = health_port
        cfg = write_agent_config(
            tmp_path,
            agent={"data_dir": self.data, "health_port": health_port, "shutdown_grace_s": grace_s},
            gateways={"urls": [gateway], "read_timeout_s": 300},
            lists={"sources": [self.listing]},
            schedule={"jitter_fraction": 0, "lists_interval_s": lists_interval_s},
            alerts={"allow_hosts": ["127.0.0.1"] if receiver_host else []},
            targets=[{"url": t, "interval_s": 3600} for t in targets],
        )
        self.config, self.database = cfg.path, cfg.database
        self.logs: list[Path] = []

    async def start(self) -> asyncio.subprocess.Process:
        log = self.tmp / f"agent-{len(self.logs) + 1}.log"
        self.logs.append(log)
        return await spawn_agent(self.config, log, NODE)

    def lines(self, n: int = -1, *, strict: bool = True) -> list[dict[str, Any]]:
        """Every line of an agent's stderr parsed as JSON; strict: a line that is not
        JSON fails the test, else it is left out (a test about something else)."""
        parsed = []
        for line in self.logs[n].read_text().splitlines():
            try:
                parsed.append(json.loads(line))
            except json.JSONDecodeError:
                if strict:
                    raise AssertionError(f"not a JSON line: {line!r}\n{self.logs[n].read_text()[-3000:]}") from None
        return parsed

    def events(self, n: int = -1, *, strict: bool = True) -> list[str]:
        return [str(e.get("event")) for e in self.lines(n, strict=strict)]

    async def logged(self, event: str, n: int = -1) -> bool:
        return self.logs[n].exists() and f'"event": "{event}"' in self.logs[n].read_text()

    async def store(self) -> Store:
        return await Store.open(self.database)


async def _stop(proc: asyncio.subprocess.Process, sig: signal.Signals = signal.SIGTERM) -> int:
    if proc.returncode is None:
        proc.send_signal(sig)
    return await asyncio.wait_for(proc.wait(), 120)


async def _kill(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        proc.kill()
        await proc.wait()


async def test_sigterm_lets_the_running_poll_finish_and_a_second_agent_on_the_port_fails_cleanly(
    make_gateway: MakeGateway, tmp_path: Path
) -> None:
    root, keys, builder = _photo_dag()
    gw = await make_gateway(hold_after=3)  # the directory and two files, then requests wait
    gw.add_blocks(builder.blocks)
    secret = new_secret()
    async with WebhookReceiver([secret]) as receiver:
        receiver.script("/hook", status=500)  # a failing delivery: the worker's retry warning is logged
        run = Run(tmp_path, gw.url, [f"ipfs://{root}"], grace_s=120, health_port=_free_port(), receiver_host=True)
        async with await run.store() as store:
            await store.subscriptions.add(receiver.url("/hook"), secret)
        agent = await run.start()
        try:
            await until(lambda: gw.requests["car"] + gw.requests["raw"] > 3)
            await receiver.wait_for(1, "/hook", timeout=90)

            # A second agent on the same port: one line naming the address and what changes it.
            second = await run_cli("run", "--config", str(run.config), env={"DWEB_AGENT_AGENT_NODE_NAME": NODE})
            assert second.code == 2, second.stderr
            assert second.stderr.count("\n") == 1 and "Traceback" not in second.stderr, second.stderr
            failed = json.loads(second.stderr)
            assert failed["event"] == "agent.start_failed" and failed["level"] == "error"
            assert f"127.0.0.1:{run.port}" in failed["error"] and "already in use" in failed["error"]
            assert "health_port" in failed["error"] and "DWEB_AGENT_AGENT_HEALTH_PORT" in failed["error"]
            async with await run.store() as store:  # it did not touch the first agent's work
                assert [s.status for s in await store.scans.recent(5)] == ["running"]

            agent.send_signal(signal.SIGTERM)
            await until(lambda: run.logged("agent.waiting_for_polls"))
            held = gw.requests["car"] + gw.requests["raw"]
            gw.release()
            assert await asyncio.wait_for(agent.wait(), 120) == 0, run.logs[-1].read_text()[-3000:]
        finally:
            await _kill(agent)

    assert gw.requests["car"] + gw.requests["raw"] > held, "nothing was fetched after SIGTERM"
    fetched = {parse_cid(cid).digest.hex() for fmt, cid, _ in gw.log if fmt in ("car", "raw")}
    assert set(keys) <= fetched
    events = run.events()  # every line parses as JSON
    assert "agent.polls_cancelled" not in events and "target.poll_interrupted" not in events
    assert events.index("agent.stopping") < events.index("target.polled") < events.index("agent.stopped")
    assert any(e.get("logger") == "agent.alerts.delivery" and e["level"] == "warning" for e in run.lines()), (
        "the delivery worker's warning did not come through as JSON"
    )
    async with await run.store() as store:
        assert await store.items.count() == len(keys)
        assert [s.status for s in await store.scans.recent(5)] == ["ok"]
        assert (await store.targets.all())[0].last_success_at is not None


async def test_a_poll_cancelled_after_the_grace_is_interrupted_and_polled_again_at_once_after_restart(
    make_gateway: MakeGateway, tmp_path: Path
) -> None:
    root, keys, builder = _photo_dag()
    gw = await make_gateway(hold_after=3)
    gw.add_blocks(builder.blocks)
    run = Run(tmp_path, gw.url, [f"ipfs://{root}"], grace_s=0.5)
    first = await run.start()
    try:
        await until(lambda: gw.requests["car"] + gw.requests["raw"] > 3)
        async with await run.store() as store:
            recorded_before = await store.items.seen_keys(keys)
        assert await _stop(first) == 0, run.logs[-1].read_text()[-3000:]
    finally:
        await _kill(first)
    events = run.events()  # every line is JSON: no CancelledError traceback in plain text
    assert "target.poll_interrupted" in events and "agent.polls_cancelled" in events
    assert events[-1] == "agent.stopped"
    async with await run.store() as store:
        assert [s.status for s in await store.scans.recent(5)] == ["interrupted"]
        recorded = await store.items.seen_keys(keys)
    assert recorded_before <= recorded < set(keys)

    gw.release()
    gw.log.clear()
    second = await run.start()
    try:

        async def polled_again() -> bool:
            async with await run.store() as store:
                return (await store.targets.all())[0].last_success_at is not None

        # The interval is an hour and a claim lasts half of it: only a released claim gets here.
        await until(polled_again, 120)
    finally:
        assert await _stop(second) == 0
    refetched = {parse_cid(cid).digest.hex() for fmt, cid, _ in gw.log if fmt in ("car", "raw")}
    assert not refetched & recorded, "items recorded before the stop were fetched again"
    assert set(keys) - recorded <= refetched
    run.events()  # still every line JSON
    async with await run.store() as store:
        assert [s.status for s in await store.scans.recent(5)] == ["ok", "interrupted"]
        assert await store.items.count() == len(keys)


async def test_a_polls_log_context_stays_on_its_own_lines(make_gateway: MakeGateway, tmp_path: Path) -> None:
    root, _keys, builder = _photo_dag()
    gw = await make_gateway()
    gw.add_blocks(builder.blocks)
    name, _ = UnixFSBuilder().add_file(b"an IPNS name the gateway has no record for")
    # The second target's poll fails, so the agent reschedules it (a backoff) from inside the poll.
    run = Run(tmp_path, gw.url, [f"ipfs://{root}", f"ipns://{name}"], grace_s=30, lists_interval_s=1)
    run.listing.write_text("pdq " + "0" * 64 + "\n")  # matches nothing yet
    agent = await run.start()
    try:

        async def both_polled() -> bool:
            events = run.events(strict=False)
            return "target.polled" in events and "target.poll_failed" in events

        await until(both_polled)
        run.listing.write_text(f"pdq {ORIGINAL_PDQ}\n")  # a new entry: the next refresh matches it retroactively

        async def rematched() -> bool:
            return (
                any(e["event"] == "finding.created" and e.get("retroactive") for e in run.lines(strict=False))
                and run.events(strict=False).count("lists.synced") >= 4
            )

        await until(rematched)
    finally:
        assert await _stop(agent) == 0
    lines = run.lines(strict=False)
    polled = {e["event"]: e for e in lines if e["event"] in ("target.polled", "target.poll_failed")}
    assert (polled["target.polled"]["target_id"], polled["target.poll_failed"]["target_id"]) == (1, 2)
    later = [
        e
        for e in lines
        if e["event"] in ("lists.synced", "lists.updated", "lists.rematched")
        or (e["event"] == "finding.created" and e.get("retroactive"))
    ]
    leaked = [e for e in later if "target_id" in e or "scan_id" in e]
    assert not leaked, leaked


async def test_a_second_sigterm_ends_the_grace_at_once(make_gateway: MakeGateway, tmp_path: Path) -> None:
    root, _keys, builder = _photo_dag()
    gw = await make_gateway(hold_after=3)
    gw.add_blocks(builder.blocks)
    run = Run(tmp_path, gw.url, [f"ipfs://{root}"], grace_s=3600)  # far longer than the test waits below
    agent = await run.start()
    try:
        await until(lambda: gw.requests["car"] + gw.requests["raw"] > 3)
        agent.send_signal(signal.SIGTERM)
        await until(lambda: run.logged("agent.waiting_for_polls"))
        agent.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(agent.wait(), 90) == 0
    finally:
        await _kill(agent)
    events = run.events()
    assert (
        events.index("agent.waiting_for_polls")
        < events.index("agent.stopping_now")
        < events.index("agent.polls_cancelled")
        < events.index("agent.stopped")
    )
    async with await run.store() as store:
        assert [s.status for s in await store.scans.recent(5)] == ["interrupted"]
