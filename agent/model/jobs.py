"""Scans queued through the API: their options, progress and state, as the store keeps them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal


class JobStatus(StrEnum):
    QUEUED = "queued"  # waiting for a node with capacity
    RUNNING = "running"  # leased by `node` until `lease_until`
    DONE = "done"  # finished; `report` is the scan's JSON report
    FAILED = "failed"  # could not run (the target or a list could not be used); `error` says why
    CANCELLED = "cancelled"  # cancelled before or while it ran

    @property
    def finished(self) -> bool:
        return self in (JobStatus.DONE, JobStatus.FAILED, JobStatus.CANCELLED)


@dataclass(frozen=True, slots=True)
class JobOptions:
    """What the caller asked for beside the target (checked before the job was queued)."""

    gateways: tuple[str, ...] = ()
    lists: tuple[str, ...] = ()
    mode: Literal["car", "raw"] = "car"

    def to_json(self) -> dict[str, Any]:
        return {"gateways": list(self.gateways), "lists": list(self.lists), "mode": self.mode}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> JobOptions:
        mode = data.get("mode", "car")
        return cls(
            gateways=tuple(data.get("gateways", ())),
            lists=tuple(data.get("lists", ())),
            mode="raw" if mode == "raw" else "car",
        )


@dataclass(frozen=True, slots=True)
class JobProgress:
    """How far a running scan is (items reported so far, by outcome)."""

    items: int = 0
    verified: int = 0
    errors: int = 0
    findings: int = 0

    def to_json(self) -> dict[str, int]:
        return {"items": self.items, "verified": self.verified, "errors": self.errors, "findings": self.findings}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> JobProgress:
        return cls(**{k: int(data.get(k, 0)) for k in ("items", "verified", "errors", "findings")})


@dataclass(frozen=True, slots=True)
class ScanJobRow:
    id: int
    status: JobStatus
    target: str
    options: JobOptions
    requested_by: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    node: str | None
    lease_until: datetime | None
    attempts: int
    progress: JobProgress
    # The JSON of `dweb-agent scan --format json` (JSON edge), once done.
    report: dict[str, Any] | None
    error: str | None
    cancel_requested: bool
