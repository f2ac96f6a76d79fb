"""AuditService on a real store (SQLite and PostgreSQL): entries kept, newest first, paged
and filtered by principal; the CLI's entries name the login that ran the command."""

from __future__ import annotations

import pytest

from agent.model.access import AuditEntry, Role
from agent.services import Invalid
from agent.services.audit import AuditService, cli_entry
from agent.store import Store


async def test_entries_come_back_newest_first_paged_and_by_principal(store: Store) -> None:
    """Who did what is kept as recorded; the cursor pages back; a principal sees only theirs."""
    audit = AuditService(store)
    for n in range(5):
        await audit.record(
            AuditEntry(
                action="POST /v1/webhooks",
                status=201,
                principal="acme" if n % 2 == 0 else "other",
                token_id=n,
                role=Role.PLATFORM,
                resource=f"webhook:{n}",
                remote="127.0.0.1",
                detail={"url": f"https://example.org/{n}"},
            )
        )
    newest = await audit.recent(limit=2)
    assert [r.resource for r in newest] == ["webhook:4", "webhook:3"]
    assert newest[0].principal == "acme" and newest[0].role is Role.PLATFORM and newest[0].status == 201
    assert newest[0].detail == {"url": "https://example.org/4"} and newest[0].remote == "127.0.0.1"
    older = await audit.recent(limit=10, before_id=newest[-1].id)
    assert [r.resource for r in older] == ["webhook:2", "webhook:1", "webhook:0"]
    assert [r.resource for r in await audit.recent(principal="acme")] == ["webhook:4", "webhook:2", "webhook:0"]


async def test_a_cli_entry_names_the_user_and_has_no_status_or_remote(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`tokens add` run by alice is recorded as cli:alice, status 0, from nowhere."""
    monkeypatch.setenv("USER", "alice")
    audit = AuditService(store)
    await audit.record(cli_entry("tokens add", resource="token:1", detail={"name": "acme"}))
    (row,) = await audit.recent()
    assert (row.principal, row.action, row.status, row.remote, row.token_id) == (
        "cli:alice",
        "tokens add",
        0,
        None,
        None,
    )


@pytest.mark.parametrize("limit", [0, -1, 1001])
async def test_a_page_size_out_of_range_is_refused(store: Store, limit: int) -> None:
    """limit is 1 to 1000: a caller cannot ask for the whole log at once."""
    with pytest.raises(Invalid, match="limit"):
        await AuditService(store).recent(limit=limit)
