"""`dweb-agent run` serves the API: on the port its agent.started line names, with tokens
made for its database; a taken API port stops the start before the database is opened."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import socket
from pathlib import Path

import aiohttp
import pytest
from prometheus_client import CollectorRegistry

from agent.model.access import Role
from agent.runtime.errors import DaemonError
from agent.runtime.process import run_daemon
from agent.services.tokens import TokensService
from agent.store import Store
from tests.support.agent import settings_for
from tests.support.api import ApiClient, OpenApiChecker
from tests.support.cli import spawn_agent
from tests.support.config import write_agent_config
from tests.support.wait import until

CID = "bafybeihchr7vmgjaasntayyatmp5sv6xza57iy2h4xj7g46bpjij6yhrmy"


def _started(log: Path) -> dict[str, object] | None:
    for line in log.read_text().splitlines():
        if line.startswith("{") and '"agent.started"' in line:
            parsed: dict[str, object] = json.loads(line)
            return parsed
    return None


async def test_the_daemon_serves_the_api_on_the_port_it_logs(tmp_path: Path) -> None:
    """The agent.started line gives the API's URL (port 0: a free one); a token made for the
    agent's database reads and adds targets there; unauthenticated calls are 401."""
    cfg = write_agent_config(tmp_path)
    log = tmp_path / "agent.log"
    agent = await spawn_agent(cfg.path, log, "api-node")
    try:
        await until(lambda: log.exists() and _started(log) is not None, why=lambda: log.read_text()[-3000:])
        started = _started(log)
        assert started is not None
        url = str(started["api"])
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", url) and not url.endswith(":0")
        store = await Store.open(cfg.database)
        try:
            token = (await TokensService(store, 0).add(Role.ADMIN, "ops")).token
        finally:
            await store.close()
        async with aiohttp.ClientSession() as session:
            async with session.get(url + "/openapi.json") as r:
                checker = OpenApiChecker(await r.json())
            admin = ApiClient(session, url, checker, token)
            assert (await admin.post("/v1/targets", {"url": f"ipfs://{CID}"})).status == 201
            listed = await admin.get("/v1/targets")
            assert [t["url"] for t in listed.json()["targets"]] == [f"ipfs://{CID}"]
            assert (await ApiClient(session, url, checker, None).get("/v1/targets")).status == 401
    finally:
        agent.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(agent.wait(), 120) == 0, log.read_text()[-3000:]


async def test_a_taken_api_port_is_refused_with_the_setting_that_changes_it(tmp_path: Path) -> None:
    """Another process on [api] port: the start fails naming the address and the setting,
    before the database exists."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = int(taken.getsockname()[1])
        plain = settings_for(tmp_path)
        settings = plain.model_copy(update={"api": plain.api.model_copy(update={"port": port})})
        with pytest.raises(DaemonError) as refused:
            await run_daemon(settings, CollectorRegistry())
    message = str(refused.value)
    assert f"127.0.0.1:{port}" in message and "already in use" in message
    assert "[api] port" in message and "DWEB_AGENT_API_PORT" in message
    assert not (tmp_path / "data" / "agent.sqlite3").exists(), "refused before any database was opened"
