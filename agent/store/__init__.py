"""The agent's database: targets, scans, items and where they were seen,
findings, list sync state and job slots. SQLite file by default, PostgreSQL
when several agents share work; one schema and one code path for both."""

from agent.store.errors import DuplicateTarget, SchemaTooNew, StoreError
from agent.store.rows import (
    FindingRow,
    ItemRow,
    ListStateRow,
    ListVersionRow,
    LocationRow,
    ScanRow,
    TargetRow,
)
from agent.store.store import Store

__all__ = [
    "DuplicateTarget",
    "FindingRow",
    "ItemRow",
    "ListStateRow",
    "ListVersionRow",
    "LocationRow",
    "ScanRow",
    "SchemaTooNew",
    "Store",
    "StoreError",
    "TargetRow",
]
