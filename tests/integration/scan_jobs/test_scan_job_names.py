"""Queued scans of IPNS names and DNSLink domains, run by a real Agent: resolved when the scan
runs (the record through the job's own gateways, verified; DNS through [dnslink] nameservers),
with the same report as `dweb-agent scan` of the same target."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from agent.config import Settings, load_settings
from agent.model.jobs import JobStatus
from agent.services.scan_jobs import ScanJobRequest, ScanJobsService
from tests.integration.scan_jobs.harness import comparable, finished, serving, tree
from tests.support.cli import run_cli
from tests.support.config import AgentConfig, write_agent_config
from tests.support.dns_server import TestDnsServer
from tests.support.gateway import FixtureGateway
from tests.support.ipns import IpnsPublisher

MakeGateway = Callable[..., Awaitable[FixtureGateway]]


@pytest.fixture
async def dns() -> AsyncIterator[TestDnsServer]:
    async with TestDnsServer() as server:
        yield server


def config(tmp_path: Path, gw: FixtureGateway, dns: TestDnsServer) -> tuple[AgentConfig, Settings]:
    cfg = write_agent_config(
        tmp_path,
        gateways={"urls": [gw.url], "read_timeout_s": 5},
        dnslink={"nameservers": ["127.0.0.1"], "port": dns.port, "timeout_s": 2},
    )
    return cfg, load_settings(cfg.path)


async def cli_report(cfg: AgentConfig, target: str, *gateway: str) -> tuple[int, dict[str, Any]]:
    args = [a for url in gateway for a in ("--gateway", url)]
    result = await run_cli("scan", target, *args, "--format", "json", "--config", str(cfg.path))
    return result.code, json.loads(result.stdout)


async def run_job(settings: Settings, request: ScanJobRequest) -> dict[str, Any]:
    async with serving(settings) as agent:
        service = ScanJobsService(agent.store, settings)
        job = await service.submit(request, "alice")
        agent.wake_scans()
        done = await finished(service, job.id)
        assert done.status is JobStatus.DONE, done.error
        assert done.report is not None
        return done.report


async def test_an_ipns_scan_resolves_the_record_through_the_jobs_gateways_and_reports_as_the_cli(
    make_gateway: MakeGateway, dns: TestDnsServer, tmp_path: Path
) -> None:
    """A queued ipns:// scan with its own gateway gets the verified record from that gateway (the
    configured one is never asked), scans the root it names, and stores the CLI's report."""
    configured, own = await make_gateway(), await make_gateway()
    root, blocks = tree({"a.txt": b"alpha\n", "b.txt": b"beta\n"})
    own.add_blocks(blocks)
    name = IpnsPublisher(own)
    name.publish(root)
    cfg, settings = config(tmp_path, configured, dns)

    code, expected = await cli_report(cfg, f"ipns://{name.name}/a.txt", own.url)
    assert code == 0, expected["errors"]
    report = await run_job(settings, ScanJobRequest(f"ipns://{name.name}/a.txt", gateways=(own.url,)))
    assert comparable(report) == comparable(expected)
    assert report["target"] == f"ipns://{name.name}/a.txt" and report["root"] == str(root)
    assert [item["path"] for item in report["items"]] == ["a.txt"]
    assert own.requests["ipns"] == 2 and configured.requests["ipns"] == 0


async def test_a_dnslink_scan_asks_the_configured_nameserver_and_reports_as_the_cli(
    make_gateway: MakeGateway, dns: TestDnsServer, tmp_path: Path
) -> None:
    """A queued dnslink:// scan is resolved through [dnslink] nameservers and its report is the CLI's."""
    gw = await make_gateway()
    root, blocks = tree({"a.txt": b"alpha\n", "b.txt": b"beta\n"})
    gw.add_blocks(blocks)
    dns.set("_dnslink.site.example", f"dnslink=/ipfs/{root}")
    cfg, settings = config(tmp_path, gw, dns)

    code, expected = await cli_report(cfg, "dnslink://site.example")
    assert code == 0, expected["errors"]
    report = await run_job(settings, ScanJobRequest("dnslink://site.example"))
    assert comparable(report) == comparable(expected)
    assert report["root"] == str(root) and sorted(i["path"] for i in report["items"]) == ["a.txt", "b.txt"]
    assert dns.queries["_dnslink.site.example"] == 2


async def test_a_queued_scan_of_a_tampered_record_ends_with_the_clis_error_and_scans_nothing(
    make_gateway: MakeGateway, dns: TestDnsServer, tmp_path: Path
) -> None:
    """A record rewritten to point elsewhere fails verification: the job ends DONE with the CLI's
    error (the rejection and its reason), no items, and the planted content never fetched."""
    gw = await make_gateway()
    honest, honest_blocks = tree({"a.txt": b"alpha\n"})
    planted, planted_blocks = tree({"a.txt": b"planted\n"})
    gw.add_blocks(honest_blocks + planted_blocks)
    name = IpnsPublisher(gw)
    name.publish(honest)
    gw.ipns_records[name.name] = gw.ipns_records[name.name].replace(str(honest).encode(), str(planted).encode())
    cfg, settings = config(tmp_path, gw, dns)

    code, expected = await cli_report(cfg, f"/ipns/{name.name}")
    assert code == 2
    report = await run_job(settings, ScanJobRequest(f"/ipns/{name.name}"))
    assert comparable(report) == comparable(expected)
    assert report["items"] == [] and report["root"] is None
    [error] = report["errors"]
    assert "no gateway served a valid record" in error and "record rejected" in error
    assert gw.requests["car"] + gw.requests["raw"] == 0
