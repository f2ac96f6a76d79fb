"""The agent process killed with SIGKILL in the middle of a scan, then started again:
nothing already scanned is fetched twice, no finding is lost or duplicated."""

from __future__ import annotations

import asyncio
import json
import signal
from collections.abc import Awaitable, Callable
from pathlib import Path

from agent.ipfs.cid import parse_cid
from agent.model.status import ScanStatus
from agent.store import Store
from tests.conftest import MEDIA_FIXTURES
from tests.support.cli import spawn_agent
from tests.support.config import write_agent_config
from tests.support.gateway import FixtureGateway
from tests.support.media_dag import expected_pdq
from tests.support.unixfs_builder import UnixFSBuilder
from tests.support.wait import until

MakeGateway = Callable[..., Awaitable[FixtureGateway]]


async def test_sigkill_mid_scan_then_restart_fetches_nothing_twice_and_keeps_every_finding(
    make_gateway: MakeGateway, tmp_path: Path
) -> None:
    photos = {p.name: p.read_bytes() for p in sorted((MEDIA_FIXTURES / "pdq" / "bridge-mods").iterdir())}
    builder = UnixFSBuilder()
    file_keys = {}
    entries = {}
    for name, data in photos.items():
        cid, size = builder.add_file(data)
        file_keys[bytes(cid.digest).hex()] = name
        entries[name] = (cid, size)
    root, _ = builder.add_directory(entries)
    gw = await make_gateway(hold_after=6)  # the directory and five files, then the gateway stalls
    gw.add_blocks(builder.blocks)
    listing = tmp_path / "list.txt"
    listing.write_text(f"pdq {expected_pdq()['pdq/bridge-mods/aaa-orig.jpg'][0]}\n")
    cfg = write_agent_config(
        tmp_path,
        agent={"shutdown_grace_s": 5},
        gateways={"urls": [gw.url], "read_timeout_s": 120},
        lists={"sources": [listing]},
        schedule={"jitter_fraction": 0},
        targets=[{"url": f"ipfs://{root}", "interval_s": 3600}],
    )
    config, data_dir, database = cfg.path, cfg.data_dir, cfg.database

    first = await spawn_agent(config, tmp_path / "first.log", "agent-under-test")
    try:

        async def some_items_recorded() -> bool:
            if not (data_dir / "agent.sqlite3").exists():
                return False
            async with await Store.open(database) as store:
                return await store.items.count() >= 3

        await until(some_items_recorded, seconds=60)
        await until(lambda: gw.requests["car"] > 6, seconds=60)  # the scan is stalled mid-way
    finally:
        if first.returncode is None:
            first.send_signal(signal.SIGKILL)
        await first.wait()
    async with await Store.open(database) as store:
        before = {key for key in file_keys if key in await store.items.seen_keys(file_keys)}
        findings_before = await store.findings.count()
    assert 3 <= len(before) < len(photos)

    gw.release()
    gw.log.clear()
    second_log = tmp_path / "second.log"
    second = await spawn_agent(config, second_log, "agent-under-test")
    try:

        async def scan_complete() -> bool:
            async with await Store.open(database) as store:
                target = (await store.targets.all())[0]
                return target.last_success_at is not None

        await until(scan_complete, 120)
    finally:
        if second.returncode is None:
            second.send_signal(signal.SIGTERM)
        await asyncio.wait_for(second.wait(), 60)
    err = second_log.read_text()
    assert second.returncode == 0, err[-2000:]
    events = [json.loads(line)["event"] for line in err.splitlines() if line.startswith("{")]
    assert "agent.scans_interrupted_earlier" in events

    refetched = {parse_cid(cid).digest.hex() for fmt, cid, _ in gw.log if fmt in ("car", "raw")}
    assert not refetched & before, "items recorded before the kill were fetched again"
    assert set(file_keys) - before <= refetched
    async with await Store.open(database) as store:
        assert await store.items.count() == len(photos)
        findings = await store.findings.recent(limit=1000)
        assert len(findings) == len(photos) >= findings_before
        assert len({(f.item_key, f.list_name, f.entry_id, f.signal_type) for f in findings}) == len(findings)
        statuses = [s.status for s in await store.scans.recent(10)]
        assert statuses.count(ScanStatus.INTERRUPTED) == 1 and statuses[0] == ScanStatus.OK
