"""Two nodes on one PostgreSQL database: a scan claimed by a node that then died (its lease ran
out, nobody renews it) is claimed by another node, which runs it to the end; the dead node can
no longer finish it."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from agent.model.jobs import JobStatus
from agent.model.time import utcnow
from agent.runtime.scan_jobs import ScanJobRunner
from agent.services.scan_jobs import ScanJobRequest, ScanJobsService
from agent.store import Store
from tests.integration.scan_jobs.harness import StoreScanners, finished, tree, with_api
from tests.support.agent import settings_for
from tests.support.gateway import FixtureGateway
from tests.support.postgres import connect_admin, postgres_url

MakeGateway = Callable[..., Awaitable[FixtureGateway]]


@pytest.fixture
async def two_stores() -> AsyncIterator[tuple[Store, Store]]:
    """Two Stores (two nodes' own engines) on one fresh PostgreSQL schema."""
    admin = await connect_admin()
    schema = f"t_{uuid.uuid4().hex[:12]}"
    async with admin.begin() as conn:
        await conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    first = await Store.open(postgres_url(), schema=schema)
    second = await Store.open(postgres_url(), schema=schema)
    try:
        yield first, second
    finally:
        await first.close()
        await second.close()
        async with admin.begin() as conn:
            await conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        await admin.dispose()


async def test_a_scan_whose_node_died_is_run_by_another_node_after_its_lease_expires(
    make_gateway: MakeGateway, two_stores: tuple[Store, Store], tmp_path: Path
) -> None:
    """Node "dead" claims the scan and stops renewing; once its lease has expired node "alive"
    claims it (a second attempt) and completes it with the full report."""
    dead_store, alive_store = two_stores
    gw = await make_gateway()
    root, blocks = tree({"a.txt": b"alpha\n", "b.txt": b"beta\n"})
    gw.add_blocks(blocks)
    settings = with_api(settings_for(tmp_path, gw.url), scan_lease_s=30)
    svc = ScanJobsService(alive_store, settings)
    job = await svc.submit(ScanJobRequest(f"ipfs://{root}"), "alice")
    # Claimed ten minutes ago with a thirty-second lease: that node is long gone.
    [taken] = await dead_store.jobs.claim("dead", limit=1, lease_s=30, now=utcnow() - timedelta(minutes=10))
    assert taken.id == job.id and taken.node == "dead"

    runner = ScanJobRunner(settings, alive_store, "alive", StoreScanners(settings, alive_store))
    stop = asyncio.Event()
    running = asyncio.create_task(runner.run(stop))
    try:
        runner.wake()
        done = await finished(svc, job.id)
    finally:
        stop.set()
        await running
    assert done.status is JobStatus.DONE and done.node == "alive" and done.attempts == 2
    assert done.report is not None and sorted(i["path"] for i in done.report["items"]) == ["a.txt", "b.txt"]
    assert not await dead_store.jobs.finish(job.id, "dead", JobStatus.FAILED, error="late"), "the dead node lost it"
    assert (await svc.get(job.id)).status is JobStatus.DONE
