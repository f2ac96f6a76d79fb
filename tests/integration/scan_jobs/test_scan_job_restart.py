"""The acceptance test of queued scans: a real `dweb-agent run` is SIGKILLed while it runs a scan
submitted through the service, started again under the same node name, and the scan completes
with its full report."""

from __future__ import annotations

import asyncio
import json
import signal
from collections.abc import Awaitable, Callable
from pathlib import Path

from agent.config import load_settings
from agent.model.jobs import JobStatus
from agent.services.scan_jobs import ScanJobRequest, ScanJobsService
from agent.store import Store
from tests.integration.scan_jobs.harness import tree
from tests.support.cli import spawn_agent
from tests.support.config import write_agent_config
from tests.support.gateway import FixtureGateway
from tests.support.wait import until

MakeGateway = Callable[..., Awaitable[FixtureGateway]]
NODE = "agent-under-test"


async def test_a_scan_running_when_the_agent_is_killed_completes_after_the_restart(
    make_gateway: MakeGateway, tmp_path: Path
) -> None:
    """SIGKILL mid-scan leaves the job running under the dead process; the restarted agent queues
    it again, runs it (a second attempt) and stores the report of every file, all verified."""
    files = {f"file{i:02}.txt": f"content of file {i}\n".encode() for i in range(8)}
    root, blocks = tree(files)
    gw = await make_gateway(hold_after=4)  # the directory and three files, then the gateway stalls
    gw.add_blocks(blocks)
    cfg = write_agent_config(
        tmp_path,
        agent={"shutdown_grace_s": 5},
        gateways={"urls": [gw.url], "read_timeout_s": 120},
        api={"port": 0},
    )
    first_log = tmp_path / "first.log"
    first = await spawn_agent(cfg.path, first_log, NODE)
    try:
        await until(lambda: '"agent.started"' in first_log.read_text(), 60, why=lambda: first_log.read_text()[-2000:])
        async with await Store.open(cfg.database) as store:
            job = await ScanJobsService(store, load_settings(cfg.path)).submit(ScanJobRequest(f"ipfs://{root}"), "bob")

        async def stalled_while_running() -> bool:
            async with await Store.open(cfg.database) as store:
                row = await store.jobs.get(job.id)
            return row is not None and row.status is JobStatus.RUNNING and gw.requests["car"] > 4

        await until(stalled_while_running, 60, why=lambda: first_log.read_text()[-2000:])
    finally:
        if first.returncode is None:
            first.send_signal(signal.SIGKILL)
        await first.wait()
    async with await Store.open(cfg.database) as store:
        killed = await store.jobs.get(job.id)
    assert killed is not None and killed.status is JobStatus.RUNNING and killed.node == NODE

    gw.release()
    second_log = tmp_path / "second.log"
    second = await spawn_agent(cfg.path, second_log, NODE)
    try:

        async def job_finished() -> bool:
            async with await Store.open(cfg.database) as store:
                row = await store.jobs.get(job.id)
            return row is not None and row.status.finished

        await until(job_finished, 120, why=lambda: second_log.read_text()[-2000:])
    finally:
        if second.returncode is None:
            second.send_signal(signal.SIGTERM)
        await asyncio.wait_for(second.wait(), 60)
    assert second.returncode == 0, second_log.read_text()[-2000:]
    events = [json.loads(line)["event"] for line in second_log.read_text().splitlines() if line.startswith("{")]
    assert "agent.api_scans_resumed" in events
    async with await Store.open(cfg.database) as store:
        done = await store.jobs.get(job.id)
    assert done is not None and done.status is JobStatus.DONE, done
    assert done.attempts == 2 and done.report is not None
    assert sorted(item["path"] for item in done.report["items"]) == sorted(files)
    assert {item["status"] for item in done.report["items"]} == {"verified"}
    assert done.report["summary"]["verified"] == len(files) and done.report["errors"] == []
    assert done.progress.items == len(files)
