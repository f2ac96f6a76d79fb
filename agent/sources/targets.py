"""What a user can ask to scan, parsed from one string.

Every string a user (or a script fed by a hostile page) can type ends either in a
Target or in a TargetError whose message says, in words, what is wrong; nothing
else escapes `parse_target` or `parse_gateway_url`."""

from __future__ import annotations

import errno
import ipaddress
import re
import stat
from pathlib import Path
from urllib.parse import SplitResult, parse_qsl, unquote, urlsplit, urlunsplit

from agent.ipfs.cid import CID, parse_cid
from agent.ipfs.errors import InvalidCid
from agent.model.target import Target, TargetError, TargetKind
from agent.sources.cid_words import explain_invalid_cid

__all__ = [
    "MAX_TARGET_CHARS",
    "Target",
    "TargetError",
    "TargetKind",
    "explain_invalid_cid",
    "parse_gateway_url",
    "parse_target",
    "parse_watch_target",
    "quoted",
]


# Longer than any CID plus a deep path; refusing earlier keeps every message and lookup small.
MAX_TARGET_CHARS = 8192
# How much of a bad string a message quotes: a 1 MB argument must not become a 1 MB error line.
_QUOTED_CHARS = 80
_SUBDOMAIN = re.compile(r"^(?P<cid>[^.]+)\.ipfs\.(?P<host>.+)$", re.IGNORECASE)
_IPNS_SUBDOMAIN = re.compile(r"^(?P<name>[^.]+)\.ipns\.(?P<host>.+)$", re.IGNORECASE)
_SCHEME = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_HOST_CHARS = re.compile(r"^[A-Za-z0-9._-]+$")
_DAEMON_SCHEMES = ("kubo", "arweave+http", "arweave+https")


def quoted(text: str) -> str:
    """`text` as a message can quote it: control characters escaped, long strings cut."""
    if len(text) <= _QUOTED_CHARS:
        return repr(text)
    return f"{text[:_QUOTED_CHARS]!r}… ({len(text)} characters)"


def parse_target(text: str) -> Target:
    raw = text.strip()
    if not raw:
        raise TargetError("empty target")
    if len(raw) > MAX_TARGET_CHARS:
        raise TargetError(f"{quoted(raw)}: a target is at most {MAX_TARGET_CHARS} characters")
    if (bad := _CONTROL.search(raw)) is not None:
        raise TargetError(f"{quoted(raw)}: contains the control character {bad.group()!r}")
    scheme = _SCHEME.match(raw)
    if scheme is not None and len(scheme["scheme"]) <= 32:
        return _url_target(raw, scheme["scheme"].lower())
    if raw.startswith("/ipfs/"):
        cid_text, _, path = raw[len("/ipfs/") :].partition("/")
        return _content(raw, _cid(cid_text, raw), _split_path(path, raw))
    if raw.startswith("/ipns/"):
        name, _, path = raw[len("/ipns/") :].partition("/")
        return _named(raw, name, path)
    return _local_or_cid(raw)


def _content(raw: str, cid: CID, path: tuple[str, ...], gateway_hint: str | None = None) -> Target:
    """IPFS content; its url is the one a watched ipfs target is stored under."""
    url = f"ipfs://{cid}" + (f"/{'/'.join(path)}" if path else "")
    return Target(TargetKind.IPFS, raw, url=url, cid=cid, path=path, gateway_hint=gateway_hint)


def _named(raw: str, name: str, path: str, *, dnslink: bool = False, gateway_hint: str | None = None) -> Target:
    """An IPNS name or DNSLink domain; the scan resolves it (agent.pipeline.names) when it starts."""
    parts = _split_path(path, raw)
    tail = f"/{'/'.join(parts)}" if parts else ""
    if not name:
        raise TargetError(f"{quoted(raw)}: no IPNS name or DNSLink domain where one was expected")
    if not dnslink and _is_ipns_key(name):
        return Target(
            TargetKind.IPNS, raw, url=f"ipns://{name}{tail}", path=parts, gateway_hint=gateway_hint, name=name
        )
    domain = name.lower().rstrip(".")
    if not _DOMAIN.fullmatch(domain):
        what = "a DNS name" if dnslink else "an IPNS key nor a DNS name"
        raise TargetError(f"{quoted(raw)}: {quoted(name)} is {'not' if dnslink else 'neither'} {what}")
    return Target(
        TargetKind.DNSLINK, raw, url=f"dnslink://{domain}{tail}", path=parts, gateway_hint=gateway_hint, name=domain
    )


def _inlined_domain(label: str) -> str:
    """A DNSLink domain as a subdomain gateway spells it in one label: '-' for '.', '--' for '-'."""
    return ".".join(part.replace("\x00", "-") for part in label.replace("--", "\x00").split("-"))


def _url_target(raw: str, scheme: str) -> Target:
    rest = raw[len(scheme) + 3 :]
    if scheme == "ipfs":
        cid_text, _, path = rest.partition("/")
        return _content(raw, _cid(cid_text, raw), _split_path(path, raw))
    if scheme in ("ipns", "dnslink"):
        name, _, path = rest.partition("/")
        return _named(raw, name, path, dnslink=scheme == "dnslink")
    if scheme in _DAEMON_SCHEMES:
        raise TargetError(
            f"{quoted(raw)}: {scheme}:// targets are watched by the daemon (dweb-agent targets add), not scanned once"
        )
    if scheme not in ("http", "https"):
        raise TargetError(
            f"{quoted(raw)}: {scheme}:// is not a scheme this agent scans "
            "(ipfs://CID, ipns://NAME, dnslink://DOMAIN, http(s):// gateway URLs, /ipfs/CID, a CID or a local path)"
        )
    url, origin, host, port = _http_url(raw)
    match = _SUBDOMAIN.match(host)
    # A path gateway may itself live under a name like gw.ipfs.example: the label decides.
    if match and (_is_cid(match["cid"]) or not url.path.startswith(("/ipfs/", "/ipns/"))):
        hint = f"{url.scheme.lower()}://{match['host']}{port}"
        return _content(raw, _cid(match["cid"], raw), _split_path(url.path, raw), hint)
    if url.path.startswith("/ipfs/"):
        cid_text, _, path = url.path[len("/ipfs/") :].partition("/")
        return _content(raw, _cid(cid_text, raw), _split_path(path, raw), origin)
    if url.path.startswith("/ipns/"):
        name, _, path = url.path[len("/ipns/") :].partition("/")
        return _named(raw, unquote(name), path, gateway_hint=origin)
    if (named := _IPNS_SUBDOMAIN.match(host)) is not None:
        hint = f"{url.scheme.lower()}://{named['host']}{port}"
        label = named["name"]
        name = label if _is_ipns_key(label) else _inlined_domain(label)
        return _named(raw, name, url.path, gateway_hint=hint)
    raise TargetError(
        f"{quoted(raw)}: not a path (/ipfs/CID, /ipns/NAME) or subdomain (CID.ipfs.host, NAME.ipns.host) gateway URL"
    )


_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$", re.IGNORECASE)
_KUBO_API = re.compile(r"^https?://[^/]+/api/v0/?$")


def parse_watch_target(text: str) -> Target:
    """A target the daemon can watch; raises TargetError with the reason when it is none.

    The url it returns is the store's key for the target: its spelling is fixed."""
    raw = text.strip()
    if raw.startswith("kubo://") or _KUBO_API.match(raw):
        url = urlsplit(raw)
        base = f"http://{url.netloc}" if url.scheme == "kubo" else f"{url.scheme}://{url.netloc}"
        key = f"kubo://{url.netloc}" if url.scheme == "kubo" else base
        return Target(TargetKind.KUBO, raw, url=key, name=base)
    if raw.startswith(("arweave+http://", "arweave+https://")):
        return _arweave_target(raw)
    for prefix in ("ipns://", "/ipns/", "dnslink://"):
        if raw.startswith(prefix):
            name, _, path = raw[len(prefix) :].partition("/")
            path = path.strip("/")
            parts = tuple(p for p in path.split("/") if p)
            tail = f"/{path}" if path else ""
            if prefix != "dnslink://" and _is_ipns_key(name):
                return Target(TargetKind.IPNS, raw, url=f"ipns://{name}{tail}", name=name, path=parts)
            domain = name.lower().rstrip(".")
            if not _DOMAIN.match(domain):
                raise TargetError(f"{raw}: {name!r} is neither an IPNS key nor a DNS name")
            return Target(TargetKind.DNSLINK, raw, url=f"dnslink://{domain}{tail}", name=domain, path=parts)
    target = parse_target(raw)
    if target.kind != TargetKind.IPFS or target.cid is None:
        raise TargetError(f"{raw}: local files are scanned with `dweb-agent scan`, not watched")
    return target


def _arweave_target(raw: str) -> Target:
    url = urlsplit(raw[len("arweave+") :])
    tags: dict[str, list[str]] = {}
    min_height: int | None = None
    for key, value in parse_qsl(url.query, keep_blank_values=False):
        if key == "min_height":
            try:
                min_height = int(value)
            except ValueError:
                raise TargetError(f"{raw}: min_height {quoted(value)} is not a block height") from None
        else:
            tags.setdefault(key, []).extend(v for v in value.split(",") if v)
    if not tags:
        raise TargetError(f"{raw}: an Arweave target needs at least one tag filter (?Content-Type=image/png)")
    gateway = urlunsplit((url.scheme, url.netloc, "", "", ""))
    graphql = url.path or "/graphql"
    query = "&".join(f"{k}={','.join(sorted(v))}" for k, v in sorted(tags.items()))
    if min_height is not None:
        query += f"&min_height={min_height}"
    return Target(
        TargetKind.ARWEAVE,
        raw,
        url=f"arweave+{gateway}{graphql}?{query}",
        name=gateway,
        endpoint_path=graphql,
        tags={k: sorted(v) for k, v in tags.items()},
        min_height=min_height,
    )


def _is_ipns_key(text: str) -> bool:
    if _is_cid(text):
        return True
    return bool(re.fullmatch(r"(12D3KooW|Qm)[1-9A-HJ-NP-Za-km-z]{40,60}", text))


def parse_gateway_url(text: str) -> str:
    """A gateway given by the user: http or https, a host and an optional port, nothing else.

    Returns it without a trailing slash; raises TargetError saying what is wrong."""
    raw = text.strip()
    if len(raw) > MAX_TARGET_CHARS or _CONTROL.search(raw):
        raise TargetError(f"{quoted(raw)}: not a gateway URL")
    scheme = _SCHEME.match(raw)
    if scheme is None or scheme["scheme"].lower() not in ("http", "https"):
        raise TargetError(f"{quoted(raw)}: a gateway is an http:// or https:// URL, such as https://ipfs.io")
    url, origin, _host, _port = _http_url(raw)
    if url.path not in ("", "/") or url.query or url.fragment or raw.endswith(("?", "#")):
        raise TargetError(f"{quoted(raw)}: a gateway URL is only scheme://host[:port]; the agent adds /ipfs/CID itself")
    if "@" in url.netloc:
        raise TargetError(f"{quoted(raw)}: a gateway URL cannot carry a user name or password")
    return origin


def _http_url(raw: str) -> tuple[SplitResult, str, str, str]:
    """Split an http(s) URL and check its host and port; returns (parts, origin, host, ":port" or "")."""
    try:
        url = urlsplit(raw)
    except ValueError as exc:
        raise TargetError(f"{quoted(raw)}: not a valid URL: {_netloc_problem(raw, exc)}") from exc
    hostport = url.netloc.rpartition("@")[2]
    if hostport.startswith("["):
        host, _, port_text = hostport[1:].partition("]")
        port_text = port_text[1:] if port_text.startswith(":") else port_text
        try:
            ipaddress.IPv6Address(host.split("%")[0])
        except ValueError as exc:
            raise TargetError(f"{quoted(raw)}: {quoted(host)} in brackets is not an IPv6 address") from exc
    else:
        host, _, port_text = hostport.partition(":")
        if not host:
            raise TargetError(f"{quoted(raw)}: the URL names no host")
        _check_host_name(raw, host)
    port = ""
    if port_text:  # an empty port ("host:") means the default one
        if not port_text.isascii() or not port_text.isdigit():
            raise TargetError(f"{quoted(raw)}: the port {quoted(port_text)} is not a number")
        if len(port_text) > 5 or not 1 <= int(port_text) <= 65535:
            raise TargetError(f"{quoted(raw)}: port {port_text[:12]} is out of range (1-65535)")
        port = f":{int(port_text)}"
    userinfo = url.netloc.rpartition("@")[0]
    bracketed = f"[{host}]" if hostport.startswith("[") else host
    origin = f"{url.scheme.lower()}://{userinfo + '@' if userinfo else ''}{bracketed}{port}"
    return url, origin, host.lower(), port


def _netloc_problem(raw: str, exc: ValueError) -> str:
    netloc = raw.split("://", 1)[1].split("/", 1)[0]
    if netloc.count("[") != netloc.count("]") or netloc.find("[") > netloc.find("]"):
        return "a '[' or ']' in the host is not matched (an IPv6 host is written [::1])"
    if "[" in netloc:
        return "the host in brackets is not an IPv6 address (an IPv6 host is written [::1])"
    if not netloc.isascii():
        return "the host has characters that Unicode normalisation turns into others (such as '/' or ':')"
    return str(exc)


def _check_host_name(raw: str, host: str) -> None:
    if host.isascii():
        if not _HOST_CHARS.match(host):
            bad = next(c for c in host if not (c.isalnum() or c in "._-"))
            raise TargetError(f"{quoted(raw)}: {bad!r} cannot appear in a host name")
        return
    try:
        host.encode("idna")
    except UnicodeError as exc:
        raise TargetError(f"{quoted(raw)}: {quoted(host)} is not a valid international host name") from exc


def _split_path(path: str, target: str) -> tuple[str, ...]:
    parts = tuple(unquote(p) for p in path.split("/") if p)
    for part in parts:
        if part in (".", ".."):
            raise TargetError(f"{quoted(target)}: path component {quoted(part)} is not allowed in a content path")
        if "/" in part or _CONTROL.search(part):
            raise TargetError(
                f"{quoted(target)}: path component {quoted(part)} contains an encoded '/' or control character"
            )
    return parts


def _cid(text: str, target: str) -> CID:
    if not text:
        raise TargetError(f"{quoted(target)}: no CID where one was expected")
    try:
        return parse_cid(text)
    except InvalidCid as exc:
        raise TargetError(
            f"{quoted(target)}: {quoted(text)} is not a valid CID: {explain_invalid_cid(text, exc)}"
        ) from exc


def _looks_like_path(raw: str) -> bool:
    # A CID never holds these characters, so such a string was meant as a file.
    return any(c in raw for c in "/\\.~") or raw.startswith("-")


def _local_or_cid(raw: str) -> Target:
    local = _expand_home(raw) if raw.startswith("~") else Path(raw)
    try:
        if local.exists():
            mode = local.stat().st_mode
            if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
                # /dev/zero never ends and a pipe may never answer: only files and directories are read.
                raise TargetError(
                    f"{quoted(raw)}: not a regular file or directory (devices, pipes and sockets are never read)"
                )
            if stat.S_ISREG(mode) and local.suffix.lower() == ".car":
                return Target(TargetKind.CAR_FILE, raw, url=raw, local_path=local)
            return Target(TargetKind.LOCAL, raw, url=raw, local_path=local)
        missing = "no such file or directory"
    except OSError as exc:
        missing = _os_reason(exc)
    except UnicodeError:  # a lone surrogate cannot be a file name on this system
        missing = "not a name the file system can hold"
    if _looks_like_path(raw):
        hint = ""
        head = raw.split("/", 1)[0]
        if "/" in raw and _is_cid(head):
            hint = f" (for content under a CID, write ipfs://{raw})" if len(raw) < 200 else ""
        raise TargetError(f"{quoted(raw)}: {missing}{hint}")
    try:
        return _content(raw, parse_cid(raw), ())
    except InvalidCid as exc:
        raise TargetError(
            f"{quoted(raw)} is not a valid CID (nor an existing file): {explain_invalid_cid(raw, exc)}"
        ) from exc


def _expand_home(raw: str) -> Path:
    try:
        return Path(raw).expanduser()
    except (RuntimeError, UnicodeError) as exc:  # pathlib's answers for an unknown user, a missing $HOME
        user = raw[1:].split("/", 1)[0]
        if user:
            raise TargetError(f"{quoted(raw)}: there is no user {quoted(user)}, so it names no directory") from exc
        raise TargetError(f"{quoted(raw)}: the home directory is not known ($HOME is not set)") from exc


def _os_reason(exc: OSError) -> str:
    if exc.errno == errno.ENAMETOOLONG:
        return "too long to be a file name"
    return (exc.strerror or str(exc)).lower()


def _is_cid(text: str) -> bool:
    try:
        parse_cid(text)
    except InvalidCid:
        return False
    return True
