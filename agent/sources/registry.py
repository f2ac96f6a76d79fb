"""The poll's dispatch: which Source serves each watchable target kind."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from agent.model.target import TargetKind
from agent.sources.base import SourceFactory
from agent.sources.kinds.arweave import ArweaveSource
from agent.sources.kinds.dnslink import DnslinkSource
from agent.sources.kinds.ipfs import IpfsSource
from agent.sources.kinds.ipns import IpnsSource
from agent.sources.kinds.kubo import KuboSource

SOURCES: Mapping[TargetKind, SourceFactory] = MappingProxyType(
    {
        TargetKind.IPFS: IpfsSource,
        TargetKind.IPNS: IpnsSource,
        TargetKind.DNSLINK: DnslinkSource,
        TargetKind.KUBO: KuboSource,
        TargetKind.ARWEAVE: ArweaveSource,
    }
)
