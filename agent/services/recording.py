"""Recording what a scan examined: the pipeline's persistence port (ScanHooks) over the store.

Each item, its location and its new findings (with their finding.created outbox events)
are written in one transaction as soon as the item is examined, so an interrupted scan
loses nothing it had finished; a key examined before is answered from the store and not
fetched again."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from agent.alerts.events import FindingOutbox
from agent.model.events import ItemContext
from agent.model.status import ItemState
from agent.model.time import utcnow
from agent.pipeline import KnownItem, item_examined
from agent.store import FindingRow, ItemRow, LocationRow

if TYPE_CHECKING:
    from agent.model.report import ItemReport, ItemStatus, ScanReport
    from agent.store import Store, TargetRow


@dataclass(frozen=True, slots=True)
class NewFindings:
    """Findings the store took as new (not seen before), and where their item was seen."""

    findings: Sequence[FindingRow]
    path: str
    root: str | None


# Told about every item recorded: its status, and whether it was known before (not fetched).
OnItem = Callable[["ItemStatus", bool], None]
# Told about the new findings of each item, as soon as they are stored.
OnFindings = Callable[[NewFindings], None]


def _ignore_item(_status: ItemStatus, _reused: bool) -> None:
    return None


def _ignore_findings(_new: NewFindings) -> None:
    return None


class ItemRecorder:
    """The store as the pipeline's ScanHooks for scans of one target (or of none)."""

    def __init__(
        self,
        store: Store,
        gateways: Sequence[str],
        target: TargetRow | None = None,
        *,
        on_item: OnItem = _ignore_item,
        on_findings: OnFindings = _ignore_findings,
    ) -> None:
        self._store = store
        self._gateways = list(gateways)
        self._target = target
        self._on_item = on_item
        self._on_findings = on_findings

    async def known(self, key: str) -> KnownItem | None:
        """The stored item under `key` when it needs no further fetch, else None."""
        row = (await self._store.items.get_many([key])).get(key)
        if row is None or not item_examined(row.status, row.signals):
            return None
        return KnownItem(row.key, row.size, row.media_type, row.signals, row.status)

    async def record(self, item: ItemReport, key: str | None, report: ScanReport) -> None:
        if key is None:  # local content has no content key; nothing to remember
            return
        self._on_item(item.status, item.seen_before)
        target = self._target
        target_id = target.id if target else None
        row = ItemRow(
            key=key,
            status=ItemState(item.status.value),
            cid=item.cid,
            size=item.size,
            media_type=item.media_type,
            signals=item.signals,
        )
        location = LocationRow(
            item_key=key, path=item.path, target_id=target_id, root_cid=report.root, gateway=item.source.gateway
        )
        findings = [FindingRow.from_finding(key, f) for f in item.findings]
        context = ItemContext(
            key=key,
            cid=item.cid,
            path=item.path,
            root=report.root,
            target_id=target_id,
            target_url=target.url if target else None,
            size=item.size,
            media_type=item.media_type,
            signals=item.signals,
            first_seen_at=utcnow(),
        )
        new = await self._store.items.record(row, location, findings, outbox=FindingOutbox(context, self._gateways))
        self._on_findings(NewFindings(new, item.path, report.root))

    async def record_directory(self, key: str, cid: str) -> None:
        await self._store.items.record_directory(key, cid)
