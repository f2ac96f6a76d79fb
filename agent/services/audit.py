"""The audit trail: every mutating API call, and the CLI's own token commands, kept in
the store (who, with which token and role, what, the answer, from where).

Entries are never changed or removed by the agent; `recent` pages back through them,
newest first. An entry's `detail` names what the call named, never a secret."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from agent.model.access import AuditEntry, AuditRow
from agent.services.errors import Invalid

if TYPE_CHECKING:
    from agent.store import Store

MAX_PAGE = 1000


def cli_principal() -> str:
    """Who the CLI's own entries name: the login running the command."""
    return f"cli:{os.environ.get('USER') or 'unknown'}"


def cli_entry(action: str, *, resource: str | None = None, detail: dict[str, Any] | None = None) -> AuditEntry:
    """A CLI command's entry: no HTTP status (0), no remote address, no token."""
    return AuditEntry(action=action, status=0, principal=cli_principal(), resource=resource, detail=detail or {})


class AuditService:
    def __init__(self, store: Store) -> None:
        self._store = store

    async def record(self, entry: AuditEntry) -> None:
        """Keep one entry (its time is the store's now unless the entry has one)."""
        await self._store.audit.record(entry)

    async def recent(
        self, limit: int = 100, before_id: int | None = None, principal: str | None = None
    ) -> list[AuditRow]:
        """The newest entries first, older than `before_id` when given (the cursor), only
        `principal`'s when given."""
        if not 1 <= limit <= MAX_PAGE:
            raise Invalid(f"limit must be between 1 and {MAX_PAGE}, not {limit}")
        return await self._store.audit.recent(limit=limit, before_id=before_id, principal=principal)
