"""Keeping the hash lists fresh: sync them, retract what their publishers deleted, match
what they added against everything stored, and record the versions loaded.

Two steps, so that whoever holds the current catalog swaps it between them: `sync()`
fetches (scans starting after it use the new lists), `apply()` does the store's part."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from agent.lists.sync import ListSyncer
from agent.lists.sync_state import SyncState, TcapSourceConfig
from agent.model.time import utcnow
from agent.pipeline import list_thresholds
from agent.store import ListStateRow

if TYPE_CHECKING:
    import aiohttp

    from agent.config import Settings
    from agent.lists.model import ListEntry
    from agent.lists.sync_state import SyncResult
    from agent.model.events import ItemContext
    from agent.services.findings import FindingsService
    from agent.services.rematch import Rematcher
    from agent.store import FindingRow, Store


class StoredSyncState:
    """The list syncer's cursors (ETag, TCAP checkpoint) kept in the store (lists.sync's SyncStateStore)."""

    def __init__(self, store: Store) -> None:
        self._store = store

    async def get(self, name: str) -> SyncState | None:
        row = await self._store.lists.get_state(name)
        if row is None:
            return None
        return SyncState(row.name, row.source, row.etag, row.last_modified, row.checkpoint, row.content_hash)

    async def put(self, state: SyncState) -> None:
        await self._store.lists.put_state(
            ListStateRow(
                name=state.name,
                source=state.source,
                etag=state.etag,
                last_modified=state.last_modified,
                checkpoint=state.checkpoint,
                content_hash=state.content_hash,
                updated_at=utcnow(),
            )
        )


def list_syncer(settings: Settings, store: Store, http: aiohttp.ClientSession) -> ListSyncer:
    """The configured [lists] sources and TCAP lists, their cursors in the store."""
    s = settings.lists
    tcap = [
        TcapSourceConfig(
            name=t.name,
            url=t.url,
            token=t.secret(),
            username=t.login_username(),
            password=t.login_password(),
            checkpoint_param=t.checkpoint_param,
            auth_scheme=t.auth_scheme,
            paging="next" if t.paging == "next" else "checkpoint",
        )
        for t in s.tcap
    ]
    return ListSyncer(
        s.sources,
        tcap,
        http=http,
        state=StoredSyncState(store),
        thresholds=list_thresholds(settings),
        max_bytes=s.max_list_bytes,
    )


@dataclass(frozen=True)
class RefreshOutcome:
    """What one changed refresh did to the store."""

    # Lists whose content is new to the store (their additions were matched retroactively).
    fresh: frozenset[str]
    # Per list, how many entries were matched retroactively.
    added: Mapping[str, int]
    # Per list with deletions, the findings retracted now (lists with none are left out).
    retracted: Mapping[str, list[int]] = field(default_factory=dict)
    # The retroactive findings, with the item each was found on.
    new_findings: Sequence[tuple[FindingRow, ItemContext]] = ()


class ListRefresher:
    def __init__(self, store: Store, syncer: ListSyncer, findings: FindingsService, rematcher: Rematcher) -> None:
        self._store = store
        self._syncer = syncer
        self._findings = findings
        self._rematcher = rematcher

    async def sync(self) -> SyncResult:
        """Fetch every list (conditional requests, TCAP deltas); nothing is stored but the cursors."""
        return await self._syncer.refresh()

    async def apply(self, result: SyncResult) -> RefreshOutcome:
        """Retract the findings of deleted entries, match the entries added to lists whose
        content is new, then record the versions loaded."""
        latest = {v.name: v.content_hash for v in await self._store.lists.latest_versions()}
        fresh = frozenset(v.name for v in result.versions if latest.get(v.name) != (v.content_hash or ""))
        retracted: dict[str, list[int]] = {}
        for name, entry_ids in result.removed.items():
            if entry_ids:
                done = await self._findings.retract_deleted_entries(name, entry_ids)
                if done:
                    retracted[name] = done
        added: dict[str, Sequence[ListEntry]] = {
            name: entries for name, entries in result.added.items() if entries and name in fresh
        }
        new = await self._rematcher.rematch(result.catalog, added) if added else []
        # Recorded only once its retroactive pass is done: an agent stopped half way
        # through sees the version as new after a restart and matches it again.
        for v in result.versions:
            await self._store.lists.record_version(
                v.name, v.source, v.content_hash or "", v.entries, v.deny_rules, v.problems
            )
        return RefreshOutcome(fresh, {k: len(v) for k, v in added.items()}, retracted, new)
