"""`dweb-agent scan` of an IPNS name or a DNSLink domain, as an investigator runs it: the real
command against a real gateway (serving signed IPNS records) and a real DNS server on 127.0.0.1."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from agent.ipfs.cid import CID
from tests.support.cli import run_cli
from tests.support.config import write_agent_config
from tests.support.dns_server import TestDnsServer
from tests.support.gateway import FixtureGateway
from tests.support.ipns import IpnsPublisher
from tests.support.unixfs_builder import UnixFSBuilder

MakeGateway = Callable[..., Awaitable[FixtureGateway]]


def site(gw: FixtureGateway, files: dict[str, bytes]) -> CID:
    """A directory with `docs/` holding `files`, served by `gw`; returns its root."""
    builder = UnixFSBuilder()
    docs = builder.add_directory({name: builder.add_file(data) for name, data in files.items()})
    root, _ = builder.add_directory({"docs": docs, "index.txt": builder.add_file(b"home\n")})
    gw.add_blocks(builder.blocks)
    return root


def paths(report: dict[str, Any]) -> list[str]:
    return sorted(str(item["path"]) for item in report["items"])


@pytest.fixture
async def dns() -> AsyncIterator[TestDnsServer]:
    async with TestDnsServer() as server:
        yield server


async def scan(*args: str) -> tuple[int, dict[str, Any], str]:
    result = await run_cli("scan", *args, "--format", "json", "--no-media")
    return result.code, json.loads(result.stdout), result.stderr


async def test_an_ipns_name_is_scanned_at_the_root_its_signed_record_names(make_gateway: MakeGateway) -> None:
    """`scan ipns://NAME` finds the items of the DAG the name's verified record points at; the report
    keeps the target as typed and its root is the resolved CID; a path below the name is followed."""
    gw = await make_gateway()
    root = site(gw, {"a.txt": b"alpha\n", "b.txt": b"beta\n"})
    name = IpnsPublisher(gw)
    name.publish(root)

    code, report, stderr = await scan(f"ipns://{name.name}", "--gateway", gw.url)
    assert code == 0, stderr
    assert report["target"] == f"ipns://{name.name}" and report["root"] == str(root)
    assert paths(report) == ["docs/a.txt", "docs/b.txt", "index.txt"]
    assert report["summary"]["verified"] == 3 and report["errors"] == []

    code, report, stderr = await scan(f"/ipns/{name.name}/docs/b.txt", "--gateway", gw.url)
    assert code == 0, stderr
    assert report["root"] == str(root) and [i["path"] for i in report["items"]] == ["docs/b.txt"]


async def test_a_gateway_url_of_an_ipns_name_resolves_through_that_gateway(make_gateway: MakeGateway) -> None:
    """`scan http://gw/ipns/NAME/docs` with no --gateway asks that gateway for the record and the content."""
    gw = await make_gateway()
    root = site(gw, {"a.txt": b"alpha\n"})
    name = IpnsPublisher(gw)
    name.publish(root)

    code, report, stderr = await scan(f"{gw.url}/ipns/{name.name}/docs")
    assert code == 0, stderr
    assert report["root"] == str(root) and paths(report) == ["docs/a.txt"]
    assert gw.requests["ipns"] == 1


async def test_a_tampered_ipns_record_is_refused_with_the_reason_and_nothing_is_fetched(
    make_gateway: MakeGateway,
) -> None:
    """A gateway that rewrites the signed record to point the name at other content is not believed:
    exit 2, the error says the record failed its signature check, and the other content is never fetched."""
    gw = await make_gateway()
    honest = site(gw, {"a.txt": b"alpha\n"})
    planted = site(gw, {"a.txt": b"something else\n"})
    assert len(str(honest)) == len(str(planted))
    name = IpnsPublisher(gw)
    name.publish(honest)
    gw.ipns_records[name.name] = gw.ipns_records[name.name].replace(str(honest).encode(), str(planted).encode())

    code, report, stderr = await scan(f"ipns://{name.name}", "--gateway", gw.url)
    assert code == 2
    assert report["items"] == [] and report["root"] is None
    [error] = report["errors"]
    assert "no gateway served a valid record" in error and "record rejected" in error and "Signature" in error
    assert "record rejected" in stderr
    assert gw.requests["car"] + gw.requests["raw"] == 0


async def test_a_dnslink_domain_is_scanned_at_the_root_its_txt_record_names(
    make_gateway: MakeGateway, dns: TestDnsServer, tmp_path: Path
) -> None:
    """`scan dnslink://domain/path` asks the configured [dnslink] nameserver for _dnslink.domain and scans
    what it names; a DNSLink naming an IPNS key goes on through that key's verified record."""
    gw = await make_gateway()
    root = site(gw, {"a.txt": b"alpha\n", "b.txt": b"beta\n"})
    cfg = write_agent_config(
        tmp_path,
        gateways={"urls": [gw.url], "read_timeout_s": 5},
        dnslink={"nameservers": ["127.0.0.1"], "port": dns.port, "timeout_s": 2},
    )
    dns.set("_dnslink.site.example", f"dnslink=/ipfs/{root}/docs")

    code, report, stderr = await scan("dnslink://site.example/a.txt", "--config", str(cfg.path))
    assert code == 0, stderr
    assert report["target"] == "dnslink://site.example/a.txt" and report["root"] == str(root)
    assert [i["path"] for i in report["items"]] == ["docs/a.txt"]
    assert dns.queries["_dnslink.site.example"] >= 1

    name = IpnsPublisher(gw)
    name.publish(root)
    dns.set("_dnslink.keyed.example", f"dnslink=/ipns/{name.name}")
    code, report, stderr = await scan("/ipns/keyed.example", "--config", str(cfg.path))
    assert code == 0, stderr
    assert report["root"] == str(root) and paths(report) == ["docs/a.txt", "docs/b.txt", "index.txt"]


async def test_a_domain_with_no_dnslink_is_a_scan_error_naming_nxdomain(
    make_gateway: MakeGateway, dns: TestDnsServer, tmp_path: Path
) -> None:
    """A domain the nameserver does not know ends the scan with exit 2 and an error that says NXDOMAIN."""
    gw = await make_gateway()
    cfg = write_agent_config(
        tmp_path,
        gateways={"urls": [gw.url]},
        dnslink={"nameservers": ["127.0.0.1"], "port": dns.port, "timeout_s": 2},
    )
    code, report, _ = await scan("dnslink://missing.example", "--config", str(cfg.path))
    assert code == 2 and report["items"] == [] and report["root"] is None
    [error] = report["errors"]
    assert "missing.example" in error and "NXDOMAIN" in error
