"""/healthz and /metrics of an in-process agent on a real port: the status follows
the agent's lifecycle (starting, ok, stopping) with the documented keys; the
metrics carry the dweb_agent_ prefix; a port already taken is refused with a
message that names it and the setting that changes it."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from agent.runtime.agent import Agent
from agent.runtime.errors import DaemonError
from agent.runtime.health import health_app, listen
from tests.support.agent import settings_for

HEALTH_KEYS = ["status", "version", "node", "uptime_s", "targets", "lists", "last_list_sync", "polls_running"]


@asynccontextmanager
async def serving(app: web.Application) -> AsyncIterator[str]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        host, port = runner.addresses[0][:2]
        yield f"http://{host}:{port}"
    finally:
        await runner.cleanup()


async def _get(http: aiohttp.ClientSession, url: str) -> dict[str, Any]:
    async with http.get(url) as resp:
        assert resp.status == 200
        body: dict[str, Any] = await resp.json()
        return body


async def test_healthz_follows_the_lifecycle_and_metrics_carry_the_prefix(tmp_path: Path) -> None:
    listing = tmp_path / "list.txt"
    listing.write_text("md5 " + "0" * 32 + "\n")
    settings = settings_for(tmp_path, lists=[str(listing)])
    stop = asyncio.Event()
    async with (
        Agent(settings, node="health-test") as agent,
        serving(health_app(agent)) as base,
        aiohttp.ClientSession() as http,
    ):
        before = await _get(http, f"{base}/healthz")
        assert list(before) == HEALTH_KEYS, "the keys operators' probes read, in their order"
        assert before["status"] == "starting" and before["node"] == "health-test"
        assert before["last_list_sync"] is None and before["lists"] == []

        await agent.add_target("ipfs://bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi", 3600)
        run = asyncio.create_task(agent.serve(stop))
        await agent.ready.wait()
        up = await _get(http, f"{base}/healthz")
        assert up["status"] == "ok" and up["targets"] == 1
        assert up["lists"] == [{"name": "list", "source": str(listing), "entries": 1, "deny_rules": 0, "problems": 0}]
        assert up["last_list_sync"] is not None
        async with http.get(f"{base}/metrics") as resp:
            text = await resp.text()
        assert "dweb_agent_up 1.0" in text and "dweb_agent_targets 1.0" in text
        assert 'dweb_agent_list_syncs_total{outcome="ok"} 1.0' in text

        stop.set()
        await run
        down = await _get(http, f"{base}/healthz")
        assert down["status"] == "stopping", "a stopped agent never reports ok again"
        async with http.get(f"{base}/metrics") as resp:
            assert "dweb_agent_up 0.0" in await resp.text()


async def test_a_taken_health_port_is_refused_with_the_setting_that_changes_it(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = int(taken.getsockname()[1])
        plain = settings_for(tmp_path)
        settings = plain.model_copy(update={"agent": plain.agent.model_copy(update={"health_port": port})})
        runner = web.AppRunner(web.Application(), access_log=None)
        await runner.setup()
        try:
            with pytest.raises(DaemonError) as refused:
                await listen(runner, settings)
        finally:
            await runner.cleanup()
    message = str(refused.value)
    assert f"127.0.0.1:{port}" in message and "already in use" in message
    assert "health_port" in message and "DWEB_AGENT_AGENT_HEALTH_PORT" in message
    assert not (tmp_path / "data" / "agent.sqlite3").exists(), "refused before any database was opened"
