"""What the agent can be pointed at: one target model for one-off scans and watched targets.

A `Target` is the parsed, normalised form of a string a user typed (agent.sources.targets
parses it). Its `kind` value is what the store keeps in `targets.kind`, and its
`url` what it keeps in `targets.url`: both are compared byte for byte with rows
written by earlier versions, so their spelling never changes."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from multiformats import CID


class TargetError(ValueError):
    """The target string names nothing this agent can scan or watch."""


class TargetKind(StrEnum):
    IPFS = "ipfs"
    CAR_FILE = "car"
    LOCAL = "local"
    IPNS = "ipns"
    DNSLINK = "dnslink"
    KUBO = "kubo"
    ARWEAVE = "arweave"

    @property
    def watchable(self) -> bool:
        """Whether the daemon can watch this kind (files on disk are scanned once, not watched)."""
        return self not in (TargetKind.CAR_FILE, TargetKind.LOCAL)


@dataclass(frozen=True)
class Target:
    kind: TargetKind
    # What the user typed (stripped); reports and progress lines show it.
    text: str
    # Normalised: the same target always has the same url (the store's key for a watched target).
    url: str = ""
    cid: CID | None = None
    # Content path under the root, one component per element (already percent-decoded for IPFS).
    path: tuple[str, ...] = ()
    local_path: Path | None = None
    # The gateway a URL target named; used when the user gave no --gateway.
    gateway_hint: str | None = None
    # IPNS key, DNSLink domain, Kubo RPC base URL or Arweave gateway.
    name: str = ""
    # Arweave: the GraphQL path on the gateway, the tag filters and the block floor.
    endpoint_path: str = ""
    tags: dict[str, list[str]] = field(default_factory=dict)
    min_height: int | None = None

    @property
    def path_text(self) -> str:
        """The content path as one string, without leading or trailing slashes."""
        return "/".join(self.path)
