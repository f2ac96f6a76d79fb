"""The acceptance tests of /v1/scans with a real agent behind the API and a real test gateway:
a scan started through the API reports exactly what `dweb-agent scan --format json` reports,
and a `dweb-agent run` SIGKILLed while it runs an API scan completes that scan after restart."""

from __future__ import annotations

import asyncio
import json
import signal
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp

from agent.config import load_settings
from agent.model.access import Role
from agent.runtime.process import bind_api, serve_api
from agent.services.tokens import TokensService
from agent.store import Store
from tests.conftest import MEDIA_FIXTURES
from tests.integration.scan_jobs.harness import comparable, serving, tree
from tests.support.api import ApiClient, OpenApiChecker
from tests.support.cli import run_cli, spawn_agent
from tests.support.config import write_agent_config
from tests.support.gateway import FixtureGateway
from tests.support.media_dag import expected_pdq
from tests.support.wait import until

MakeGateway = Callable[..., Awaitable[FixtureGateway]]
PHOTO = MEDIA_FIXTURES / "pdq" / "bridge-mods" / "blur-a-lot.jpg"
NODE = "api-agent-under-test"


async def _client(session: aiohttp.ClientSession, url: str, token: str) -> ApiClient:
    async with session.get(url + "/openapi.json") as r:
        return ApiClient(session, url, OpenApiChecker(await r.json()), token)


async def _finished(client: ApiClient, scan_id: int, seconds: float, why: Callable[[], str]) -> dict[str, Any]:
    last: dict[str, Any] = {}

    async def done() -> bool:
        nonlocal last
        resp = await client.get(f"/v1/scans/{scan_id}")
        assert resp.status == 200, resp.text
        last = resp.json()
        return last["status"] in ("done", "failed", "cancelled")

    await until(done, seconds, why=lambda: f"{last}\n{why()}")
    return last


def _api_url(log: Path) -> str | None:
    for line in log.read_text().splitlines():
        if line.startswith("{") and '"agent.started"' in line:
            return str(json.loads(line)["api"])
    return None


async def test_a_scan_started_through_the_api_reports_what_the_cli_reports(
    make_gateway: MakeGateway, tmp_path: Path
) -> None:
    """POST /v1/scans on the agent's own API, then GET until done: the report is the CLI's JSON
    for the same target (times aside), its progress counts every item and its one finding."""
    gw = await make_gateway()
    root, blocks = tree({"photo.jpg": PHOTO.read_bytes(), "note.txt": b"nothing to see\n", "b.txt": b"beta\n"})
    gw.add_blocks(blocks)
    listing = tmp_path / "watchlist.txt"
    listing.write_text(f"pdq {expected_pdq()['pdq/bridge-mods/aaa-orig.jpg'][0]}\n")
    cfg = write_agent_config(tmp_path, gateways={"urls": [gw.url], "read_timeout_s": 5}, lists={"sources": [listing]})
    settings = load_settings(cfg.path)

    cli = await run_cli("scan", f"ipfs://{root}", "--format", "json", "--config", str(cfg.path))
    assert cli.code == 1, cli.stderr[-2000:]  # 1: something matched
    expected = json.loads(cli.stdout)

    sock = bind_api(settings)
    assert sock is not None
    async with serving(settings) as agent:
        runner, url = await serve_api(agent, settings, sock)
        try:
            token = (await TokensService(agent.store, 0).add(Role.INVESTIGATOR, "ivy")).token
            async with aiohttp.ClientSession() as session:
                client = await _client(session, url, token)
                made = await client.post("/v1/scans", {"target": f"ipfs://{root}"})
                assert made.status == 202 and made.json()["status"] == "queued", made.text
                done = await _finished(client, made.json()["id"], 90, lambda: "")
        finally:
            await runner.cleanup()
    assert done["status"] == "done", done["error"]
    assert comparable(done["report"]) == comparable(expected)
    assert done["progress"] == {"items": 3, "verified": 3, "errors": 0, "findings": 1}
    assert done["started_at"] is not None and done["finished_at"] is not None


async def test_an_api_scan_running_when_the_agent_is_killed_completes_after_the_restart(
    make_gateway: MakeGateway, tmp_path: Path
) -> None:
    """`dweb-agent run` (API on port 0, read from agent.started): a scan POSTed to it stalls on
    a slow gateway, the agent is SIGKILLed, started again with the same config; GET on the new
    agent's API then shows the scan done with every file in its report, all verified."""
    files = {f"file{i:02}.txt": f"content of file {i}\n".encode() for i in range(8)}
    root, blocks = tree(files)
    gw = await make_gateway(hold_after=4)  # the directory and three files, then the gateway stalls
    gw.add_blocks(blocks)
    cfg = write_agent_config(
        tmp_path, agent={"shutdown_grace_s": 5}, gateways={"urls": [gw.url], "read_timeout_s": 120}, api={"port": 0}
    )
    async with await Store.open(cfg.database) as store:
        token = (await TokensService(store, 0).add(Role.INVESTIGATOR, "ivy")).token

    first_log = tmp_path / "first.log"
    first = await spawn_agent(cfg.path, first_log, NODE)
    try:
        await until(lambda: _api_url(first_log) is not None, 60, why=lambda: first_log.read_text()[-2000:])
        async with aiohttp.ClientSession() as session:
            client = await _client(session, str(_api_url(first_log)), token)
            made = await client.post("/v1/scans", {"target": f"ipfs://{root}"})
            assert made.status == 202, made.text
            scan_id = made.json()["id"]

            async def stalled_while_running() -> bool:
                resp = await client.get(f"/v1/scans/{scan_id}")
                return resp.json()["status"] == "running" and gw.requests["car"] > 4

            await until(stalled_while_running, 60, why=lambda: first_log.read_text()[-2000:])
    finally:
        if first.returncode is None:
            first.send_signal(signal.SIGKILL)
        await first.wait()

    gw.release()
    second_log = tmp_path / "second.log"
    second = await spawn_agent(cfg.path, second_log, NODE)
    try:
        await until(lambda: _api_url(second_log) is not None, 60, why=lambda: second_log.read_text()[-2000:])
        async with aiohttp.ClientSession() as session:
            client = await _client(session, str(_api_url(second_log)), token)
            done = await _finished(client, scan_id, 120, lambda: second_log.read_text()[-2000:])
    finally:
        if second.returncode is None:
            second.send_signal(signal.SIGTERM)
        await asyncio.wait_for(second.wait(), 60)
    assert second.returncode == 0, second_log.read_text()[-2000:]
    assert done["status"] == "done", done
    assert done["attempts"] == 2 and done["report"] is not None
    assert sorted(item["path"] for item in done["report"]["items"]) == sorted(files)
    assert {item["status"] for item in done["report"]["items"]} == {"verified"}
    assert done["report"]["summary"]["verified"] == len(files) and done["report"]["errors"] == []
