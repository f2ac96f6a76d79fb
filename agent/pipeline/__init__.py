"""The scan pipeline: target -> enumerate -> fetch (verified) ->
sniff + hash -> match -> report.

content   the streaming buffer of one item's bytes
scanner   `Scanner`, the public entry
run       one scan: the DAG walk, examination, reuse of what was examined
items     an item's status, provenance and signals in the report's terms
local     local files, and `hash_local_files` for `dweb-agent hash`
findings  matches and denylist decisions as `Finding`s
hooks     the persistence port (`ScanHooks`, `KnownItem`)
factories media hasher, list thresholds and catalog, gateway pool from Settings"""

from __future__ import annotations

from agent.pipeline.factories import list_thresholds, load_scan_catalog, media_hasher
from agent.pipeline.findings import finding_from_match, finding_from_rule
from agent.pipeline.hooks import ItemCallback, KnownItem, ScanHooks, item_examined
from agent.pipeline.local import FileSignals, hash_local_files
from agent.pipeline.scanner import Scanner

__all__ = [
    "FileSignals",
    "ItemCallback",
    "KnownItem",
    "ScanHooks",
    "Scanner",
    "finding_from_match",
    "finding_from_rule",
    "hash_local_files",
    "item_examined",
    "list_thresholds",
    "load_scan_catalog",
    "media_hasher",
]
