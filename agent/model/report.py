"""The scan report: what other tools read. Field names here are a public contract."""

from __future__ import annotations

import copy
import json
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime
from enum import StrEnum
from typing import Any

from agent.model.finding import Finding
from agent.model.signals import ItemSignals
from agent.model.time import iso_utc


class ItemStatus(StrEnum):
    VERIFIED = "verified"  # every byte checked against its CID (or read from local disk)
    INCOMPLETE = "incomplete"  # some block could not be obtained from any source
    BLOCKED = "blocked"  # every gateway asked refused it with 410/451
    ERROR = "error"  # malformed data, a refused path, a lying source with no honest one
    SKIPPED = "skipped"  # over a configured limit; not examined


# Exit codes of `dweb-agent scan` (documented in the README; 130 and 141 are in agent.cli.common).
EXIT_CLEAN = 0
EXIT_FINDINGS = 1
EXIT_ERROR = 2


@dataclass
class ItemSource:
    gateway: str | None = None
    verified: bool = False
    gateways: list[str] = field(default_factory=list)
    lied: list[str] = field(default_factory=list)
    blocked_at: dict[str, int] = field(default_factory=dict)
    local: str | None = None


@dataclass
class ItemReport:
    path: str
    cid: str | None
    size: int | None
    media_type: str | None
    status: ItemStatus
    error: str | None = None
    source: ItemSource = field(default_factory=ItemSource)
    # Rendered by `ItemSignals.to_view()`; its vPDQ frames are kept for the store
    # (re-matching later) and are not part of the JSON report.
    signals: ItemSignals = field(default_factory=ItemSignals)
    findings: list[Finding] = field(default_factory=list)
    kind: str = "file"
    codec: str | None = None
    mode: str | None = None
    mtime: float | None = None
    symlink_target: str | None = None
    duplicate_of: str | None = None
    # True when an earlier scan examined this CID: nothing was fetched, its stored signals are shown.
    seen_before: bool = False

    def to_dict(self) -> dict[str, Any]:
        """The report's item object: every field in declaration order, signals and
        findings in their public views."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "signals":
                out["signals"] = self.signals.to_view()
            elif f.name == "findings":
                out["findings"] = [finding.to_view() for finding in self.findings]
            elif f.name == "source":
                out["source"] = asdict(self.source)
            else:
                out[f.name] = value
        return out


@dataclass
class ScanReport:
    target: str
    root: str | None
    started_at: str
    # The CID a target's path led to (ipfs://root/a/b); None when the target had no path.
    resolved: str | None = None
    finished_at: str | None = None
    items: list[ItemReport] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    # Left as JSON-edge objects: each is a per-scan readout rendered once by its
    # own room (GatewayPool.report, ListCatalog.summaries) and read by nothing in
    # the core; typing them would only mirror those rooms' fields here.
    gateways: list[dict[str, Any]] = field(default_factory=list)
    lists: list[dict[str, Any]] = field(default_factory=list)
    # Findings about the scan's root itself (its CID is on a denylist).
    findings: list[Finding] = field(default_factory=list)

    @classmethod
    def failed(cls, target: str, error: str, at: datetime) -> ScanReport:
        """The report of a scan that could not start (a target that names nothing scannable)."""
        now = iso_utc(at)
        return cls(target=target, root=None, started_at=now, finished_at=now, errors=[error])

    def summary(self) -> dict[str, int]:
        counts = {status.value: 0 for status in ItemStatus}
        for item in self.items:
            counts[item.status.value] += 1
        return {
            "items": len(self.items),
            **counts,
            "findings": len(self.findings) + sum(len(item.findings) for item in self.items),
            "bytes": sum(item.size or 0 for item in self.items if item.status == ItemStatus.VERIFIED),
        }

    def exit_code(self) -> int:
        """1 if anything matched, else 2 if anything could not be verified, else 0.

        Blocked items are a fact about gateways, not a failure of the scan."""
        if self.findings or any(item.findings for item in self.items):
            return EXIT_FINDINGS
        if self.errors or any(
            item.status in (ItemStatus.INCOMPLETE, ItemStatus.ERROR, ItemStatus.SKIPPED) for item in self.items
        ):
            return EXIT_ERROR
        return EXIT_CLEAN

    def to_dict(self) -> dict[str, Any]:
        """The JSON report (a public shape: README, tests/acceptance/test_cli_scan.py)."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "items":
                out["items"] = [item.to_dict() for item in self.items]
            elif f.name == "findings":
                out["findings"] = [finding.to_view() for finding in self.findings]
            else:
                # A copy, as asdict made: the caller may change what it is given.
                out[f.name] = copy.deepcopy(value)
        out["summary"] = self.summary()
        return out

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, sort_keys=False)
