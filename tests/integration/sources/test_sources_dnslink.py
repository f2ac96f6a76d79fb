"""DNSLink resolution over real DNS (a UDP server on 127.0.0.1 speaking dnspython's wire format)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from functools import partial

import pytest

from agent.ipfs.cid import cid_text, parse_cid
from agent.sources.dnslink import (
    DnslinkLookupFailed,
    DnslinkLoop,
    DnslinkMalformed,
    DnslinkNotFound,
    DnslinkResolution,
    normalise_domain,
    parse_content_path,
    resolve_dnslink,
)
from tests.conftest import IPFS_FIXTURES
from tests.support.dns_server import TestDnsServer

FIXTURES = IPFS_FIXTURES / "gateway-conformance"
CID_A = "bafkreicysg23kiwv34eg2d7qweipxwosdo2py4ldv42nbauguluen5v6am"
CID_B = "bafybeiaysi4s6lnjev27ln5icwm6tueaw2vdykrtjkwiphwekaywqhcjze"
KEY_B58 = "12D3KooWLQzUv2FHWGVPXTXSZpdHs7oHbXub2G5WC8Tx4NQhyd2d"
KEY_K51 = "k51qzi5uqu5dk3v4rmjber23h16xnr23bsggmqqil9z2gduiis5se8dht36dam"


@pytest.fixture
async def dns_server() -> AsyncIterator[TestDnsServer]:
    async with TestDnsServer() as server:
        yield server


def resolver(
    server: TestDnsServer, *, timeout: float = 2.0, max_depth: int = 8
) -> Callable[[str], Awaitable[DnslinkResolution]]:
    return partial(resolve_dnslink, nameservers=["127.0.0.1"], port=server.port, timeout=timeout, max_depth=max_depth)


def _fixture_dnslinks() -> list[tuple[str, str]]:
    """(domain, path) pairs from the conformance suite's dnslink.yml files (simple two-key YAML)."""
    pairs = []
    for yml in sorted(FIXTURES.glob("*/dnslink.yml")):
        domain = None
        for line in yml.read_text().splitlines():
            line = line.strip()
            if line.startswith("domain:"):
                domain = line.split(":", 1)[1].strip()
            elif line.startswith("path:") and domain:
                pairs.append((domain, line.split(":", 1)[1].split("#")[0].strip()))
                domain = None
    return pairs


async def test_conformance_dnslinks_resolve(dns_server: TestDnsServer) -> None:
    pairs = _fixture_dnslinks()
    assert len(pairs) >= 7
    for domain, path in pairs:
        dns_server.set(f"_dnslink.{domain}", f"dnslink={path}")
    for domain, path in pairs:
        got = await resolver(dns_server)(domain)
        namespace, identifier, sub = parse_content_path(path)
        assert got.domain == domain and got.value == path and got.path == sub
        assert got.record_name == f"_dnslink.{domain}"
        if namespace == "ipfs":
            assert got.cid is not None and cid_text(got.cid) == identifier and got.ipns_name is None
        else:
            assert got.cid is None and got.ipns_name == identifier
    # Both spellings of the same key in the fixtures normalise to one name.
    over_b58 = await resolver(dns_server)("dnslink-over-ipns.example.org")
    assert over_b58.ipns_name == KEY_K51
    subpath = await resolver(dns_server)("dnslink-subpath.example.org")
    assert subpath.path == "/root2"


async def test_value_updates_between_polls_are_seen(dns_server: TestDnsServer) -> None:
    dns_server.set("_dnslink.site.example.org", f"dnslink=/ipfs/{CID_A}")
    resolve = resolver(dns_server)
    first = await resolve("site.example.org")
    dns_server.set("_dnslink.site.example.org", f"dnslink=/ipfs/{CID_B}/docs/index.html")
    second = await resolve("site.example.org")
    assert first.cid == parse_cid(CID_A) and first.path == ""
    assert second.cid == parse_cid(CID_B) and second.path == "/docs/index.html"
    assert dns_server.queries["_dnslink.site.example.org"] == 2  # no cache between polls
    assert dns_server.queries["site.example.org"] == 0  # the prefixed name answered: no fallback


async def test_prefixed_record_wins_and_bare_domain_is_the_fallback(dns_server: TestDnsServer) -> None:
    dns_server.set("both.example.org", f"dnslink=/ipfs/{CID_B}", "v=spf1 -all")
    dns_server.set("_dnslink.both.example.org", f"dnslink=/ipfs/{CID_A}")
    dns_server.set("bare.example.org", "google-site-verification=xyz", f"dnslink=/ipfs/{CID_B}")
    resolve = resolver(dns_server)
    both = await resolve("both.example.org")
    assert both.cid == parse_cid(CID_A) and both.record_name == "_dnslink.both.example.org"
    bare = await resolve("bare.example.org")
    assert bare.cid == parse_cid(CID_B) and bare.record_name == "bare.example.org"
    assert dns_server.queries["_dnslink.bare.example.org"] == 1  # asked first, NXDOMAIN
    # '_dnslink.' given by the user is the same domain, and a trailing dot and case do not matter.
    assert (await resolve("_dnslink.Both.Example.ORG.")).cid == parse_cid(CID_A)


async def test_missing_records_are_clear_errors(dns_server: TestDnsServer) -> None:
    resolve = resolver(dns_server)
    with pytest.raises(DnslinkNotFound, match="NXDOMAIN") as nx:
        await resolve("nowhere.example.org")
    assert nx.value.nxdomain
    dns_server.set("_dnslink.empty.example.org")  # exists, no TXT
    dns_server.set("empty.example.org", "v=spf1 -all")
    with pytest.raises(DnslinkNotFound, match="no DNSLink record") as none:
        await resolve("empty.example.org")
    assert not none.value.nxdomain


async def test_multiple_records_choose_lexicographically_first(dns_server: TestDnsServer) -> None:
    later, earlier = sorted([CID_A, CID_B], reverse=True)
    dns_server.set(
        "_dnslink.multi.example.org",
        f"dnslink=/ipns/{KEY_K51}",
        f"dnslink=/ipfs/{later}",
        f"dnslink=/ipfs/{earlier}",
        "dnslink=/foo/bar",  # another namespace: ignored
        "dnslink=not-a-path",  # malformed: ignored
    )
    for _ in range(3):  # whatever order DNS returns them in
        got = await resolver(dns_server)("multi.example.org")
        assert got.cid == parse_cid(earlier)
        assert got.candidates == (f"/ipfs/{earlier}", f"/ipfs/{later}", f"/ipns/{KEY_K51}")


async def test_malformed_first_entry_is_skipped_and_all_malformed_is_an_error(dns_server: TestDnsServer) -> None:
    dns_server.set("_dnslink.skip.example.org", "dnslink=/ipfs/bafy-not-a-cid", f"dnslink=/ipfs/{CID_A}")
    assert (await resolver(dns_server)("skip.example.org")).cid == parse_cid(CID_A)
    dns_server.set("_dnslink.bad.example.org", "dnslink=/ipfs/not-a-cid")
    with pytest.raises(DnslinkMalformed, match="not-a-cid"):
        await resolver(dns_server)("bad.example.org")
    dns_server.set("_dnslink.escape.example.org", f"dnslink=/ipfs/{CID_A}/../../etc")
    with pytest.raises(DnslinkMalformed, match=r"'\.\.'"):
        await resolver(dns_server)("escape.example.org")


async def test_split_txt_strings_are_joined(dns_server: TestDnsServer) -> None:
    dns_server.set("_dnslink.split.example.org", ["dnslink=/ipfs/", CID_A, "/a"])
    got = await resolver(dns_server)("split.example.org")
    assert got.cid == parse_cid(CID_A) and got.path == "/a"


async def test_chained_domains_are_followed_and_paths_carried(dns_server: TestDnsServer) -> None:
    dns_server.set("_dnslink.a.example.org", "dnslink=/ipns/b.example.org/x")
    dns_server.set("_dnslink.b.example.org", "dnslink=/ipns/c.example.org/y")
    dns_server.set("_dnslink.c.example.org", f"dnslink=/ipfs/{CID_A}/z")
    got = await resolver(dns_server)("a.example.org")
    assert got.chain == ("a.example.org", "b.example.org", "c.example.org")
    assert got.cid == parse_cid(CID_A) and got.path == "/z/y/x"
    with pytest.raises(DnslinkLoop, match="longer than 2"):
        await resolver(dns_server, max_depth=2)("a.example.org")
    # A chain ending at an IPNS key stops there: DNS cannot verify a record.
    dns_server.set("_dnslink.c.example.org", f"dnslink=/ipns/{KEY_B58}")
    keyed = await resolver(dns_server)("a.example.org")
    assert keyed.ipns_name == KEY_K51 and keyed.cid is None and keyed.path == "/y/x"


async def test_loops_are_detected(dns_server: TestDnsServer) -> None:
    dns_server.set("_dnslink.ping.example.org", "dnslink=/ipns/pong.example.org")
    dns_server.set("_dnslink.pong.example.org", "dnslink=/ipns/ping.example.org")
    with pytest.raises(DnslinkLoop, match="loops"):
        await resolver(dns_server)("ping.example.org")


async def test_servfail_and_timeout_are_lookup_failures_not_absence(dns_server: TestDnsServer) -> None:
    dns_server.servfail.add("_dnslink.broken.example.org")
    with pytest.raises(DnslinkLookupFailed):
        await resolver(dns_server)("broken.example.org")
    assert dns_server.queries["broken.example.org"] == 0  # a failure is not a reason to fall back
    dns_server.silent.add("_dnslink.slow.example.org")
    with pytest.raises(DnslinkLookupFailed, match="timed out"):
        await resolver(dns_server, timeout=0.2)("slow.example.org")


def test_domain_validation() -> None:
    assert normalise_domain("_dnslink.Docs.IPFS.tech.") == "docs.ipfs.tech"
    for bad in ["", "localhost", "a..b", "-x.example.org", "x" * 64 + ".org", "exa mple.org"]:
        with pytest.raises(DnslinkMalformed):
            normalise_domain(bad)
