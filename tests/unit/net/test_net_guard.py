"""SSRF guard decisions: URL spelling, address ranges, the guarded resolver.

Nothing here opens a socket: URLs are only parsed and classified, and the
resolver is fed by an in-memory fake."""

from __future__ import annotations

import ipaddress
import socket

import aiohttp
import pytest
from yarl import URL

from agent.config import AlertSettings
from agent.net.addresses import BlockedDestination, classify_ip
from agent.net.connector import GuardedResolver, guarded_request, guarded_session
from agent.net.guard import NetGuard
from tests.support.resolver import FakeResolver

GUARD = NetGuard()


# -- check_url: refused URLs -------------------------------------------------

REFUSED = [
    ("http://127.0.0.1", "loopback"),
    ("http://127.0.0.1:8080/hook", "loopback"),
    ("http://[::1]", "loopback"),
    ("http://[0:0:0:0:0:0:0:1]/", "loopback"),
    ("http://10.0.0.1", "private"),
    ("http://172.16.5.4", "private"),
    ("http://192.168.1.1", "private"),
    ("http://169.254.169.254", "metadata"),
    ("http://169.254.169.254/latest/meta-data/", "metadata"),
    ("http://100.100.100.200", "metadata"),
    ("http://2130706433", "non-canonical"),
    ("http://017700000001", "non-canonical"),
    ("http://0x7f.1", "non-canonical"),
    ("http://0x7f000001", "non-canonical"),
    ("http://0x7f.0.0.1", "non-canonical"),
    ("http://[::ffff:127.0.0.1]", "IPv4-mapped"),
    ("http://0177.0.0.1", "non-canonical"),
    ("http://127.000.000.001", "non-canonical"),
    ("http://08.8.8.8", "non-canonical"),
    ("http://127.1", "non-canonical"),
    ("http://10.1", "non-canonical"),
    ("http://127.0.0.1.", "trailing dot"),
    ("http://example.com./hook", "trailing dot"),
    # Fullwidth digits, IDNA-mapped to 127.0.0.1 (written as escapes: they look like ASCII).
    ("http://\uff11\uff12\uff17.\uff10.\uff10.\uff11/", "non-canonical"),
    ("http://[fe80::1%25eth0]", "zone id"),
    ("http://[fe80::1]", "link-local"),
    ("http://[::ffff:127.1]", "not a valid IPv6"),
    ("http://[::127.0.0.1]", "IPv4-compatible"),
    ("http://[64:ff9b::a00:1]", "NAT64"),
    ("http://[64:ff9b:1::5db8:d822]", "local-use NAT64"),
    ("http://[2002:a00:1::]", "6to4"),
    ("http://[2001:0::1]", "Teredo"),
    ("http://[fd00:ec2::254]", "metadata"),
    ("http://[fc00::1]", "unique local"),
    ("http://[fec0::1]", "site-local"),
    ("http://[ff02::1]", "multicast"),
    ("http://[2001:db8::1]", "documentation"),
    ("http://0.0.0.0:8080", "unspecified"),
    ("http://[::]", "unspecified"),
    ("http://224.0.0.1", "multicast"),
    ("http://255.255.255.255", "broadcast"),
    ("http://192.0.2.10", "documentation"),
    ("http://198.18.0.1", "benchmarking"),
    ("ftp://example.com", "scheme"),
    ("file:///etc/passwd", "scheme"),
    ("gopher://example.com:70/", "scheme"),
    ("http://user:pw@example.com", "credentials"),
    ("http://user@example.com", "credentials"),
    ("http://@example.com", "credentials"),
    ("http://localhost:8080/", "localhost"),
    ("http://api.localhost/", "localhost"),
    ("http://ⓛⓞⓒⓐⓛⓗⓞⓢⓣ/", "localhost"),  # enclosed letters map to "localhost"
    ("http://exa_mple.com", "not a valid DNS host name"),
    ("http://-bad.example.com", "not a valid DNS host name"),
    ("http://a%2eb.example.com", "percent-encoding"),
    ("http:///hook", "not an absolute URL"),
    ("/hook", "not an absolute URL"),
    ("http://example.com:0/", "port"),
    ("http://example.com:99999/", "not a valid URL"),
    ("http://1.1.1.1\\@127.0.0.1/", "not a valid URL"),
]


@pytest.mark.parametrize(("url", "why"), REFUSED, ids=[u for u, _ in REFUSED])
def test_refused_urls(url: str, why: str) -> None:
    with pytest.raises(BlockedDestination) as info:
        GUARD.check_url(url)
    assert why.lower() in info.value.reason.lower(), info.value.reason


@pytest.mark.parametrize(
    "url",
    [
        "https://example.com/hook",
        "http://93.184.216.34/",
        "http://[2606:4700::1111]/",
        "HTTPS://Hooks.Example.COM:8443/a/b?c=d",
        "http://bücher.example/hook",
        "http://[::ffff:93.184.216.34]/",  # IPv4-mapped public address
        "http://[64:ff9b::5db8:d822]/",  # NAT64 of a public address
        "http://[2002:5db8:d822::1]/",  # 6to4 of a public address
        "http://0x7f.example.com/",  # hex-looking label, but a DNS name
    ],
)
def test_public_urls_pass(url: str) -> None:
    target = GUARD.check_url(url)
    assert target.scheme in {"http", "https"}
    assert not target.allowed_host


def test_parsed_target_fields() -> None:
    t = GUARD.check_url("HTTPS://Bücher.Example:8443/hook?x=1")
    assert (t.scheme, t.host, t.port, t.ip) == ("https", "xn--bcher-kva.example", 8443, None)
    assert t.origin == "https://xn--bcher-kva.example:8443"
    assert t.url.path == "/hook" and t.url.query_string == "x=1"
    assert GUARD.check_url("http://93.184.216.34/").ip == ipaddress.IPv4Address("93.184.216.34")
    assert GUARD.check_url("http://[2606:4700::1111]/").origin == "http://[2606:4700::1111]:80"


def test_blocked_destination_never_carries_path_query_or_userinfo() -> None:
    for url in (
        "http://admin:hunter2@example.com/services/T0/B0/s3cr3t?token=s3cr3t",
        "http://10.0.0.1/services/T0/B0/s3cr3t?token=s3cr3t",
        "ftp://example.com/s3cr3t",
        "http://exa_mple.com/s3cr3t?token=s3cr3t",
        "http://example.com:99999/s3cr3t",
    ):
        with pytest.raises(BlockedDestination) as info:
            GUARD.check_url(url)
        text = f"{info.value} {info.value.url} {info.value.reason} {info.value.args}"
        assert "s3cr3t" not in text and "hunter2" not in text and "services" not in text, text


def test_overlong_url_refused() -> None:
    with pytest.raises(BlockedDestination, match="longer"):
        GUARD.check_url("https://example.com/" + "a" * 5000)


# -- classify_ip ---------------------------------------------------------------

FORBIDDEN_IPS = [
    ("127.0.0.1", "loopback"),
    ("127.255.255.254", "loopback"),
    ("::1", "loopback"),
    ("10.255.0.1", "private"),
    ("172.31.255.255", "private"),
    ("192.168.0.1", "private"),
    ("fd12:3456::1", "unique local"),
    ("169.254.1.1", "link-local"),
    ("fe80::abcd", "link-local"),
    ("100.64.0.1", "carrier-grade NAT"),
    ("100.127.255.255", "carrier-grade NAT"),
    ("224.0.0.251", "multicast"),
    ("239.255.255.250", "multicast"),
    ("ff05::1:3", "multicast"),
    ("0.0.0.0", "unspecified"),  # noqa: S104 - classified here, never bound
    ("0.1.2.3", "unspecified"),
    ("::", "unspecified"),
    ("240.0.0.1", "reserved"),
    ("255.255.255.255", "broadcast"),
    ("192.0.2.1", "documentation"),
    ("198.51.100.7", "documentation"),
    ("203.0.113.200", "documentation"),
    ("198.18.0.1", "benchmarking"),
    ("198.19.255.255", "benchmarking"),
    ("192.0.0.8", "IETF protocol assignment"),
    ("169.254.169.254", "metadata"),
    ("169.254.170.2", "metadata"),
    ("100.100.100.200", "metadata"),
    ("168.63.129.16", "Azure"),
    ("fd00:ec2::254", "metadata"),
    ("::ffff:10.0.0.1", "IPv4-mapped"),
    ("::ffff:169.254.169.254", "metadata"),
    ("64:ff9b::7f00:1", "NAT64"),
    ("64:ff9b:1::1", "local-use NAT64"),
    ("2002:c0a8:0101::1", "6to4"),
    ("2001:0:4136:e378:8000:63bf:3fff:fdd2", "Teredo"),
    ("::10.0.0.1", "IPv4-compatible"),
    ("::8.8.8.8", "IPv4-compatible"),
    ("::ffff:0:8.8.8.8", "IPv4-translated"),
    ("fec0::1", "site-local"),
    ("2001:db8::1", "documentation"),
    ("3fff::1", "documentation"),
    ("2001:2::1", "benchmarking"),
    ("100::1", "discard"),
    ("5f00::1", "outside global unicast"),
    ("fe80::1%eth0", "zone id"),
    ("not-an-ip", "not an IP"),
    ("127.1", "not an IP"),
]


@pytest.mark.parametrize(("ip", "why"), FORBIDDEN_IPS, ids=[i for i, _ in FORBIDDEN_IPS])
def test_forbidden_addresses(ip: str, why: str) -> None:
    reason = classify_ip(ip)
    assert reason is not None and why.lower() in reason.lower(), reason


def test_embedded_reason_names_the_embedded_address() -> None:
    reason = classify_ip("::ffff:127.0.0.1")
    assert reason is not None and "127.0.0.1" in reason and "loopback" in reason


@pytest.mark.parametrize(
    "ip",
    [
        "93.184.216.34",
        "8.8.8.8",
        "1.1.1.1",
        "100.63.255.255",  # just below CGNAT
        "100.128.0.0",  # just above CGNAT
        "172.15.255.255",
        "172.32.0.0",
        "169.253.255.255",
        "198.17.255.255",
        "198.20.0.0",
        "223.255.255.255",
        "2606:4700::1111",
        "2a00:1450:4001:80b::200e",
        "::ffff:8.8.8.8",
        "64:ff9b::808:808",
        "2002:808:808::1",
    ],
)
def test_public_addresses_allowed(ip: str) -> None:
    assert classify_ip(ip) is None
    assert classify_ip(ipaddress.ip_address(ip)) is None


# -- configuration -------------------------------------------------------------


def test_allow_hosts_are_normalised_and_exact() -> None:
    guard = NetGuard(allow_hosts=frozenset({"127.0.0.1", "[::1]", "LocalHost", "Hooks.Bücher.Example"}))
    assert guard.is_allowed_host("127.0.0.1")
    assert guard.is_allowed_host("::1")
    assert guard.is_allowed_host("localhost")
    assert guard.is_allowed_host("hooks.xn--bcher-kva.example")
    assert not guard.is_allowed_host("127.0.0.2")
    assert not guard.is_allowed_host("evil.localhost")
    assert not guard.is_allowed_host("x.hooks.xn--bcher-kva.example")
    assert guard.check_url("http://127.0.0.1:8080/").allowed_host
    assert guard.check_url("http://[::1]/").allowed_host
    assert guard.check_url("http://LOCALHOST:1/").allowed_host
    # Allowed hosts still get the spelling, scheme and credential rules.
    for url in ("http://127.1/", "http://0x7f000001/", "ftp://127.0.0.1/", "http://u:p@127.0.0.1/"):
        with pytest.raises(BlockedDestination):
            guard.check_url(url)
    with pytest.raises(BlockedDestination, match="loopback"):
        guard.check_url("http://127.0.0.2/")


def test_from_settings_builds_the_guard_from_the_alerts_section() -> None:
    # The one construction the daemon and `webhooks add/test` share: the
    # operator's [alerts] allow_hosts, normalised like any allow-list entry.
    settings = AlertSettings(allow_hosts=["LocalHost", "[::1]", "127.0.0.1"])
    guard = NetGuard.from_settings(settings)
    assert guard == NetGuard(allow_hosts=frozenset({"localhost", "::1", "127.0.0.1"}))
    assert guard.check_url("http://LOCALHOST:8080/hook").allowed_host
    assert guard.check_url("http://[::1]/").allowed_host
    with pytest.raises(BlockedDestination, match="loopback"):
        guard.check_url("http://127.0.0.2/")
    assert NetGuard.from_settings(AlertSettings()) == NetGuard()
    with pytest.raises(ValueError, match="not a host"):
        NetGuard.from_settings(AlertSettings(allow_hosts=["not a host"]))


def test_allow_ports_and_schemes() -> None:
    guard = NetGuard(allow_ports=frozenset({443}), schemes=frozenset({"https"}))
    assert guard.check_url("https://example.com/").port == 443
    with pytest.raises(BlockedDestination, match="port 8443"):
        guard.check_url("https://example.com:8443/")
    with pytest.raises(BlockedDestination, match="scheme"):
        guard.check_url("http://example.com:443/")
    with pytest.raises(ValueError, match="unsupported schemes"):
        NetGuard(schemes=frozenset({"http", "file"}))
    with pytest.raises(ValueError, match="not a host name or IP address"):
        NetGuard(allow_hosts=frozenset({"not a host"}))


# -- check_redirect --------------------------------------------------------------


def test_check_redirect_reasons() -> None:
    base = "https://hooks.example.com/in"
    meta = GUARD.check_redirect("http://169.254.169.254/latest/meta-data", base)
    assert "metadata" in meta and "latest" not in meta
    assert "loopback" in GUARD.check_redirect("http://[::1]:8080/", base)
    assert "non-canonical" in GUARD.check_redirect("http://127.1/", base)
    # A relative Location resolves against the base and is still refused.
    same = GUARD.check_redirect("/elsewhere", base)
    assert "never followed" in same and "hooks.example.com" in same
    assert "never followed" in GUARD.check_redirect(None, base)


# -- GuardedResolver --------------------------------------------------------------


async def test_name_resolving_to_private_address_is_refused() -> None:
    fake = FakeResolver({"internal.example": ["10.0.0.5"]})
    resolver = GuardedResolver(NetGuard(), fake)
    with pytest.raises(BlockedDestination) as info:
        await resolver.resolve("internal.example", 443, socket.AF_UNSPEC)
    assert info.value.url == "internal.example"
    assert "10.0.0.5" in info.value.reason and "private" in info.value.reason
    assert info.value.host == "internal.example", "allow_hosts takes the name, so the refusal names it"
    assert fake.calls == ["internal.example"]


@pytest.mark.parametrize(
    ("url", "host"),
    [
        ("http://10.0.0.1/hook", "10.0.0.1"),
        ("http://localhost:8080/", "localhost"),
        ("http://[::1]/", "::1"),
        ("ftp://hooks.example/", None),
        ("http://user@hooks.example/", None),
        ("http://0x7f.1/", None),
    ],
)
def test_a_refusal_names_the_host_only_when_allow_hosts_would_lift_it(url: str, host: str | None) -> None:
    with pytest.raises(BlockedDestination) as info:
        GUARD.check_url(url)
    assert info.value.host == host
    if host is not None:
        NetGuard(allow_hosts=frozenset({host})).check_url(url)  # allowing exactly that host is enough


async def test_all_forbidden_answers_are_all_reported() -> None:
    fake = FakeResolver({"rebind.example": ["127.0.0.1", "169.254.169.254", "::1"]})
    with pytest.raises(BlockedDestination) as info:
        await GuardedResolver(NetGuard(), fake).resolve("rebind.example", 80)
    assert all(w in info.value.reason for w in ("loopback", "metadata", "::1"))


async def test_mixed_answers_keep_only_public_ones() -> None:
    fake = FakeResolver({"mixed.example": ["10.0.0.5", "93.184.216.34", "fe80::1", "2606:4700::1111"]})
    answers = await GuardedResolver(NetGuard(), fake).resolve("mixed.example", 443, socket.AF_UNSPEC)
    assert [a["host"] for a in answers] == ["93.184.216.34", "2606:4700::1111"]
    assert all(a["port"] == 443 and a["hostname"] == "mixed.example" for a in answers)


async def test_allowed_host_bypasses_address_check() -> None:
    fake = FakeResolver({"hooks.internal": ["10.0.0.5"], "other.internal": ["10.0.0.6"]})
    resolver = GuardedResolver(NetGuard(allow_hosts=frozenset({"HOOKS.internal"})), fake)
    assert [a["host"] for a in await resolver.resolve("hooks.internal", 80)] == ["10.0.0.5"]
    with pytest.raises(BlockedDestination):
        await resolver.resolve("other.internal", 80)


async def test_resolver_errors_pass_through() -> None:
    resolver = GuardedResolver(NetGuard(), FakeResolver({"empty.example": []}))
    with pytest.raises(OSError, match="no such host"):
        await resolver.resolve("missing.example", 80)
    assert await resolver.resolve("empty.example", 80) == []
    await resolver.close()


# -- guarded_request preconditions (refused before any connection) --------------


async def test_guarded_request_refuses_unsafe_use() -> None:
    guard = NetGuard()
    fake = FakeResolver({})
    async with guarded_session(guard, timeout=5, resolver=fake) as session:
        with pytest.raises(BlockedDestination, match="metadata"):
            async with guarded_request(session, guard, "POST", "http://169.254.169.254/"):
                pass
        with pytest.raises(BlockedDestination, match="non-canonical"):
            async with guarded_request(session, guard, "POST", URL("http://2130706433/")):
                pass
        with pytest.raises(ValueError, match="redirects"):
            async with guarded_request(session, guard, "GET", "https://example.com/", allow_redirects=True):
                pass
        with pytest.raises(ValueError, match="prox"):
            async with guarded_request(session, guard, "GET", "https://example.com/", proxy="http://127.0.0.1:3128"):
                pass
        with pytest.raises(TypeError, match="guarded_session"):
            async with guarded_request(session, NetGuard(), "GET", "https://example.com/"):
                pass
    async with aiohttp.ClientSession() as plain:
        with pytest.raises(TypeError, match="guarded_session"):
            async with guarded_request(plain, guard, "GET", "https://example.com/"):
                pass
    assert fake.calls == []  # nothing was even looked up
    with pytest.raises(TypeError):
        guarded_session(guard, timeout=5, trust_env=True)
