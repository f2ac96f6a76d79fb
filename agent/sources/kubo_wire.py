"""Kubo RPC's wire vocabulary: addresses, errors, version and link records.

Wire format: https://docs.ipfs.tech/reference/kubo/rpc/ ; failures come back as
HTTP 4xx/5xx with a JSON body `{"Message": str, "Code": int, "Type": "error"}`
(go-ipfs-cmds)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from agent.ipfs.dagpb import UnixFSType
from agent.ipfs.errors import IpfsError

DEFAULT_PORT = 5001
PIN_TYPES = ("direct", "indirect", "recursive", "all")
# An error body is a short JSON object; anything longer is not worth reading.
MAX_ERROR_BODY = 64 * 1024
_MULTIADDR = re.compile(r"^/(ip4|ip6|dns|dns4|dns6)/([^/]+)/tcp/(\d+)(/(http|https))?/?$")


class KuboError(IpfsError):
    """The node refused or failed a command, or could not be reached.

    `code` is go-ipfs-cmds' ErrorType when the node sent one (0 normal,
    1 client error, 2 implementation, 3 not found, 4 fatal); `status` is the
    HTTP status, None when no response arrived."""

    def __init__(
        self,
        message: str,
        code: int | None = None,
        *,
        status: int | None = None,
        url: str | None = None,
        command: str | None = None,
    ) -> None:
        self.message = message
        self.code = code
        self.status = status
        self.url = url
        self.command = command
        where = f"{url} {command}: " if url and command else f"{url}: " if url else ""
        super().__init__(f"{where}{message}")


@dataclass(frozen=True, slots=True)
class KuboVersion:
    version: str
    commit: str
    repo: str
    system: str
    golang: str


# `ls` reports UnixFS Data.Type numbers (Kubo folds raw leaves into FILE and
# HAMT shards into DIRECTORY).
LinkType = UnixFSType


@dataclass(frozen=True, slots=True)
class KuboLink:
    name: str
    hash: str
    size: int
    type: int
    target: str = ""

    @property
    def is_directory(self) -> bool:
        return self.type in (LinkType.DIRECTORY, LinkType.HAMT_SHARD)


def kubo_base_url(target: str) -> str:
    """`kubo://host:port`, `http(s)://host:port[/api/v0]` or a multiaddr like Kubo's
    `api` file (`/ip4/127.0.0.1/tcp/5001`) -> `http(s)://host:port`."""
    text = target.strip()
    found = _MULTIADDR.match(text)
    if found:
        proto, host, port, _, scheme = found.groups()
        host = f"[{host}]" if proto == "ip6" else host
        return f"{scheme or 'http'}://{host}:{port}"
    parts = urlsplit(text)
    scheme = parts.scheme.lower()
    if scheme == "kubo":
        scheme = "http"  # the RPC API has no TLS of its own; a TLS proxy is named with https://
    elif scheme not in ("http", "https"):
        raise ValueError(f"{target!r} is not a Kubo RPC address (kubo://host:port or http(s)://host:port)")
    if not parts.hostname:
        raise ValueError(f"{target!r} names no host")
    if parts.username or parts.password:
        # Credentials in the URL would end up in provenance labels and logs; pass auth= instead.
        raise ValueError(f"{target!r}: put credentials in KuboClient(auth=...), not in the URL")
    if parts.query or parts.fragment:
        raise ValueError(f"{target!r}: a Kubo RPC address takes no query or fragment")
    path = parts.path.rstrip("/")
    if path.endswith("/api/v0"):
        path = path[: -len("/api/v0")]
    try:
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"{target!r}: {exc}") from None
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    if port is None and parts.scheme.lower() == "kubo":
        port = DEFAULT_PORT
    return f"{scheme}://{host}{f':{port}' if port is not None else ''}{path}"


def error_from_body(status: int, body: bytes) -> tuple[str, int | None]:
    """(message, code) from a go-ipfs-cmds error body, or from whatever text came instead."""
    try:
        value = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        value = None
    if isinstance(value, dict) and isinstance(value.get("Message"), str):
        code = value.get("Code")
        return value["Message"], code if isinstance(code, int) and not isinstance(code, bool) else None
    text = body.decode("utf-8", errors="replace").strip()
    return (f"HTTP {status}: {text[:300]}" if text else f"HTTP {status}"), None


def stream_error(value: Any) -> tuple[str, int | None] | None:
    """An error object emitted inside a stream after the 200 went out."""
    if isinstance(value, dict) and value.get("Type") == "error" and isinstance(value.get("Message"), str):
        code = value.get("Code")
        return value["Message"], code if isinstance(code, int) else None
    return None
