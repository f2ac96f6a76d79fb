"""What a user can ask to scan, parsed from one string.

Every string a user (or a script fed by a hostile page) can type ends either in a
Target or in a TargetError whose message says, in words, what is wrong; nothing
else escapes `parse_target` or `parse_gateway_url`."""

from __future__ import annotations

import errno
import ipaddress
import re
import stat
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from urllib.parse import SplitResult, unquote, urlsplit

from multiformats import multibase

from agent.ipfs.cid import CID, parse_cid
from agent.ipfs.errors import InvalidCid
from agent.ipfs.varint import VarintError, VarintProblem, read_uvarint


class TargetError(ValueError):
    """The target string names nothing this agent can scan."""


class TargetKind(StrEnum):
    IPFS = "ipfs"
    CAR_FILE = "car"
    LOCAL = "local"


@dataclass(frozen=True)
class Target:
    text: str
    kind: TargetKind
    cid: CID | None = None
    path: tuple[str, ...] = ()
    local_path: Path | None = None
    # The gateway a URL target named; used when the user gave no --gateway.
    gateway_hint: str | None = None
    extra: dict[str, str] = field(default_factory=dict)


# Longer than any CID plus a deep path; refusing earlier keeps every message and lookup small.
MAX_TARGET_CHARS = 8192
# How much of a bad string a message quotes: a 1 MB argument must not become a 1 MB error line.
_QUOTED_CHARS = 80
_SUBDOMAIN = re.compile(r"^(?P<cid>[^.]+)\.ipfs\.(?P<host>.+)$", re.IGNORECASE)
_SCHEME = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_HOST_CHARS = re.compile(r"^[A-Za-z0-9._-]+$")
_DAEMON_SCHEMES = ("dnslink", "kubo", "arweave+http", "arweave+https")


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
        return Target(raw, TargetKind.IPFS, _cid(cid_text, raw), _split_path(path, raw))
    if raw.startswith("/ipns/"):
        raise TargetError(_IPNS.format(quoted(raw)))
    return _local_or_cid(raw)


_IPNS = "{}: IPNS names are resolved by the daemon's watch targets (dweb-agent targets add), not by one-off scans yet"


def _url_target(raw: str, scheme: str) -> Target:
    rest = raw[len(scheme) + 3 :]
    if scheme == "ipfs":
        cid_text, _, path = rest.partition("/")
        return Target(raw, TargetKind.IPFS, _cid(cid_text, raw), _split_path(path, raw))
    if scheme == "ipns":
        raise TargetError(_IPNS.format(quoted(raw)))
    if scheme in _DAEMON_SCHEMES:
        raise TargetError(
            f"{quoted(raw)}: {scheme}:// targets are watched by the daemon (dweb-agent targets add), not scanned once"
        )
    if scheme not in ("http", "https"):
        raise TargetError(
            f"{quoted(raw)}: {scheme}:// is not a scheme this agent scans "
            "(ipfs://CID, http(s):// gateway URLs, /ipfs/CID, a CID or a local path)"
        )
    url, origin, host, port = _http_url(raw)
    match = _SUBDOMAIN.match(host)
    # A path gateway may itself live under a name like gw.ipfs.example: the label decides.
    if match and (_is_cid(match["cid"]) or not url.path.startswith("/ipfs/")):
        return Target(
            raw,
            TargetKind.IPFS,
            _cid(match["cid"], raw),
            _split_path(url.path, raw),
            gateway_hint=f"{url.scheme.lower()}://{match['host']}{port}",
        )
    if url.path.startswith("/ipfs/"):
        cid_text, _, path = url.path[len("/ipfs/") :].partition("/")
        return Target(raw, TargetKind.IPFS, _cid(cid_text, raw), _split_path(path, raw), gateway_hint=origin)
    if url.path.startswith("/ipns/") or ".ipns." in f".{host}":
        raise TargetError(_IPNS.format(quoted(raw)))
    raise TargetError(f"{quoted(raw)}: not a path (/ipfs/CID) or subdomain (CID.ipfs.host) gateway URL")


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
    if raw.startswith("~"):
        local = _expand_home(raw)
    else:
        local = Path(raw)
    try:
        if local.exists():
            mode = local.stat().st_mode
            if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
                # /dev/zero never ends and a pipe may never answer: only files and directories are read.
                raise TargetError(
                    f"{quoted(raw)}: not a regular file or directory (devices, pipes and sockets are never read)"
                )
            if stat.S_ISREG(mode) and local.suffix.lower() == ".car":
                return Target(raw, TargetKind.CAR_FILE, local_path=local)
            return Target(raw, TargetKind.LOCAL, local_path=local)
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
        return Target(raw, TargetKind.IPFS, parse_cid(raw))
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


# -- why a string is not a CID, in words ------------------------------------------------

_B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
# prefix -> (name, alphabet, whether case matters, bits per character for the power-of-two bases)
_BASES: dict[str, tuple[str, str, bool, int | None]] = {
    "b": ("base32", "abcdefghijklmnopqrstuvwxyz234567", False, 5),
    "B": ("base32", "abcdefghijklmnopqrstuvwxyz234567", False, 5),
    "k": ("base36", "0123456789abcdefghijklmnopqrstuvwxyz", False, None),
    "K": ("base36", "0123456789abcdefghijklmnopqrstuvwxyz", False, None),
    "z": ("base58btc", _B58, True, None),
    "f": ("base16", "0123456789abcdef", False, 4),
    "F": ("base16", "0123456789abcdef", False, 4),
    "m": ("base64", _B64 + "+/", True, 6),
    "u": ("base64url", _B64 + "-_", True, 6),
}
_ALPHABET_WORDS = {
    "base32": "the letters a-z and the digits 2-7",
    "base36": "the letters a-z and the digits 0-9",
    "base58btc": "letters and digits except 0, O, I and l",
    "base16": "the digits 0-9 and the letters a-f",
    "base64": "letters, digits, '+' and '/'",
    "base64url": "letters, digits, '-' and '_'",
}
_CUT = "it was cut short, or has characters missing or extra"


def explain_invalid_cid(text: str, exc: Exception | None = None) -> str:
    """Why `text` (which parse_cid refused) is not a CID, in words a user can act on."""
    if len(text) > 1024:
        return f"{len(text)} characters is far longer than any CID"
    if text.startswith("Qm"):
        return _explain_v0(text, exc)
    name_alpha = _BASES.get(text[:1])
    if name_alpha is None:
        return (
            f"a CID starts with 'Qm' (CIDv0) or a multibase prefix such as 'b' (base32), 'k' (base36), "
            f"'z' (base58btc) or 'f' (base16); {text[:1]!r} is none of these"
        )
    name, alphabet, case_matters, bits = name_alpha
    body = text[1:]
    if not body:
        return "nothing follows the multibase prefix"
    for position, char in enumerate(body, start=2):
        if (char if case_matters else char.lower()) not in alphabet:
            return (
                f"the character {char!r} (position {position}) is not {name}, which uses only {_ALPHABET_WORDS[name]}"
            )
    if bits is not None and _stray_bits(body, alphabet, case_matters, bits):
        return f"its {len(body)} {name} characters do not end on a whole byte: {_CUT}"
    try:
        data = bytes(multibase.decode(text))
    except Exception:  # the library raises several unrelated types for bad input
        return _library_reason(text, exc)
    return _explain_v1_bytes(data) or _library_reason(text, exc)


def _explain_v0(text: str, exc: Exception | None) -> str:
    if len(text) != 46:
        return f"a CIDv0 (starting 'Qm') is exactly 46 base58btc characters; this one has {len(text)}"
    for position, char in enumerate(text, start=1):
        if char not in _B58:
            return (
                f"the character {char!r} (position {position}) is not base58btc, "
                f"which uses only {_ALPHABET_WORDS['base58btc']}"
            )
    return _library_reason(text, exc)


def _stray_bits(body: str, alphabet: str, case_matters: bool, bits: int) -> bool:
    spare = len(body) * bits % 8
    if spare >= bits:
        return True  # a whole character too many or too few
    last = alphabet.index(body[-1] if case_matters else body[-1].lower())
    return bool(spare and last & ((1 << spare) - 1))


def _explain_v1_bytes(data: bytes) -> str | None:
    fields: list[int] = []
    pos = 0
    for what in ("version", "content type (codec)", "hash function", "hash length"):
        try:
            value, pos = read_uvarint(data, pos, what)
        except VarintError as exc:
            if exc.problem is VarintProblem.NOT_MINIMAL:
                return None  # parse_cid's own words say which field is spelled too long
            return f"it ends before its {what} is complete: too short to be a CID ({_CUT})"
        fields.append(value)
    version, _codec, _hash, length = fields
    if version != 1:
        return f"it says CID version {version}; only version 1 is written this way (version 0 is 'Qm…')"
    if len(data) - pos != length:
        return f"its hash should be {length} bytes but {len(data) - pos} follow: {_CUT}"
    return None


def _library_reason(text: str, exc: Exception | None) -> str:
    if exc is None:
        return "it does not decode as a CID"
    message = str(exc)
    for lead in (f"{text!r} is not a valid CID: ", f"{text!r} is not a CID: ", f"{text!r}: "):
        message = message.removeprefix(lead)
    return message
