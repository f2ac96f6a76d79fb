"""Moved: the scan pipeline is agent.pipeline."""

from __future__ import annotations

from agent.pipeline import (  # shim: issue-10 integration removes
    ItemCallback,
    KnownItem,
    ScanHooks,
    Scanner,
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
