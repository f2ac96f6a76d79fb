"""The pipeline's persistence port: what a long-running agent plugs in to make
scans incremental and durable (agent.services.recording.ItemRecorder implements it over the store)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from agent.model.report import ItemReport, ItemStatus, ScanReport
from agent.model.signals import ItemSignals
from agent.model.status import ItemState

ItemCallback = Callable[[ItemReport], None]


@dataclass(frozen=True)
class KnownItem:
    """What an earlier scan stored about a CID."""

    key: str
    size: int | None
    media_type: str | None
    signals: ItemSignals
    # ERROR when the bytes were verified but could not be decoded as media: the
    # same bytes would fail the same way, so they are not fetched again either.
    # DIRECTORY for a directory or HAMT shard whose every entry was examined.
    status: ItemState = ItemState.VERIFIED


def item_examined(status: ItemState | ItemStatus, signals: ItemSignals) -> bool:
    """Whether an item needs no further fetch: verified (or a directory examined whole),
    or verified bytes whose media could not be decoded (an error the same bytes would
    repeat: their digests are known)."""
    state = ItemState(status)  # by value: the report's ItemStatus and the store's ItemState share them
    return state in (ItemState.VERIFIED, ItemState.DIRECTORY) or (state is ItemState.ERROR and signals.has_digests)


class ScanHooks(Protocol):
    """How a long-running agent makes scans incremental and durable.

    `known` is asked before a CID is fetched (by its multihash, hex); an answer
    means it is not fetched again. `record` is called as soon as each item is
    examined, so an interrupted scan loses nothing it had finished.
    `record_directory` is called for each directory or HAMT shard once every
    entry under it was examined completely (a partial walk records nothing, so
    it can never hide content): `known` then answers it with ItemState.DIRECTORY
    and a later root containing it skips the whole subtree."""

    async def known(self, key: str) -> KnownItem | None: ...

    async def record(self, item: ItemReport, key: str | None, report: ScanReport) -> None: ...

    async def record_directory(self, key: str, cid: str) -> None: ...
