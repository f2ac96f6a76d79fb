"""SSRF guard for user-supplied URLs (webhook endpoints).

Platforms register the URLs the agent POSTs alerts to, so a URL is attacker
input: it must never make the agent talk to itself, to the private network it
runs in, or to a cloud metadata service. The guard works in three layers:

1. `NetGuard.check_url` (sync, no DNS) parses the URL exactly as aiohttp will
   (yarl), refuses anything but plain http(s) without credentials, refuses
   every IP spelling other than a canonical dotted quad or a bracketed IPv6
   literal (``2130706433``, ``0x7f.1``, ``0177.0.0.1``, ``127.1``, zone ids,
   fullwidth digits, ...), and classifies IP literals itself, because aiohttp
   never calls the resolver for an IP literal.
2. `GuardedResolver` sits inside aiohttp's connector. It resolves a host name
   once, drops every forbidden address and hands aiohttp only what it checked,
   so the socket goes to exactly the address that was classified: there is no
   second lookup a rebinding DNS server could answer differently.
3. `guarded_session` / `guarded_request` never follow redirects (a 3xx comes
   back to the caller as is) and re-check every request made on the session,
   so a Location header cannot steer the agent anywhere.

Hosts in `NetGuard.allow_hosts` (exact, case-insensitive, set by the operator,
never by a platform) skip the address checks; scheme, credential, spelling and
port rules still apply to them.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import weakref
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, Final, Protocol

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

__all__ = [
    "BlockedDestination",
    "GuardedResolver",
    "NetGuard",
    "ParsedTarget",
    "classify_ip",
    "guarded_request",
    "guarded_session",
    "redirect_target_refused",
]

# Longer URLs are refused outright: no webhook needs them, and it bounds the
# work and the size of anything we might log.
MAX_URL_LENGTH: Final = 4096
_REDIRECT_STATUSES: Final = frozenset({301, 302, 303, 307, 308})


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


# ---------------------------------------------------------------------------
# Address classification
# ---------------------------------------------------------------------------

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


# ---------------------------------------------------------------------------
# URL checks
# ---------------------------------------------------------------------------

# One DNS label in LDH form (RFC 1123). IDNA names arrive here already in
# their ASCII "xn--" form, so this is the whole alphabet.
_LABEL: Final = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
# What inet_aton()/getaddrinfo() and the WHATWG URL parser treat as a number
# when it is the last label: decimal, 0x-hex (and octal, which is decimal
# digits). A host ending like this is an IPv4 address in *some* parser, so it
# must be the one canonical spelling or nothing.
_NUMERIC_LABEL: Final = re.compile(r"[0-9]+|0[x][0-9a-f]*")
_DECIMAL_OCTET: Final = re.compile(r"0|[1-9][0-9]{0,2}")


@dataclass(frozen=True, slots=True)
class ParsedTarget:
    """A URL that passed `NetGuard.check_url`.

    `url` is the yarl URL aiohttp must be given (pass it, not the original
    string, so nothing is parsed twice). `host` is the ASCII (IDNA) host
    without brackets; `ip` is set when the host is an IP literal (already
    classified); `allowed_host` says the operator allow-list matched, which
    also makes `GuardedResolver` skip its address check for this host."""

    url: URL
    scheme: str
    host: str
    port: int
    ip: IPAddress | None
    allowed_host: bool

    @property
    def origin(self) -> str:
        """scheme://host:port, safe to log."""
        return _origin(self.scheme, self.host, self.port)


def _origin(scheme: str, host: str, port: int | None) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"{scheme}://{shown}" if port is None else f"{scheme}://{shown}:{port}"


def _normalise_allowed(entry: str) -> str:
    """Operator allow-list entry -> the form `check_url` produces for a host."""
    host = entry.strip().lower()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        pass
    try:
        raw = URL.build(scheme="http", host=host).raw_host
    except (ValueError, TypeError) as exc:
        raise ValueError(f"allow_hosts entry {entry!r} is not a host name or IP address") from exc
    if not raw:
        raise ValueError(f"allow_hosts entry {entry!r} is empty")
    return raw


class OperatorAllowList(Protocol):
    """The settings a guard is built from (agent.config.AlertSettings has this shape).

    A protocol rather than the settings class, so agent/net stays below agent.config.
    """

    @property
    def allow_hosts(self) -> Sequence[str]: ...


@dataclass(frozen=True, slots=True)
class NetGuard:
    """Policy for outbound connections to user-supplied URLs.

    allow_hosts: host names or IP literals the operator trusts (exact match,
        case-insensitive, IDNA-normalised; ``"127.0.0.1"``, ``"[::1]"``,
        ``"hooks.internal.example"``). They skip the address checks only.
    allow_ports: ports a URL may use; None allows any port 1-65535.
    schemes: a subset of {"http", "https"}.
    """

    allow_hosts: frozenset[str] = frozenset()
    allow_ports: frozenset[int] | None = None
    schemes: frozenset[str] = frozenset({"http", "https"})

    def __post_init__(self) -> None:
        bad = set(self.schemes) - {"http", "https"}
        if bad:
            raise ValueError(f"unsupported schemes {sorted(bad)}: only http and https")
        # Frozen dataclass: normalise through object.__setattr__ once, here.
        object.__setattr__(self, "schemes", frozenset(s.lower() for s in self.schemes))
        object.__setattr__(self, "allow_hosts", frozenset(_normalise_allowed(h) for h in self.allow_hosts))
        if self.allow_ports is not None:
            object.__setattr__(self, "allow_ports", frozenset(self.allow_ports))

    @classmethod
    def from_settings(cls, alerts: OperatorAllowList) -> NetGuard:
        """The guard for webhook deliveries: the one way the daemon and the CLI build it.

        Entries are normalised (case, brackets, IDNA) by __post_init__; a bad entry
        raises ValueError naming it.
        """
        return cls(allow_hosts=frozenset(alerts.allow_hosts))

    def is_allowed_host(self, host: str) -> bool:
        """Whether the operator allow-listed `host` (as aiohttp passes it: ASCII, no brackets)."""
        if not self.allow_hosts:
            return False
        try:
            return _normalise_allowed(host) in self.allow_hosts
        except ValueError:
            return False

    def check_url(self, url: str | URL) -> ParsedTarget:
        """Parse and vet `url` without any network access.

        Raises BlockedDestination (reason says why) for: a scheme other than
        http/https, userinfo, no host, a host that is neither a valid DNS name
        nor a canonical IP literal, a `localhost` name, a port outside
        allow_ports, or an IP literal `classify_ip` forbids. Host names are
        not resolved here; `GuardedResolver` checks what they resolve to."""
        if isinstance(url, URL):
            parsed, written, authority = url, url.raw_host, url.raw_authority
        else:
            if len(url) > MAX_URL_LENGTH:
                raise BlockedDestination("<url>", f"URL longer than {MAX_URL_LENGTH} characters")
            try:
                # Parse with yarl because that is what aiohttp connects with;
                # a second parser (urllib) could read a different host.
                parsed = URL(url)
                # The host as written (no IDNA/UTS-46 mapping), to catch
                # spellings that only *become* an IP address once mapped.
                as_written = URL(url, encoded=True)
                written, authority = as_written.raw_host, as_written.raw_authority
            except (ValueError, TypeError):
                # The parser's message may quote the URL; keep it out.
                raise BlockedDestination("<url>", "not a valid URL") from None

        scheme = (parsed.scheme or "").lower()
        host = parsed.raw_host or ""
        port = parsed.port
        shown = _origin(scheme or "?", host or "?", port) if host else "<url>"

        def refuse(reason: str, *, by_address: bool = False) -> BlockedDestination:
            return BlockedDestination(shown, reason, host=host if by_address else None)

        if scheme and scheme not in self.schemes:
            raise refuse(f"scheme {scheme[:16]!r} is not allowed (only {', '.join(sorted(self.schemes))})")
        if not parsed.absolute or not scheme:
            raise refuse("not an absolute URL")
        if parsed.raw_user is not None or parsed.raw_password is not None or "@" in (authority or ""):
            # Credentials in the URL are sent as Basic auth and end up in logs;
            # they are also the classic "http://trusted@evil" confusion.
            raise refuse("credentials (userinfo) in the URL are not allowed")
        if not host:
            raise refuse("URL has no host")
        if port is None or not 0 < port < 65536:
            raise refuse("URL has no valid port")
        if self.allow_ports is not None and port not in self.allow_ports:
            raise refuse(f"port {port} is not allowed")

        ip = self._check_host(host, (written or "").lower(), refuse)
        allowed = self.is_allowed_host(host)
        if ip is not None and not allowed:
            why = classify_ip(ip)
            if why is not None:
                raise refuse(why, by_address=True)
        return ParsedTarget(url=parsed, scheme=scheme, host=host, port=port, ip=ip, allowed_host=allowed)

    def _check_host(self, host: str, written: str, refuse: Callable[..., BlockedDestination]) -> IPAddress | None:
        """Vet the spelling of `host`; return the address if it is an IP literal."""
        if "%" in host:
            if ":" in host:
                raise refuse("IPv6 zone ids (%iface) are not allowed")
            raise refuse("percent-encoding in the host is not allowed")
        if ":" in host:
            # yarl only yields a ':' host for a bracketed literal. ipaddress is
            # strict: no '::ffff:127.1', no leading-zero IPv4 tails.
            try:
                return ipaddress.IPv6Address(host)
            except ValueError:
                raise refuse(f"{host[:64]!r} is not a valid IPv6 literal") from None
        labels = host.split(".")
        if host.endswith("."):
            # 'example.com.' and '127.0.0.1.' resolve like their dotless forms
            # but dodge exact-match rules (allow-lists, the IPv4 canonical
            # check); no webhook needs the root label.
            raise refuse("a trailing dot in the host is not allowed")
        if _NUMERIC_LABEL.fullmatch(labels[-1]):
            canonical = len(labels) == 4 and all(_DECIMAL_OCTET.fullmatch(p) and int(p) <= 255 for p in labels)
            if not canonical or written != host:
                # Decimal (2130706433), hex (0x7f.1), octal (0177.0.0.1), short
                # (127.1, 10.1) or IDNA-mapped (fullwidth digits) spellings are
                # read differently by different parsers; refuse them all.
                raise refuse(
                    f"non-canonical IPv4 spelling {host[:64]!r}: "
                    "only dotted-quad decimal without leading zeros is accepted"
                )
            return ipaddress.IPv4Address(host)
        if len(host) > 253 or not all(_LABEL.fullmatch(label) for label in labels):
            raise refuse(f"{host[:64]!r} is not a valid DNS host name")
        if (labels[-1] == "localhost") and not self.is_allowed_host(host):
            # RFC 6761: resolvers answer these with loopback without asking DNS.
            # GuardedResolver would refuse the answer anyway; say so early.
            raise refuse(f"{host!r} is a localhost name (loopback)", by_address=True)
        return None

    def check_redirect(self, location: str | None, base_url: str | URL) -> str:
        """Why a redirect to `location` (a Location header, resolved against
        `base_url`) is refused, for logging. Redirects are never followed, so
        this always returns a reason; when the target itself is forbidden the
        reason says so (e.g. the metadata address), otherwise it is the
        no-redirects policy."""
        if location is None:
            return "redirect without a Location header (redirects are never followed)"
        try:
            base = base_url if isinstance(base_url, URL) else URL(base_url)
            target = base.join(URL(location))
        except (ValueError, TypeError):
            return "redirect to an invalid Location (redirects are never followed)"
        try:
            checked = self.check_url(target)
        except BlockedDestination as exc:
            return f"redirect to a refused destination {exc.url}: {exc.reason}"
        return f"redirect to {checked.origin} not followed (redirects are never followed)"


def redirect_target_refused(guard: NetGuard, resp: aiohttp.ClientResponse) -> str | None:
    """For a response from `guarded_request`: None unless it is a redirect, in
    which case the reason it was not followed (see `NetGuard.check_redirect`).
    Delivery treats any 3xx as a failed attempt."""
    if resp.status not in _REDIRECT_STATUSES:
        return None
    return guard.check_redirect(resp.headers.get("Location"), resp.url)


# ---------------------------------------------------------------------------
# aiohttp integration
# ---------------------------------------------------------------------------


class GuardedResolver(AbstractResolver):
    """aiohttp resolver that only ever returns addresses the guard allows.

    aiohttp connects to exactly the addresses a resolver returns, so filtering
    here closes DNS rebinding: the name is looked up once, every answer is
    classified, and only the allowed ones reach connect(). If every answer is
    forbidden, `BlockedDestination` propagates out of the request (it is not
    an OSError, so aiohttp does not wrap it). Allow-listed hosts are passed
    through unfiltered. Use with ``use_dns_cache=False`` so every connection
    gets a fresh, checked answer."""

    def __init__(self, guard: NetGuard, resolver: AbstractResolver | None = None) -> None:
        self._guard = guard
        self._resolver = resolver
        self._owns_resolver = resolver is None

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        if self._resolver is None:
            # ThreadedResolver needs a running loop, so it is made on first use.
            self._resolver = aiohttp.ThreadedResolver()
        answers = await self._resolver.resolve(host, port, family)
        if self._guard.is_allowed_host(host):
            return answers
        kept: list[ResolveResult] = []
        reasons: list[str] = []
        for answer in answers:
            why = classify_ip(answer["host"])
            if why is None:
                kept.append(answer)
            else:
                reasons.append(why)
        if answers and not kept:
            raise BlockedDestination(
                host, "resolves only to forbidden addresses: " + "; ".join(_unique(reasons)), host=host
            )
        return kept

    async def close(self) -> None:
        if self._resolver is not None and self._owns_resolver:
            await self._resolver.close()


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


# Sessions built by guarded_session and the guard each was built with, so
# guarded_request can refuse a plain ClientSession (whose connector would
# resolve and connect without any check).
_GUARDED_SESSIONS: weakref.WeakKeyDictionary[aiohttp.ClientSession, NetGuard] = weakref.WeakKeyDictionary()


def _trace_config(guard: NetGuard) -> aiohttp.TraceConfig:
    """Belt and braces for code that uses the session directly instead of
    `guarded_request`: every request is re-checked (IP literals never reach
    the resolver), and a followed redirect is stopped before the next hop."""

    async def on_start(
        _s: aiohttp.ClientSession, _ctx: SimpleNamespace, params: aiohttp.TraceRequestStartParams
    ) -> None:
        guard.check_url(params.url)

    async def on_redirect(
        _s: aiohttp.ClientSession, _ctx: SimpleNamespace, params: aiohttp.TraceRequestRedirectParams
    ) -> None:
        raise BlockedDestination(
            _origin(params.url.scheme, params.url.raw_host or "?", params.url.port),
            guard.check_redirect(params.response.headers.get("Location"), params.url),
        )

    config = aiohttp.TraceConfig()
    config.on_request_start.append(on_start)
    config.on_request_redirect.append(on_redirect)
    return config


def guarded_session(
    guard: NetGuard,
    *,
    timeout: aiohttp.ClientTimeout | float,
    resolver: AbstractResolver | None = None,
    **session_kw: Any,
) -> aiohttp.ClientSession:
    """A ClientSession whose every connection goes through `guard`.

    `resolver` is the real resolver GuardedResolver wraps (default
    aiohttp.ThreadedResolver; tests inject fakes). Call inside a running loop;
    close it like any session. `trust_env` is forced off: an HTTP(S)_PROXY
    from the environment would make the proxy, not us, resolve the target."""
    if isinstance(timeout, (int, float)):
        timeout = aiohttp.ClientTimeout(total=float(timeout))
    for forbidden in ("connector", "trust_env", "trace_configs"):
        if forbidden in session_kw:
            raise TypeError(f"guarded_session does not accept {forbidden!r}")
    connector = aiohttp.TCPConnector(
        resolver=GuardedResolver(guard, resolver),
        # No cache: each connection is resolved and checked afresh, and the
        # checked answer is the one connected to.
        use_dns_cache=False,
    )
    session = aiohttp.ClientSession(
        connector=connector,
        timeout=timeout,
        trust_env=False,
        trace_configs=[_trace_config(guard)],
        **session_kw,
    )
    _GUARDED_SESSIONS[session] = guard
    return session


@asynccontextmanager
async def guarded_request(
    session: aiohttp.ClientSession, guard: NetGuard, method: str, url: str | URL, **kw: Any
) -> AsyncIterator[aiohttp.ClientResponse]:
    """``async with guarded_request(session, guard, "POST", url, json=...) as resp:``

    Checks `url` before anything touches the network (BlockedDestination is
    raised on entering the block), never follows redirects (a 3xx is handed
    back as is; see `redirect_target_refused`), and only runs on a session
    from `guarded_session` built with the same guard. `proxy` and
    `allow_redirects=True` are refused: both would route around the guard."""
    if _GUARDED_SESSIONS.get(session) is not guard:
        raise TypeError("guarded_request needs a session made by guarded_session with the same guard")
    if kw.pop("allow_redirects", False):
        raise ValueError("guarded_request never follows redirects")
    if kw.get("proxy") is not None:
        raise ValueError("guarded_request does not use proxies")
    target = guard.check_url(url)
    async with session.request(method, target.url, allow_redirects=False, **kw) as resp:
        yield resp
