"""DNSLink: a domain's TXT record naming an /ipfs/ or /ipns/ path.

Spec: https://dnslink.dev/ and the dnslink-std reference resolvers. The
record lives at `_dnslink.<domain>`; the bare domain is asked only when that
name has no DNSLink (NXDOMAIN, no TXT, or no `dnslink=` entry), as boxo and
dnslink-std do. Entries that are malformed or use another namespace are
ignored, never fatal; among the valid ones the lexicographically first is the
answer (dnslink-std sorts them), and all of them are reported so a conflict is
visible. `/ipns/<domain>` values are followed through DNS up to `max_depth`;
`/ipns/<key>` values are returned for the caller to verify (DNS cannot).

What DNS says is believed as DNS says it: no DNSSEC validation is done here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import dns.asyncresolver
import dns.exception
import dns.name
import dns.rdatatype
import dns.resolver

from agent.ipfs.cid import CID, cid_text, parse_cid
from agent.ipfs.errors import InvalidCid, IpfsError
from agent.sources.ipns_keys import InvalidName, parse_ipns_name

__all__ = [
    "DNSLINK_PREFIX",
    "DnslinkError",
    "DnslinkLookupFailed",
    "DnslinkLoop",
    "DnslinkMalformed",
    "DnslinkNotFound",
    "DnslinkResolution",
    "normalise_domain",
    "parse_content_path",
    "resolve_dnslink",
]

DNSLINK_PREFIX = "_dnslink."
_TXT_PREFIX = "dnslink="
_SUPPORTED = ("ipfs", "ipns")
_LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?\Z")
_MAX_TXT_ENTRIES = 64  # a zone with more dnslink entries than this is not a DNSLink, it is noise


class DnslinkError(IpfsError):
    """Base of DNSLink failures; `domain` is the name that was being resolved."""

    def __init__(self, domain: str, message: str) -> None:
        self.domain = domain
        super().__init__(f"{domain}: {message}")


class DnslinkNotFound(DnslinkError):
    """NXDOMAIN, or the domain exists but carries no usable dnslink= entry."""

    def __init__(self, domain: str, message: str, nxdomain: bool = False) -> None:
        self.nxdomain = nxdomain
        super().__init__(domain, message)


class DnslinkMalformed(DnslinkError):
    """The domain name or the chosen DNSLink value cannot be used."""


class DnslinkLookupFailed(DnslinkError):
    """The DNS query itself failed (timeout, SERVFAIL, refused): nothing is known."""


class DnslinkLoop(DnslinkError):
    """A chain of /ipns/<domain> values loops or is longer than the depth limit."""


@dataclass(frozen=True)
class DnslinkResolution:
    domain: str
    value: str  # the chosen entry, e.g. '/ipfs/bafy.../a' (of the last domain in the chain)
    cid: CID | None  # set when the chain ends at /ipfs/
    ipns_name: str | None  # canonical k51... name when the chain ends at an IPNS key (verify it separately)
    path: str  # '' or '/a/b' below the CID or name; includes paths carried along the chain
    record_name: str = ""  # which DNS name answered: '_dnslink.<domain>' or '<domain>'
    candidates: tuple[str, ...] = ()  # every valid entry found there, sorted; more than one means a conflict
    chain: tuple[str, ...] = field(default_factory=tuple)  # domains followed, first is `domain`
    ttl: int | None = None  # seconds, from the answering RRset


def normalise_domain(domain: str) -> str:
    """Lower-case, no trailing dot, no `_dnslink.` prefix; labels checked (1-63 chars, total <= 244)."""
    text = domain.strip().lower()
    for prefix in ("dnslink://", "ipns://", "/ipns/"):
        if text.startswith(prefix):
            text = text[len(prefix) :]
    text = text.rstrip(".")
    if text.startswith(DNSLINK_PREFIX):
        text = text[len(DNSLINK_PREFIX) :]
    try:
        text = text.encode("idna").decode("ascii") if not text.isascii() else text
    except UnicodeError as exc:
        raise DnslinkMalformed(domain, f"not a valid domain name: {exc}") from None
    # 253 octets for the whole name, minus the "_dnslink." we prepend.
    if not text or len(text) > 253 - len(DNSLINK_PREFIX):
        raise DnslinkMalformed(domain, "domain name is empty or too long")
    labels = text.split(".")
    if len(labels) < 2 or not all(_LABEL.match(label) for label in labels):
        raise DnslinkMalformed(domain, "not a valid domain name (labels of 1-63 letters, digits, '-' or '_')")
    return text


def _clean_path(segments: list[str], where: str, domain: str) -> str:
    parts = [s for s in segments if s != ""]
    if any(s in (".", "..") for s in parts):
        raise DnslinkMalformed(domain, f"{where} contains '.' or '..' path segments")
    return "".join("/" + s for s in parts)


def parse_content_path(value: str, domain: str = "") -> tuple[str, str, str]:
    """Split '/ipfs/<cid>[/path]' or '/ipns/<name>[/path]' into (namespace, identifier, path).

    The identifier is canonical: a CID in cid_text form, an IPNS key as k51...,
    a domain lower-cased. Raises DnslinkMalformed."""
    if not value.startswith("/"):
        raise DnslinkMalformed(domain, f"value {value[:120]!r} does not start with '/'")
    parts = value.split("/")
    if len(parts) < 3 or parts[1] not in _SUPPORTED or not parts[2].strip():
        raise DnslinkMalformed(domain, f"value {value[:120]!r} is not /ipfs/<cid> or /ipns/<name>")
    namespace, identifier = parts[1], parts[2].strip()
    path = _clean_path(parts[3:], f"value {value[:120]!r}", domain)
    if namespace == "ipfs":
        try:
            return namespace, cid_text(parse_cid(identifier)), path
        except InvalidCid as exc:
            raise DnslinkMalformed(domain, f"value {value[:120]!r}: {exc}") from None
    if "." in identifier:
        return namespace, normalise_domain(identifier), path
    try:
        return namespace, parse_ipns_name(identifier).text, path
    except InvalidName as exc:
        raise DnslinkMalformed(domain, f"value {value[:120]!r}: {exc}") from None


def _entries(answer: dns.resolver.Answer | None) -> list[str]:
    """The `dnslink=` TXT values of an answer; character-strings of one record are joined (RFC 7208 style)."""
    if answer is None or answer.rrset is None:
        return []
    found: list[str] = []
    for rdata in answer.rrset:
        if rdata.rdtype != dns.rdatatype.TXT:
            continue
        raw = b"".join(rdata.strings)
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            continue  # the spec: invalid entries are ignored
        if text.startswith(_TXT_PREFIX):
            found.append(text[len(_TXT_PREFIX) :].strip())
    return found[:_MAX_TXT_ENTRIES]


def _valid_candidates(entries: list[str]) -> list[str]:
    """Entries whose namespace we support and whose form is well formed, sorted as dnslink-std sorts them."""
    valid = []
    for entry in entries:
        if not entry.startswith("/") or not entry.isascii() or not entry.isprintable():
            continue
        parts = entry.split("/")
        if len(parts) >= 3 and parts[1] in _SUPPORTED and parts[2].strip():
            valid.append(entry)
    return sorted(set(valid))


class _Lookup:
    def __init__(self, nameservers: list[str] | None, port: int, timeout: float) -> None:
        if nameservers:
            self.resolver = dns.asyncresolver.Resolver(configure=False)
            # Port first: dnspython binds the port to each nameserver when the list is assigned.
            self.resolver.port = port
            self.resolver.nameservers = list(nameservers)
        else:
            self.resolver = dns.asyncresolver.Resolver()
        self.resolver.lifetime = timeout
        self.resolver.timeout = timeout
        self.resolver.cache = None  # every poll must ask: a cached answer would hide an update

    async def txt(self, qname: str, domain: str) -> tuple[dns.resolver.Answer | None, bool]:
        """(answer or None, nxdomain)."""
        try:
            answer = await self.resolver.resolve(
                dns.name.from_text(qname), "TXT", search=False, raise_on_no_answer=False
            )
        except dns.resolver.NXDOMAIN:
            return None, True
        except dns.resolver.NoNameservers as exc:
            raise DnslinkLookupFailed(domain, f"TXT {qname}: no name server answered usefully ({exc})") from None
        except dns.exception.Timeout:
            raise DnslinkLookupFailed(domain, f"TXT {qname}: timed out") from None
        except dns.exception.DNSException as exc:
            raise DnslinkLookupFailed(domain, f"TXT {qname}: {type(exc).__name__}: {exc}") from None
        return answer, False


async def _resolve_one(lookup: _Lookup, domain: str) -> tuple[str, list[str], int | None]:
    """(record name, sorted valid entries, ttl) for one domain; raises when none."""
    nx_both = True
    tried = []
    for qname in (DNSLINK_PREFIX + domain, domain):
        answer, nxdomain = await lookup.txt(qname, domain)
        nx_both = nx_both and nxdomain
        entries = _entries(answer)
        candidates = _valid_candidates(entries)
        if candidates:
            ttl = answer.rrset.ttl if answer is not None and answer.rrset is not None else None
            return qname, candidates, ttl
        tried.append(
            f"{qname}: "
            + (
                "NXDOMAIN"
                if nxdomain
                else f"{len(entries)} dnslink= entries, none usable"
                if entries
                else "no dnslink= TXT"
            )
        )
    if nx_both:
        raise DnslinkNotFound(domain, "NXDOMAIN (" + "; ".join(tried) + ")", nxdomain=True)
    raise DnslinkNotFound(domain, "no DNSLink record (" + "; ".join(tried) + ")")


async def resolve_dnslink(
    domain: str,
    *,
    nameservers: list[str] | None = None,
    port: int = 53,
    timeout: float = 5.0,  # noqa: ASYNC109 - bounds each DNS query, not the whole call
    max_depth: int = 8,
) -> DnslinkResolution:
    """Resolve a domain's DNSLink, following /ipns/<domain> values up to `max_depth` hops.

    `nameservers` (IP addresses) replaces the system configuration; `timeout`
    bounds each query. Raises DnslinkNotFound, DnslinkMalformed,
    DnslinkLookupFailed or DnslinkLoop."""
    start = normalise_domain(domain)
    lookup = _Lookup(nameservers, port, timeout)
    chain: list[str] = []
    current = start
    carried = ""  # path from earlier hops, appended below the final target
    while True:
        if current in chain:
            raise DnslinkLoop(start, "DNSLink chain loops: " + " -> ".join([*chain, current]))
        if len(chain) >= max_depth:
            raise DnslinkLoop(start, f"DNSLink chain longer than {max_depth}: " + " -> ".join(chain))
        chain.append(current)
        record_name, candidates, ttl = await _resolve_one(lookup, current)
        # The first entry in sorted order that parses: a malformed entry is ignored, as the spec asks.
        errors: list[DnslinkMalformed] = []
        for chosen in candidates:
            try:
                namespace, identifier, path = parse_content_path(chosen, current)
                break
            except DnslinkMalformed as exc:
                errors.append(exc)
        else:
            raise DnslinkMalformed(current, "no usable DNSLink entry: " + "; ".join(str(e) for e in errors))
        path = path + carried
        if namespace == "ipns" and "." in identifier:
            current, carried = identifier, path
            continue
        return DnslinkResolution(
            domain=start,
            value=chosen,
            cid=parse_cid(identifier) if namespace == "ipfs" else None,
            ipns_name=identifier if namespace == "ipns" else None,
            path=path,
            record_name=record_name,
            candidates=tuple(candidates),
            chain=tuple(chain),
            ttl=ttl,
        )
