"""What a DAG walk yields: entries (files, documents, symlinks, refusals) and the
nodes it walked to their end, and the blocks known without a fetch."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from agent.ipfs.blocks import BlockSession, Provenance
from agent.ipfs.cid import CID, check_cid
from agent.ipfs.errors import IpfsError, TooLarge
from agent.ipfs.multihash import IDENTITY_CODE, split_multihash, verify_block

__all__ = ["DagEntry", "EntryKind", "WalkBudgetExceeded", "WalkedNode", "facts", "inline_block", "names_empty_block"]


class EntryKind(StrEnum):
    WITHHELD = "withheld"  # the caller's policy said not to fetch it (a denylisted CID or path)
    KNOWN = "known"  # the caller examined this CID before (an earlier scan): not fetched again
    FILE = "file"
    SYMLINK = "symlink"
    DOCUMENT = "document"
    # Yielded only for a directory met again under another path (`duplicate_of`
    # names the first): its entries are reported once, under the first path.
    DIRECTORY = "directory"
    ERROR = "error"


class WalkBudgetExceeded(TooLarge):
    """More DAG nodes than the walk budget allows: the walk stops (it is not one item's error)."""


@dataclass
class DagEntry:
    """One thing found under the root. Files keep their open session until read."""

    path: str
    cid: CID
    kind: EntryKind
    size: int | None = None
    mode: int | None = None
    mtime: float | None = None
    symlink_target: str | None = None
    codec: str = ""
    error: IpfsError | None = None
    provenance: Provenance = field(default_factory=Provenance)
    root_block: bytes | None = field(default=None, repr=False)
    session: BlockSession | None = field(default=None, repr=False)
    # A directory or document already walked under this earlier path: not walked again.
    duplicate_of: str | None = None

    async def release(self) -> None:
        if self.session is not None:
            session, self.session = self.session, None
            await session.aclose()


@dataclass(frozen=True, slots=True)
class WalkedNode:
    """A directory, document or HAMT sub-shard walked to its end. The entries found
    below it are exactly those the walk yielded at indexes [first, end), so a
    caller can tell whether everything under it was examined."""

    cid: CID
    first: int
    end: int
    shard: bool = False


def facts(entry: DagEntry) -> DagEntry:
    """A file entry without its block or session: what a repeated path reports."""
    return DagEntry(
        entry.path, entry.cid, entry.kind, size=entry.size, mode=entry.mode, mtime=entry.mtime, codec=entry.codec
    )


def inline_block(cid: CID) -> bytes | None:
    """An identity CID carries its block; nothing to fetch or verify.

    The CID still meets the rules every other CID meets (an identity digest of at
    most 128 bytes, an IPLD codec): a dag-cbor link is not checked before this."""
    code, digest = split_multihash(check_cid(cid).digest)
    return digest if code == IDENTITY_CODE else None


def names_empty_block(cid: CID) -> bool:
    """Whether `cid` is the hash of zero bytes: then its block is known without a fetch."""
    try:
        verify_block(cid, b"")
    except IpfsError:
        return False
    return True
