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
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final, Protocol

import aiohttp
from yarl import URL

# The guard's public names stay importable from here: the tables live in
# addresses, the aiohttp side in connector.
from agent.net.addresses import BlockedDestination, IPAddress, classify_ip, origin

__all__ = [
    "NetGuard",
    "OperatorAllowList",
    "ParsedTarget",
    "redirect_target_refused",
]

# Longer URLs are refused outright: no webhook needs them, and it bounds the
# work and the size of anything we might log.
MAX_URL_LENGTH: Final = 4096
_REDIRECT_STATUSES: Final = frozenset({301, 302, 303, 307, 308})

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
        return origin(self.scheme, self.host, self.port)


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
        shown = origin(scheme or "?", host or "?", port) if host else "<url>"

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
