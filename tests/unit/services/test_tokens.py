"""TokensService on a real store (SQLite and PostgreSQL): tokens shown once and kept as a
hash, names as principals with one role, revocation at once, and a cached check that
leaves the database alone."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import datetime

import pytest

from agent.model.access import Principal, Role, TokenRow
from agent.services import Invalid, NotFound
from agent.services.tokens import TOUCH_INTERVAL_S, TokensService
from agent.store import Store


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


class CountingTokens:
    """The store's token repository, counting the look-ups and writes that reach it."""

    def __init__(self, store: Store) -> None:
        self._inner = store.tokens
        self.by_hash_calls = 0
        self.touched: list[dict[int, datetime]] = []

    async def by_hash(self, token_hash: str) -> tuple[TokenRow, str] | None:
        self.by_hash_calls += 1
        return await self._inner.by_hash(token_hash)

    async def touch(self, used: Mapping[int, datetime]) -> None:
        self.touched.append(dict(used))
        await self._inner.touch(used)

    def __getattr__(self, name: str) -> object:
        return getattr(self._inner, name)


def counted(store: Store) -> CountingTokens:
    """Route the store's `tokens` through a counter (the service reads `store.tokens`)."""
    counter = CountingTokens(store)
    store.tokens = counter  # type: ignore[assignment]
    return counter


async def test_a_new_token_authenticates_as_its_name_and_role_and_only_its_hash_is_stored(store: Store) -> None:
    """The token is dwa_ + 32 random bytes; the store holds its SHA-256, never the token."""
    svc = TokensService(store, 5.0)
    made = await svc.add(Role.PLATFORM, "acme")
    assert made.token.startswith("dwa_") and len(made.token) == 4 + 43
    assert await svc.authenticate(made.token) == Principal(made.row.id, "acme", Role.PLATFORM)
    found = await store.tokens.by_hash(hashlib.sha256(made.token.encode()).hexdigest())
    assert found is not None and found[0].id == made.row.id
    assert await store.tokens.by_hash(made.token) is None
    other = await svc.add(Role.PLATFORM, "acme")
    assert other.token != made.token


async def test_a_name_is_generated_from_the_role_when_none_is_given(store: Store) -> None:
    """Without --name the principal is ROLE-xxxx (four hex digits)."""
    made = await TokensService(store, 5.0).add(Role.VIEWER)
    assert made.row.name.startswith("viewer-") and len(made.row.name) == len("viewer-") + 4
    int(made.row.name.removeprefix("viewer-"), 16)


@pytest.mark.parametrize("name", ["", "a" * 65, "has space", "semi;colon", "slash/", "ünï"])
async def test_a_malformed_name_is_refused(store: Store, name: str) -> None:
    """Names are 1-64 characters of A-Za-z0-9._@- (they appear in URLs, logs and audit lines)."""
    with pytest.raises(Invalid, match="token name"):
        await TokensService(store, 5.0).add(Role.ADMIN, name)
    assert await store.tokens.all() == []


async def test_one_name_never_holds_two_roles_but_a_rotation_in_the_same_role_is_allowed(store: Store) -> None:
    """A second platform token for "acme" is a rotation; an admin "acme" is refused while a
    platform "acme" is active, and allowed once it is revoked."""
    svc = TokensService(store, 5.0)
    first = await svc.add(Role.PLATFORM, "acme")
    await svc.add(Role.PLATFORM, "acme")
    with pytest.raises(Invalid, match="already has an active platform token"):
        await svc.add(Role.ADMIN, "acme")
    for row in await svc.all():
        await svc.revoke(row.id)
    admin = await svc.add(Role.ADMIN, "acme")
    assert admin.row.role is Role.ADMIN and admin.row.id > first.row.id


@pytest.mark.parametrize(
    "token",
    ["", "dwa_", "dwa_short", "xyz_" + "a" * 43, "dwa_" + "a" * 42, "dwa_" + "a" * 44, "dwa_" + "a" * 42 + "!"],
)
async def test_a_malformed_token_is_refused_without_asking_the_database(store: Store, token: str) -> None:
    """Wrong prefix, length or alphabet: None, and no look-up reaches the store."""
    counter = counted(store)
    assert await TokensService(store, 5.0).authenticate(token) is None
    assert counter.by_hash_calls == 0


async def test_an_unknown_well_formed_token_is_refused(store: Store) -> None:
    """A token of the right shape that was never made does not authenticate."""
    svc = TokensService(store, 5.0)
    await svc.add(Role.ADMIN, "root")
    assert await svc.authenticate("dwa_" + "A" * 43) is None


async def test_a_cached_check_does_not_touch_the_database_until_it_expires(store: Store) -> None:
    """Within token_cache_s a token is answered from memory; after it, the store is asked again."""
    clock = Clock()
    svc = TokensService(store, 5.0, clock=clock)
    made = await svc.add(Role.INVESTIGATOR, "ana")
    counter = counted(store)
    for _ in range(100):
        assert await svc.authenticate(made.token) is not None
    assert counter.by_hash_calls == 1
    clock.t += 5.1
    assert await svc.authenticate(made.token) is not None
    assert counter.by_hash_calls == 2


async def test_revoking_a_token_stops_it_at_once_on_this_agent_even_when_cached(store: Store) -> None:
    """A revoked token is refused by the next check, cached or not; revoking twice keeps it revoked."""
    svc = TokensService(store, 60.0)
    made = await svc.add(Role.PLATFORM, "acme")
    keep = await svc.add(Role.PLATFORM, "acme")
    assert await svc.authenticate(made.token) is not None
    revoked = await svc.revoke(made.row.id)
    assert revoked.revoked_at is not None and not revoked.active
    assert await svc.authenticate(made.token) is None
    assert await svc.authenticate(keep.token) is not None
    again = await svc.revoke(made.row.id)
    assert again.revoked_at == revoked.revoked_at


async def test_another_agents_revocation_takes_effect_when_the_cache_expires(store: Store) -> None:
    """A second service (another agent on the same database) revokes: this one refuses the
    token once its cached answer is older than token_cache_s."""
    clock = Clock()
    here = TokensService(store, 5.0, clock=clock)
    made = await here.add(Role.VIEWER, "v")
    assert await here.authenticate(made.token) is not None
    await TokensService(store, 5.0).revoke(made.row.id)
    clock.t += 5.1
    assert await here.authenticate(made.token) is None


async def test_revoking_an_unknown_token_is_not_found(store: Store) -> None:
    """`tokens revoke 99` with no token 99 says so."""
    with pytest.raises(NotFound, match="no API token 99"):
        await TokensService(store, 5.0).revoke(99)


async def test_last_use_is_written_at_most_once_a_minute_per_token(store: Store) -> None:
    """Many checks in a minute write last_used_at once; a check a minute later writes it again."""
    clock = Clock()
    svc = TokensService(store, 5.0, clock=clock)
    made = await svc.add(Role.PLATFORM, "acme")
    counter = counted(store)
    for _ in range(50):
        await svc.authenticate(made.token)
    await svc.flush()
    assert [list(batch) for batch in counter.touched] == [[made.row.id]]
    (row,) = await store.tokens.all()
    assert row.last_used_at is not None
    first_use = row.last_used_at
    clock.t += TOUCH_INTERVAL_S / 2
    await svc.authenticate(made.token)
    await svc.flush()
    assert len(counter.touched) == 1
    clock.t += TOUCH_INTERVAL_S
    await svc.authenticate(made.token)
    await svc.flush()
    assert len(counter.touched) == 2
    (row,) = await store.tokens.all()
    assert row.last_used_at is not None and row.last_used_at >= first_use


async def test_token_rows_never_carry_the_secret_or_its_hash(store: Store) -> None:
    """Listing tokens shows names, roles and dates, nothing a caller could authenticate with."""
    svc = TokensService(store, 5.0)
    made = await svc.add(Role.ADMIN, "root")
    digest = hashlib.sha256(made.token.encode()).hexdigest()
    (row,) = await svc.all()
    assert made.token not in repr(row) and digest not in repr(row)
