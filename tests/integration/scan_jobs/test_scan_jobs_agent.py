"""Scans queued through the service and run by a real Agent against a real test gateway:
the report is the CLI's, the concurrency limit holds, queued and running scans cancel."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from pathlib import Path

from agent.config import load_settings
from agent.model.jobs import JobStatus
from agent.services.scan_jobs import ScanJobRequest, ScanJobsService
from agent.store import Store
from tests.conftest import MEDIA_FIXTURES
from tests.integration.scan_jobs.harness import comparable, finished, serving, statuses, tree, with_api
from tests.support.agent import settings_for
from tests.support.cli import run_cli
from tests.support.config import write_agent_config
from tests.support.gateway import FixtureGateway
from tests.support.media_dag import expected_pdq
from tests.support.wait import until

MakeGateway = Callable[..., Awaitable[FixtureGateway]]
PHOTO = MEDIA_FIXTURES / "pdq" / "bridge-mods" / "blur-a-lot.jpg"


async def test_a_queued_scan_reports_exactly_what_the_cli_reports_and_records_its_findings(
    make_gateway: MakeGateway, tmp_path: Path
) -> None:
    """A scan submitted through the service runs on the agent and its stored report is the JSON of
    `dweb-agent scan --format json` on the same target (times aside); its finding is in the store."""
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

    async with serving(settings) as agent:
        service = ScanJobsService(agent.store, settings)
        job = await service.submit(ScanJobRequest(f"ipfs://{root}"), "alice")
        assert job.status is JobStatus.QUEUED
        agent.wake_scans()
        done = await finished(service, job.id)
        assert done.status is JobStatus.DONE, done.error
        assert done.report is not None
        assert comparable(done.report) == comparable(expected)
        assert done.progress.items == done.progress.verified == len(expected["items"]) == 3
        assert done.progress.findings == 1
        findings = await agent.store.findings.recent()
        assert [(f.list_name, f.signal_type) for f in findings] == [("watchlist", "pdq")]
        assert agent.metrics.api_scans.labels("done")._value.get() == 1


async def test_no_more_scans_run_at_once_than_the_concurrency_allows(make_gateway: MakeGateway, tmp_path: Path) -> None:
    """With scan_concurrency 2 and a gateway that holds every answer, two of three scans run and the
    third waits queued (a wake claims nothing) until one finishes; then all three complete."""
    gw = await make_gateway(hold_after=0)
    roots = []
    for i in range(3):
        root, blocks = tree({f"file{i}.txt": f"content {i}\n".encode()})
        gw.add_blocks(blocks)
        roots.append(root)
    settings = with_api(settings_for(tmp_path, gw.url), scan_concurrency=2)
    async with serving(settings) as agent:
        service = ScanJobsService(agent.store, settings)
        ids = [(await service.submit(ScanJobRequest(f"ipfs://{r}"), None)).id for r in roots]
        agent.wake_scans()
        await until(lambda: gw.requests["car"] + gw.requests["raw"] >= 2, 60)
        now = await statuses(agent.store, ids)
        assert sorted(now) == sorted([JobStatus.RUNNING, JobStatus.RUNNING, JobStatus.QUEUED])
        assert await agent.jobs.claim() == [], "no room: nothing more is claimed"
        agent.wake_scans()
        assert (await statuses(agent.store, ids)).count(JobStatus.RUNNING) == 2

        most = 0

        async def all_done() -> bool:
            nonlocal most
            now = await statuses(agent.store, ids)
            most = max(most, now.count(JobStatus.RUNNING))
            return all(s is JobStatus.DONE for s in now)

        gw.release()
        await until(all_done, 90)
        assert most <= 2


async def test_a_queued_scan_is_cancelled_at_once_and_a_running_one_at_its_next_renewal(
    make_gateway: MakeGateway, tmp_path: Path
) -> None:
    """Cancelling a queued scan ends it before it runs; cancelling a running one stops its scan
    (CANCELLED, no report) and frees its slot for the next scan, which completes."""
    gw = await make_gateway(hold_after=0)
    roots = []
    for i in range(3):
        root, blocks = tree({f"file{i}.txt": f"content {i}\n".encode()})
        gw.add_blocks(blocks)
        roots.append(root)
    settings = with_api(settings_for(tmp_path, gw.url), scan_concurrency=1, scan_lease_s=1.5)
    async with serving(settings) as agent:
        service = ScanJobsService(agent.store, settings)
        running = await service.submit(ScanJobRequest(f"ipfs://{roots[0]}"), None)
        agent.wake_scans()
        await until(lambda: gw.requests["car"] + gw.requests["raw"] >= 1, 60)
        queued = await service.submit(ScanJobRequest(f"ipfs://{roots[1]}"), None)
        assert (await service.get(running.id)).status is JobStatus.RUNNING

        cancelled = await service.cancel(queued.id)
        assert cancelled.status is JobStatus.CANCELLED and cancelled.finished_at is not None
        asked = await service.cancel(running.id)
        assert asked.status is JobStatus.RUNNING and asked.cancel_requested

        stopped = await finished(service, running.id, 60)
        assert stopped.status is JobStatus.CANCELLED and stopped.report is None
        assert (await service.get(queued.id)).attempts == 0, "a cancelled queued scan never ran"

        gw.release()
        after = await service.submit(ScanJobRequest(f"ipfs://{roots[2]}"), None)
        agent.wake_scans()
        done = await finished(service, after.id)
        assert done.status is JobStatus.DONE and done.report is not None
        assert (await service.cancel(after.id)) == done, "a finished scan comes back unchanged"


async def test_a_scan_cut_off_by_a_graceful_stop_is_queued_again_at_once(
    make_gateway: MakeGateway, tmp_path: Path
) -> None:
    """An agent stopped (grace period 0) while a scan runs hands the scan back to the queue (not
    left running until its lease expires); the next agent runs it to the end."""
    gw = await make_gateway(hold_after=0)
    root, blocks = tree({"a.txt": b"alpha\n"})
    gw.add_blocks(blocks)
    base = settings_for(tmp_path, gw.url)
    settings = with_api(base.model_copy(update={"agent": base.agent.model_copy(update={"shutdown_grace_s": 0})}))
    async with serving(settings) as agent:
        service = ScanJobsService(agent.store, settings)
        job = await service.submit(ScanJobRequest(f"ipfs://{root}"), None)
        agent.wake_scans()
        await until(lambda: gw.requests["car"] + gw.requests["raw"] >= 1, 60)
    async with await Store.open(settings.agent.database()) as store:
        between = await store.jobs.get(job.id)
    assert between is not None and between.status is JobStatus.QUEUED and between.node is None
    gw.release()
    async with serving(settings) as agent:
        service = ScanJobsService(agent.store, settings)
        agent.wake_scans()
        done = await finished(service, job.id)
        assert done.status is JobStatus.DONE and done.attempts == 2
