"""Retroactive matching: the signals already stored against a list's new entries only.

Nothing is fetched: an item scanned before an entry was published is found by its
stored hashes (and vPDQ frames) the moment the entry arrives."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from agent.alerts.events import FindingOutbox
from agent.lists.matcher import MatchIndex
from agent.model.events import ItemContext
from agent.pipeline import finding_from_match
from agent.store import FindingRow

if TYPE_CHECKING:
    from agent.lists.catalog import ListCatalog
    from agent.lists.model import ListEntry
    from agent.store import ItemRow, Store

# Items read per store round trip: bounded memory however many items the store holds.
_BATCH = 500


class Rematcher:
    def __init__(self, store: Store, gateways: Sequence[str]) -> None:
        self._store = store
        self._gateways = list(gateways)

    async def rematch(
        self, catalog: ListCatalog, added: Mapping[str, Sequence[ListEntry]]
    ) -> list[tuple[FindingRow, ItemContext]]:
        """Match every stored item against the entries `added` per list of `catalog` (their
        list's thresholds apply); the new findings are stored with their finding.created
        events and returned with the item they were found on."""
        lists = [hl.with_entries(added[hl.name]) for hl in catalog.index.lists if hl.name in added]
        index = MatchIndex(lists)
        created: list[tuple[FindingRow, ItemContext]] = []
        if len(index) == 0:
            return created
        async for batch in self._store.items.iter_with_signals(batch=_BATCH):
            for item in batch:
                matches = index.match(item.signals.hashes)
                if item.signals.frames:
                    matches.extend(index.match_video(item.signals.frames))
                if not matches:
                    continue
                rows = [FindingRow.from_finding(item.key, finding_from_match(m), retroactive=True) for m in matches]
                context = await self._context(item)
                new = await self._store.findings.add(
                    item.key, rows, retroactive=True, outbox=FindingOutbox(context, self._gateways)
                )
                created.extend((f, context) for f in new)
        return created

    async def _context(self, item: ItemRow) -> ItemContext:
        """The item as its finding.created events describe it: where it was first seen."""
        locations = await self._store.items.locations_of(item.key)
        where = locations[0] if locations else None
        target_id = where.target_id if where else None
        target = await self._store.targets.get(target_id) if target_id is not None else None
        return ItemContext(
            key=item.key,
            cid=item.cid,
            path=where.path if where else "",
            root=where.root_cid if where else None,
            target_id=target_id,
            target_url=target.url if target else None,
            size=item.size,
            media_type=item.media_type,
            signals=item.signals,
            first_seen_at=item.first_seen_at,
        )
