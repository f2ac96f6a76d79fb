"""The audit log in the store, on SQLite and PostgreSQL: entries are kept as given and
read newest first, by principal, with a cursor."""

from __future__ import annotations

from datetime import UTC, datetime

from agent.model.access import AuditEntry, Role
from agent.store import Store


async def test_an_entry_is_kept_with_who_what_when_and_from_where(store: Store) -> None:
    """Every field of an entry comes back; `at` is the given time, or now when None."""
    at = datetime(2026, 11, 30, 8, 15, tzinfo=UTC)
    entry = AuditEntry(
        action="POST /v1/webhooks",
        status=201,
        principal="acme",
        token_id=3,
        role=Role.PLATFORM,
        resource="webhook:7",
        remote="127.0.0.1",
        detail={"url": "https://acme.example/hook", "labels": ["a'b"]},
        at=at,
    )
    row = await store.audit.record(entry)
    (read,) = await store.audit.recent()
    assert read == row
    assert (read.at, read.action, read.status, read.principal, read.token_id, read.role) == (
        at,
        "POST /v1/webhooks",
        201,
        "acme",
        3,
        Role.PLATFORM,
    )
    assert (read.resource, read.remote, read.detail) == ("webhook:7", "127.0.0.1", entry.detail)
    before = datetime.now(UTC)
    cli = await store.audit.record(AuditEntry(action="tokens add", status=0))
    assert cli.at >= before and cli.role is None and cli.principal is None and cli.detail == {}


async def test_recent_is_newest_first_pages_by_cursor_and_filters_by_principal(store: Store) -> None:
    """recent() answers newest first; before_id continues where a page ended; principal narrows."""
    rows = [
        await store.audit.record(AuditEntry(action=f"call {i}", status=200, principal="a" if i % 2 else "b"))
        for i in range(5)
    ]
    ids = [r.id for r in rows]
    first = await store.audit.recent(limit=2)
    assert [r.id for r in first] == [ids[4], ids[3]]
    rest = await store.audit.recent(limit=10, before_id=first[-1].id)
    assert [r.id for r in rest] == [ids[2], ids[1], ids[0]]
    assert [r.action for r in await store.audit.recent(principal="a")] == ["call 3", "call 1"]
    assert [r.action for r in await store.audit.recent(principal="b", before_id=ids[4])] == ["call 2", "call 0"]
