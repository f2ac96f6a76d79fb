"""What list syncing records and returns: a TCAP source's settings, the state
persisted between refreshes (ETags, checkpoints, content hashes) behind the
small SyncStateStore protocol, and what one refresh changed.

The protocol keeps this package from importing the store: the daemon passes
an adapter over its database, tests the in-memory one here."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Protocol

from agent.lists.catalog import ListCatalog
from agent.lists.denylist import Denylist
from agent.lists.model import HashList, ListEntry
from agent.lists.tcap_client import Paging

__all__ = [
    "ListVersionInfo",
    "MemorySyncStateStore",
    "SyncResult",
    "SyncState",
    "SyncStateStore",
    "TcapSourceConfig",
    "content_hash",
]


@dataclass(frozen=True, slots=True)
class TcapSourceConfig:
    """One TCAP hash list endpoint. `url` is the list endpoint, e.g.
    https://app.terrorismanalytics.org/api/hash-list/v2/all (a `tcap+`
    prefix is accepted and dropped)."""

    name: str
    url: str
    token: str = field(repr=False)
    checkpoint_param: str = "after"
    auth_scheme: str = "Bearer"
    paging: Paging = "next"
    params: tuple[tuple[str, str], ...] = (("order", "asc"),)
    # Without a token: log in with these (agent.lists.tcap_auth) and renew the JWT as it expires.
    username: str = ""
    password: str = field(default="", repr=False)

    def __post_init__(self) -> None:
        if self.url.startswith("tcap+"):
            object.__setattr__(self, "url", self.url[len("tcap+") :])


@dataclass(frozen=True, slots=True)
class SyncState:
    """What must survive a restart for one source. `content_hash` is that of
    the last version loaded."""

    name: str
    source: str
    etag: str | None = None
    last_modified: str | None = None
    checkpoint: str | None = None
    content_hash: str | None = None


class SyncStateStore(Protocol):
    async def get(self, name: str) -> SyncState | None: ...

    async def put(self, state: SyncState) -> None: ...


class MemorySyncStateStore:
    def __init__(self) -> None:
        self.states: dict[str, SyncState] = {}
        self.puts = 0

    async def get(self, name: str) -> SyncState | None:
        return self.states.get(name)

    async def put(self, state: SyncState) -> None:
        self.states[state.name] = state
        self.puts += 1


@dataclass(frozen=True, slots=True)
class ListVersionInfo:
    """The version of one source in the catalog. `error` is set when this
    refresh failed and the previous version (if any) was kept.
    `previous_content_hash` is the one the state store held before this
    process first loaded the source: equal hashes after a restart mean the
    list did not change while the agent was down."""

    name: str
    source: str
    content_hash: str | None
    entries: int
    deny_rules: int
    problems: int
    changed: bool = False
    error: str | None = None
    previous_content_hash: str | None = None


@dataclass(frozen=True, slots=True)
class SyncResult:
    catalog: ListCatalog
    changed: bool
    added: dict[str, tuple[ListEntry, ...]]
    removed: dict[str, tuple[str, ...]]
    versions: list[ListVersionInfo]
    errors: list[str]


def content_hash(hash_list: HashList, denylist: Denylist | None = None) -> str:
    """sha256 over the canonical *set* of live entries (type, value, sorted
    labels, vPDQ frames), so reordering or duplicating lines is no change;
    then the denylist rules in order, since a later rule can override an
    earlier one."""
    lines: set[str] = set()
    for e in hash_list.live_entries():
        line = f"{e.signal_type.value}\t{e.value}\t{','.join(sorted(e.labels))}"
        if e.frames:
            frames = ";".join(f"{f.frame},{f.quality},{f.pdq_hex},{f.timestamp}" for f in e.frames)
            line += "\t" + hashlib.sha256(frames.encode()).hexdigest()
        lines.add(line)
    digest = hashlib.sha256()
    for line in sorted(lines):
        digest.update(line.encode("utf-8") + b"\n")
    if denylist is not None and denylist.rules:
        digest.update(b"\0deny\n")
        for rule in denylist.rules:
            digest.update(f"{'!' if rule.allow else ''}{rule.kind}\t{rule.raw.strip()}\n".encode())
    return digest.hexdigest()
