"""Denylist rules as parsed from a `.deny` file."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType

from agent.lists.denylist.ids import deny_entry_id, list_name_of, public_source
from agent.lists.denylist.paths import BlockedPath


class RuleKind(StrEnum):
    IPFS = "ipfs"  # /ipfs/<cid>[/path]: keyed by the CID's multihash
    IPNS = "ipns"  # /ipns/<name>[/path]: keyed by multihash or DNS name
    DOUBLE_HASH = "double-hash"  # //<multihash or legacy hex sha256>
    PATH = "path"  # /<path>: any content path with this subpath


@dataclass(frozen=True, slots=True)
class DenyRule:
    """One rule line. `key` is multihash bytes (IPFS, DOUBLE_HASH, IPNS keys)
    or a lower-case DNS name (IPNS). `allow` marks a `!` exception rule."""

    kind: RuleKind
    key: bytes | str
    path: BlockedPath
    allow: bool
    raw: str
    source: str
    line: int
    hints: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    # The name of the list this rule was loaded into (a directory source's name, as
    # its hash entries have): findings and webhook `--lists` filters use one name.
    list: str = ""

    @property
    def list_name(self) -> str:
        return self.list or list_name_of(self.source)

    @property
    def entry_id(self) -> str:
        """Stable and free of the operator's paths: see agent.lists.denylist.ids."""
        return deny_entry_id(self.list_name, self.raw)

    @property
    def public_source(self) -> str:
        return public_source(self.source)


@dataclass(frozen=True, slots=True)
class DenylistHeader:
    version: int = 1
    name: str = ""
    description: str = ""
    author: str = ""
    hints: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True, slots=True)
class DenyDecision:
    """The rule that decided: `blocked` is False when an exception (`!`) rule
    matched last. `matched` says what was hashed or looked up, for the audit."""

    blocked: bool
    rule: DenyRule
    matched: str

    @property
    def source(self) -> str:
        return self.rule.source

    @property
    def line(self) -> int:
        return self.rule.line
