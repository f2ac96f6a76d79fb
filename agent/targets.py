"""What a user can ask to scan, parsed from one string."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from urllib.parse import unquote, urlsplit

from agent.ipfs.cid import CID, parse_cid
from agent.ipfs.errors import InvalidCid


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


_SUBDOMAIN = re.compile(r"^(?P<cid>[a-z0-9]+)\.ipfs\.(?P<host>.+)$", re.IGNORECASE)


def _split_path(path: str) -> tuple[str, ...]:
    parts = tuple(unquote(p) for p in path.split("/") if p)
    for part in parts:
        if part in (".", ".."):
            raise TargetError(f"path component {part!r} is not allowed in a content path")
    return parts


def _cid(text: str, target: str) -> CID:
    try:
        return parse_cid(text)
    except InvalidCid as exc:
        raise TargetError(f"{target}: {exc}") from exc


def parse_target(text: str) -> Target:
    raw = text.strip()
    if not raw:
        raise TargetError("empty target")
    if raw.startswith("ipfs://"):
        rest = raw[len("ipfs://"):]
        cid_text, _, path = rest.partition("/")
        return Target(raw, TargetKind.IPFS, _cid(cid_text, raw), _split_path(path))
    if raw.startswith("/ipfs/"):
        cid_text, _, path = raw[len("/ipfs/"):].partition("/")
        return Target(raw, TargetKind.IPFS, _cid(cid_text, raw), _split_path(path))
    if raw.startswith(("ipns://", "/ipns/")):
        raise TargetError(f"{raw}: IPNS names are resolved by the daemon's watch targets, not by one-off scans yet")
    if raw.startswith(("http://", "https://")):
        url = urlsplit(raw)
        origin = f"{url.scheme}://{url.netloc}"
        match = _SUBDOMAIN.match(url.hostname or "")
        if match:
            port = f":{url.port}" if url.port else ""
            return Target(raw, TargetKind.IPFS, _cid(match["cid"], raw), _split_path(url.path),
                          gateway_hint=f"{url.scheme}://{match['host']}{port}")
        if url.path.startswith("/ipfs/"):
            cid_text, _, path = url.path[len("/ipfs/"):].partition("/")
            return Target(raw, TargetKind.IPFS, _cid(cid_text, raw), _split_path(path), gateway_hint=origin)
        raise TargetError(f"{raw}: not a path (/ipfs/CID) or subdomain (CID.ipfs.host) gateway URL")
    local = Path(raw).expanduser()
    if local.exists():
        if local.is_file() and local.suffix.lower() == ".car":
            return Target(raw, TargetKind.CAR_FILE, local_path=local)
        return Target(raw, TargetKind.LOCAL, local_path=local)
    try:
        return Target(raw, TargetKind.IPFS, parse_cid(raw))
    except InvalidCid as exc:
        raise TargetError(f"{raw!r} is neither a CID, an ipfs:// or gateway URL, nor an existing file: {exc}") from exc
