"""API tokens in the store, on SQLite and PostgreSQL: only the hash is kept, a token is
found by its hash, revoked once, and its last use recorded in batches."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from agent.model.access import Role
from agent.store import Store
from agent.store.schema import api_tokens


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


async def test_a_token_is_found_by_its_hash_and_its_secret_is_not_stored(store: Store) -> None:
    """The row found by hash carries name and role, and the database holds no secret."""
    secret = "dweb_" + "s3cret" * 8
    added = await store.tokens.add("alice", Role.INVESTIGATOR, _hash(secret))
    found = await store.tokens.by_hash(_hash(secret))
    assert found is not None
    row, stored = found
    assert (row.id, row.name, row.role, row.active) == (added.id, "alice", Role.INVESTIGATOR, True)
    assert stored == _hash(secret)
    assert await store.tokens.by_hash(_hash("another")) is None
    async with store._engine.connect() as conn:
        cells = [str(v) for r in (await conn.execute(sa.select(api_tokens))).all() for v in r]
    assert not any(secret in cell for cell in cells)


async def test_two_tokens_cannot_share_a_hash(store: Store) -> None:
    """The hash is unique: a second token with the same secret is refused by the database."""
    await store.tokens.add("a", Role.VIEWER, _hash("same"))
    with pytest.raises(sa.exc.IntegrityError):
        await store.tokens.add("b", Role.ADMIN, _hash("same"))


async def test_revoking_keeps_the_first_time_and_the_token_is_still_found_inactive(store: Store) -> None:
    """A revoked token is still returned by hash (so the caller can refuse it) but inactive;
    revoking again does not move the date; an unknown id answers None."""
    token = await store.tokens.add("p", Role.PLATFORM, _hash("p"))
    first = await store.tokens.revoke(token.id)
    assert first is not None and first.revoked_at is not None and not first.active
    again = await store.tokens.revoke(token.id)
    assert again is not None and again.revoked_at == first.revoked_at
    found = await store.tokens.by_hash(_hash("p"))
    assert found is not None and not found[0].active
    assert await store.tokens.revoke(token.id + 100) is None
    assert await store.tokens.get(token.id + 100) is None


async def test_listing_is_oldest_first_and_can_leave_out_revoked_tokens(store: Store) -> None:
    """`all()` lists every token in creation order; include_revoked=False hides revoked ones."""
    a = await store.tokens.add("a", Role.ADMIN, _hash("a"))
    b = await store.tokens.add("b", Role.VIEWER, _hash("b"))
    c = await store.tokens.add("c", Role.PLATFORM, _hash("c"))
    await store.tokens.revoke(b.id)
    assert [t.id for t in await store.tokens.all()] == [a.id, b.id, c.id]
    assert [t.id for t in await store.tokens.all(include_revoked=False)] == [a.id, c.id]


async def test_touch_records_last_use_for_many_tokens_and_never_goes_back(store: Store) -> None:
    """One call sets last_used_at of several tokens; an older time does not overwrite a newer one."""
    a = await store.tokens.add("a", Role.ADMIN, _hash("a"))
    b = await store.tokens.add("b", Role.VIEWER, _hash("b"))
    idle = await store.tokens.add("idle", Role.VIEWER, _hash("idle"))
    now = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    await store.tokens.touch({a.id: now, b.id: now + timedelta(seconds=5)})
    await store.tokens.touch({a.id: now - timedelta(hours=1)})
    got = {t.name: t.last_used_at for t in await store.tokens.all()}
    assert got == {"a": now, "b": now + timedelta(seconds=5), "idle": None}
    fetched = await store.tokens.get(idle.id)
    assert fetched is not None and fetched.last_used_at is None
