"""Address policy of the SSRF guard: which IP addresses the agent never connects to,
and the refusal (`BlockedDestination`) every layer of the guard raises.

See agent.net.guard for the whole design; this module is the table part of it
(metadata services, private, reserved and tunnelling ranges), with no I/O."""

from __future__ import annotations

import ipaddress
from typing import Final

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

__all__ = ["BlockedDestination", "IPAddress", "classify_ip", "origin"]


class BlockedDestination(Exception):
    """A URL or address the guard refuses to connect to.

    `url` is only the origin (scheme://host:port) or a bare host name, never
    the path, query or userinfo: webhook URLs routinely carry tokens there
    (``/services/T000/B000/XXXX``), and this exception ends up in logs."""

    def __init__(self, url: str, reason: str, *, host: str | None = None) -> None:
        super().__init__(f"{url}: {reason}")
        self.url = url
        self.reason = reason
        # Set when the refusal is about where `host` points (an address class
        # the guard forbids): listing `host` in allow_hosts would let it
        # through. None for refusals allow_hosts cannot lift (scheme,
        # credentials, port, spelling, redirects).
        self.host = host


def origin(scheme: str, host: str, port: int | None) -> str:
    """scheme://host:port (brackets around IPv6), the only part of a URL the guard logs."""
    shown = f"[{host}]" if ":" in host else host
    return f"{scheme}://{shown}" if port is None else f"{scheme}://{shown}:{port}"


# Metadata services are checked first so the reason names them: most sit in a
# range refused anyway, but "cloud metadata" is what an operator wants to read.
_METADATA: Final[dict[IPAddress, str]] = {
    # AWS, GCP, Azure IMDS, OpenStack, DigitalOcean, Oracle (v2), ...
    ipaddress.IPv4Address("169.254.169.254"): "cloud instance metadata service",
    # AWS ECS task metadata / credentials endpoint.
    ipaddress.IPv4Address("169.254.170.2"): "cloud container metadata service (AWS ECS)",
    # Alibaba Cloud; inside CGNAT 100.64/10.
    ipaddress.IPv4Address("100.100.100.200"): "cloud instance metadata service (Alibaba Cloud)",
    # Oracle Cloud legacy metadata; inside 192.0.0.0/24.
    ipaddress.IPv4Address("192.0.0.192"): "cloud instance metadata service (Oracle Cloud)",
    # Azure WireServer: a *public* Microsoft address that only means something
    # from inside an Azure VM, where it hands out host-agent config. No webhook
    # lives there, so refusing it costs nothing.
    ipaddress.IPv4Address("168.63.129.16"): "cloud host agent (Azure WireServer)",
    # AWS IMDS over IPv6 (Nitro); inside fc00::/7.
    ipaddress.IPv6Address("fd00:ec2::254"): "cloud instance metadata service (AWS IPv6)",
}

# Written out instead of relying on `is_global`/`is_private`, whose exact
# membership has changed between Python releases (3.11.10/3.12.4/3.13 all
# revised it). First match wins, so more specific entries come first.
_V4_FORBIDDEN: Final[tuple[tuple[ipaddress.IPv4Network, str], ...]] = tuple(
    (ipaddress.IPv4Network(net), why)
    for net, why in (
        ("0.0.0.0/8", "unspecified / 'this network' address"),  # RFC 1122; 0.0.0.0 often means localhost
        ("10.0.0.0/8", "private address"),  # RFC 1918
        ("100.64.0.0/10", "carrier-grade NAT shared address"),  # RFC 6598; cloud internal services live here
        ("127.0.0.0/8", "loopback address"),  # RFC 1122
        ("169.254.0.0/16", "link-local address"),  # RFC 3927; metadata services live here
        ("172.16.0.0/12", "private address"),  # RFC 1918
        ("192.0.0.0/24", "IETF protocol assignment (reserved)"),  # RFC 6890
        ("192.0.2.0/24", "documentation address (TEST-NET-1)"),  # RFC 5737
        ("192.88.99.0/24", "6to4 relay anycast (deprecated)"),  # RFC 7526
        ("192.168.0.0/16", "private address"),  # RFC 1918
        ("198.18.0.0/15", "benchmarking address"),  # RFC 2544
        ("198.51.100.0/24", "documentation address (TEST-NET-2)"),  # RFC 5737
        ("203.0.113.0/24", "documentation address (TEST-NET-3)"),  # RFC 5737
        ("224.0.0.0/4", "multicast address"),  # RFC 5771
        ("255.255.255.255/32", "limited broadcast address"),  # RFC 919; before 240/4 for the clearer reason
        ("240.0.0.0/4", "reserved address (240/4)"),  # RFC 1112
    )
)

# IPv6 ranges that are refused outright. Ranges that *embed* an IPv4 address
# which decides the verdict (IPv4-mapped, NAT64 well-known prefix, 6to4) are
# handled in `_classify_v6` before this table is consulted.
_V6_FORBIDDEN: Final[tuple[tuple[ipaddress.IPv6Network, str], ...]] = tuple(
    (ipaddress.IPv6Network(net), why)
    for net, why in (
        ("::/128", "unspecified address"),
        ("::1/128", "loopback address"),
        # ::a.b.c.d, deprecated (RFC 4291 2.5.5.1); some stacks still route it
        # to the embedded IPv4 address, so it is never allowed.
        ("::/96", "IPv4-compatible IPv6 address (deprecated)"),
        ("::ffff:0:0:0/96", "IPv4-translated address (SIIT)"),  # RFC 2765
        # Local-use NAT64 prefix (RFC 8215): translates into the operator's own
        # network, so whatever IPv4 it embeds is internal.
        ("64:ff9b:1::/48", "local-use NAT64 address"),
        ("100::/64", "discard-only address"),  # RFC 6666
        # Teredo tunnels to an IPv4 server/client pair hidden (obfuscated) in the
        # address; refused whole rather than decoded.
        ("2001::/32", "Teredo tunnel address"),  # RFC 4380
        ("2001:2::/48", "benchmarking address"),  # RFC 5180
        ("2001:10::/28", "ORCHID address (deprecated)"),  # RFC 4843
        ("2001:20::/28", "ORCHIDv2 address"),  # RFC 7343
        ("2001::/23", "IETF protocol assignment (reserved)"),  # RFC 2928; the rest of the block
        ("2001:db8::/32", "documentation address"),  # RFC 3849
        ("3fff::/20", "documentation address"),  # RFC 9637
        ("fc00::/7", "unique local (private) address"),  # RFC 4193
        ("fe80::/10", "link-local address"),  # RFC 4291
        ("fec0::/10", "site-local address (deprecated)"),  # RFC 3879
        ("ff00::/8", "multicast address"),  # RFC 4291
    )
)

_IPV4_MAPPED: Final = ipaddress.IPv6Network("::ffff:0:0/96")  # RFC 4291 2.5.5.2
_NAT64_WKP: Final = ipaddress.IPv6Network("64:ff9b::/96")  # RFC 6052
_SIX_TO_FOUR: Final = ipaddress.IPv6Network("2002::/16")  # RFC 3056
# Everything allocated for global unicast. Anything outside it that is not
# handled above (e.g. 4000::/2, SRv6 5f00::/16) is unassigned or special.
_GLOBAL_UNICAST_V6: Final = ipaddress.IPv6Network("2000::/3")


def classify_ip(ip: str | IPAddress) -> str | None:
    """Why connecting to `ip` is forbidden, or None if it is an ordinary
    public unicast address. Strings that are not an IP address are refused
    too (a reason is returned), so a caller can never mistake garbage for
    "allowed"."""
    if isinstance(ip, str):
        try:
            ip = ipaddress.ip_address(ip)
        except ValueError:
            return "not an IP address"
    if isinstance(ip, ipaddress.IPv6Address) and ip.scope_id:
        # A zone id pins the address to a local interface: only meaningful for
        # link-local and never needed for a public webhook.
        return f"IPv6 address with a zone id {ip}"
    meta = _METADATA.get(ip)
    if meta is not None:
        return f"{meta} {ip}"
    if isinstance(ip, ipaddress.IPv4Address):
        return _classify_v4(ip)
    return _classify_v6(ip)


def _classify_v4(ip: ipaddress.IPv4Address) -> str | None:
    for net, why in _V4_FORBIDDEN:
        if ip in net:
            return f"{why} {ip} ({net})"
    return None


def _classify_v6(ip: ipaddress.IPv6Address) -> str | None:
    embedded: ipaddress.IPv4Address | None = None
    kind = ""
    if ip in _IPV4_MAPPED:
        # ::ffff:a.b.c.d is a.b.c.d on a dual-stack socket.
        embedded, kind = ip.ipv4_mapped, "IPv4-mapped"
    elif ip in _NAT64_WKP:
        # The NAT64 gateway connects to the embedded address on our behalf, so
        # 64:ff9b::10.0.0.1 reaches 10.0.0.1 wherever a DNS64/NAT64 pair exists.
        embedded, kind = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF), "NAT64"
    elif ip in _SIX_TO_FOUR:
        # 2002:AABB:CCDD::/48 is tunnelled to relay AA.BB.CC.DD.
        embedded, kind = ip.sixtofour, "6to4"
    if embedded is not None:
        why = classify_ip(embedded)
        return None if why is None else f"{kind} address {ip} embeds {why}"
    for net, label in _V6_FORBIDDEN:
        if ip in net:
            return f"{label} {ip} ({net})"
    if ip not in _GLOBAL_UNICAST_V6:
        return f"reserved or unassigned address {ip} (outside global unicast 2000::/3)"
    return None
