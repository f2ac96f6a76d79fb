"""Moved: the scan pipeline is agent.pipeline."""

from __future__ import annotations

from typing import Any

from agent.lists.matcher import Match
from agent.model.signals import ItemSignals, Signal
from agent.pipeline import (  # shim: issue-10 integration removes
    ItemCallback,
    KnownItem,
    ScanHooks,
    Scanner,
    finding_from_match,
    item_examined,
    list_thresholds,
    load_scan_catalog,
    media_hasher,
)

__all__ = [
    "ItemCallback",
    "KnownItem",
    "ScanHooks",
    "Scanner",
    "item_examined",
    "list_thresholds",
    "load_scan_catalog",
    "media_hasher",
]


def finding_view(match: Match) -> dict[str, Any]:  # shim: issue-10 integration removes (daemon until H1 types it)
    return finding_from_match(match).to_view()


def signals_from_view(view: dict[str, Any]) -> list[Signal]:  # shim: issue-10 integration removes (as above)
    return list(ItemSignals.from_view(view).hashes)
