"""One Source protocol: what a watched target names for the scan, and where its polling stands.

A Source turns a Target and its cursor into a Discovery: a root to scan (IPFS,
IPNS, DNSLink), pins each with its own block source (Kubo), or blobs already
fetched and verified with their item keys (Arweave). The poll (agent.services.polling)
scans what the Discovery names and hands back what completed (`Scanned`); the
Discovery's `settle` then gives the next cursor and the poll's note.

Cursors are typed per kind and meet the `targets.state` JSON column only at
`read_cursor` / `to_state`, with the keys earlier versions wrote (root,
complete, sequence, dnslink, pins_done, cursor, retry), so stored cursors resume."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

import aiohttp
from multiformats import CID

from agent.config import Settings
from agent.ipfs.blocks import BlockSource
from agent.model.item_key import ItemKey
from agent.model.report import ItemSource
from agent.model.target import Target

# The targets.state column as stored: JSON, read and written only by cursors.
State = Mapping[str, Any]


class Cursor(Protocol):
    def to_state(self) -> dict[str, Any]:
        """The keys this cursor keeps in targets.state (merged over what is there)."""
        ...


C = TypeVar("C", bound=Cursor)


@dataclass(frozen=True, slots=True)
class RootScan:
    """Content to walk from a root CID (text, as the scan's target string takes it)."""

    cid: str
    path: str = ""

    @property
    def url(self) -> str:
        return f"ipfs://{self.cid}" + (f"/{self.path}" if self.path else "")


@dataclass(frozen=True, slots=True)
class PinScan:
    """One pin of a node, walked through the node's own (verifying) block source."""

    key: str  # the pin as the node lists it (what the cursor's pins_done keeps)
    cid: CID
    source: BlockSource
    label: str


@dataclass(frozen=True, slots=True)
class Blob:
    """Content that arrived whole and checked by its source, under its item key."""

    key: ItemKey
    data: bytes
    source: ItemSource


@dataclass(frozen=True, slots=True)
class Scanned:
    """What the poll made of a Discovery: whether the root completed, which pins did."""

    root_complete: bool = False
    root_summary: str = ""
    pins_complete: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Settled(Generic[C]):
    cursor: C
    note: str


@dataclass
class Discovery(Generic[C]):
    settle: Callable[[Scanned], Settled[C]]
    root: RootScan | None = None
    pins: tuple[PinScan, ...] = ()
    # Fetched one at a time as the poll asks, so that one item's bytes are in memory at once.
    blobs: AsyncGenerator[Blob, None] | None = None


@dataclass(frozen=True)
class SourceEnv:
    """What a Source may use: the HTTP session, the settings, and whether an item is known."""

    http: aiohttp.ClientSession
    settings: Settings
    known: Callable[[ItemKey], Awaitable[bool]]


class Source(Protocol[C]):
    def read_cursor(self, state: State) -> C:
        """The cursor kept in targets.state (an empty state: a target never polled)."""
        ...

    async def discover(self, target: Target, cursor: C) -> Discovery[C]:
        """What to scan now, and how the next cursor follows from what the scan completed."""
        ...


SourceFactory = Callable[[SourceEnv], "Source[Any]"]


@dataclass(frozen=True, slots=True)
class RootCursor:
    """The root last scanned and whether that scan examined everything (IPFS, IPNS, DNSLink)."""

    root: str | None = None
    complete: bool = False

    @classmethod
    def from_state(cls, state: State) -> RootCursor:
        root = state.get("root")
        return cls(str(root) if root is not None else None, bool(state.get("complete")))

    def to_state(self) -> dict[str, Any]:
        return {} if self.root is None else {"root": self.root, "complete": self.complete}

    def names(self, root: str) -> bool:
        """Whether `root` is the root completed last time (so it needs no scan)."""
        return self.root == root and self.complete


def root_discovery(cursor: RootCursor, root: str, path: str, after: Callable[[RootCursor], C]) -> Discovery[C]:
    """Scan `root` unless it is the root completed last time; `after` wraps the root cursor
    into the kind's cursor (adding what the kind keeps beside it)."""
    if cursor.names(root):
        return Discovery(lambda _: Settled(after(cursor), f"unchanged: {root}"))

    def settle(scanned: Scanned) -> Settled[C]:
        return Settled(after(RootCursor(root, scanned.root_complete)), f"scanned {root}: {scanned.root_summary}")

    return Discovery(settle, root=RootScan(root, path))


def join_paths(*parts: str) -> str:
    return "/".join(p.strip("/") for p in parts if p.strip("/"))
