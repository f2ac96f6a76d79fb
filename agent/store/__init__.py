"""The agent's database: targets, scans, items and where they were seen,
findings, list sync state, job slots, alerts, and the API's tokens, audit log
and queued scans. SQLite file by default, PostgreSQL when several agents share
work; one schema and one code path for both."""

from agent.model.records import (
    ContentStatusRow,
    DeliveryJob,
    DeliveryRow,
    EventRow,
    FindingFilter,
    FindingRow,
    ItemRow,
    ListStateRow,
    ListVersionRow,
    LocationRow,
    NewEvent,
    ReviewRow,
    ScanRow,
    SubscriptionRow,
    TargetRow,
)
from agent.store.errors import DuplicateTarget, SchemaTooNew, StoreError
from agent.store.outbox import FollowUp, Outbox
from agent.store.store import Store

__all__ = [
    "ContentStatusRow",
    "DeliveryJob",
    "DeliveryRow",
    "DuplicateTarget",
    "EventRow",
    "FindingFilter",
    "FindingRow",
    "FollowUp",
    "ItemRow",
    "ListStateRow",
    "ListVersionRow",
    "LocationRow",
    "NewEvent",
    "Outbox",
    "ReviewRow",
    "ScanRow",
    "SchemaTooNew",
    "Store",
    "StoreError",
    "SubscriptionRow",
    "TargetRow",
]
