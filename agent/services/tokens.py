"""API tokens: made, listed and revoked by an admin; checked on every API request.

A token is `dwa_` + 43 URL-safe characters (32 random bytes). It is shown once, when it
is made; the store keeps only its SHA-256, so a copy of the database lets nobody call the
API. The token's name is the principal: webhooks made through the API belong to the name,
so a platform that rotates its token (a second token, same name, then the first revoked)
keeps its subscriptions. One name never holds two roles.

`authenticate` runs on every request (the API aims at 2,000 authenticated requests/s), so
a successful check is remembered for `cache_s` seconds, keyed by the hash and never by
the token, and `last_used_at` is written in batches, at most once a minute per token, off
the request's path. Neither a token nor its hash is ever logged."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

import structlog

from agent.model.access import Principal, Role, TokenRow
from agent.model.time import utcnow
from agent.services.errors import Invalid, NotFound

if TYPE_CHECKING:
    from agent.store import Store

TOKEN_PREFIX = "dwa_"  # noqa: S105  (the prefix every token starts with, not a secret)
_TOKEN_BYTES = 32
# secrets.token_urlsafe(32): 43 characters of the URL-safe base64 alphabet, no padding.
_TOKEN = re.compile(rf"{TOKEN_PREFIX}[A-Za-z0-9_-]{{43}}")
_NAME = re.compile(r"[A-Za-z0-9._@-]{1,64}")
# last_used_at is a hint for an operator deciding what to revoke, not an access log (the
# audit log is that): a minute's precision is enough, and spares a write per request.
TOUCH_INTERVAL_S = 60.0
# Expired cache entries are swept only when the cache has grown past this many tokens.
_SWEEP_AT = 1024

log = structlog.get_logger(__name__)


def token_hash(token: str) -> str:
    """The SHA-256 (hex) a token is stored and looked up by."""
    return hashlib.sha256(token.encode("ascii")).hexdigest()


def well_formed(token: str) -> bool:
    """Whether `token` has the shape of one this agent makes (no database needed to say no)."""
    return isinstance(token, str) and _TOKEN.fullmatch(token) is not None


@dataclass(frozen=True, slots=True)
class NewToken:
    """A token just made: its row and the token itself, which is never shown again."""

    row: TokenRow
    token: str


@dataclass(frozen=True, slots=True)
class _Cached:
    principal: Principal
    expires: float  # on the service's monotonic clock


class TokensService:
    """Tokens over the store's `tokens` repository, with this process's cache of checks."""

    def __init__(
        self,
        store: Store,
        cache_s: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = utcnow,
    ) -> None:
        self._store = store
        self._cache_s = cache_s
        self._clock = clock
        self._now = now
        self._cache: dict[str, _Cached] = {}
        # Revoked here: never cached again, even by a check that read the row before the revocation.
        self._revoked: set[int] = set()
        self._marked: dict[int, float] = {}  # token id -> when its last use was last queued
        self._pending: dict[int, datetime] = {}  # uses not yet written
        self._last_flush: float | None = None
        self._flushing: asyncio.Task[None] | None = None

    async def add(self, role: Role, name: str | None = None) -> NewToken:
        """A new token for `name` (made up from the role when not given), shown once."""
        role = Role(role)
        if name is None:
            name = f"{role}-{secrets.token_hex(2)}"
        elif not _NAME.fullmatch(name):
            raise Invalid(f"token name {name[:80]!r}: 1 to 64 characters of A-Z a-z 0-9 . _ @ -")
        for other in await self._store.tokens.all(include_revoked=False):
            if other.name == name and other.role is not role:
                raise Invalid(
                    f"the name {name!r} already has an active {other.role} token (id {other.id}); "
                    "one principal has one role: choose another name or revoke that token first"
                )
        token = TOKEN_PREFIX + secrets.token_urlsafe(_TOKEN_BYTES)
        row = await self._store.tokens.add(name, role, token_hash(token))
        return NewToken(row, token)

    async def all(self) -> list[TokenRow]:
        """Every token, revoked ones too, oldest first."""
        return await self._store.tokens.all()

    async def revoke(self, token_id: int) -> TokenRow:
        """Revoke a token; on this agent it stops working at once (others: within cache_s)."""
        row = await self._store.tokens.revoke(token_id)
        if row is None:
            raise NotFound(f"no API token {token_id}")
        self._revoked.add(row.id)
        for digest in [d for d, hit in self._cache.items() if hit.principal.token_id == row.id]:
            del self._cache[digest]
        self._pending.pop(row.id, None)
        return row

    async def authenticate(self, token: str) -> Principal | None:
        """The principal `token` belongs to, or None (malformed, unknown or revoked)."""
        if not well_formed(token):
            return None
        digest = token_hash(token)
        now = self._clock()
        hit = self._cache.get(digest)
        if hit is not None:
            if hit.expires > now:
                self._used(hit.principal.token_id, now)
                return hit.principal
            del self._cache[digest]
        found = await self._store.tokens.by_hash(digest)
        if found is None:
            return None
        row, stored = found
        if not hmac.compare_digest(stored, digest) or not row.active or row.id in self._revoked:
            return None
        principal = Principal(row.id, row.name, row.role)
        if self._cache_s > 0:
            if len(self._cache) >= _SWEEP_AT:
                self._sweep(now)
            self._cache[digest] = _Cached(principal, now + self._cache_s)
        self._used(row.id, now)
        return principal

    def _sweep(self, now: float) -> None:
        for digest in [d for d, hit in self._cache.items() if hit.expires <= now]:
            del self._cache[digest]

    def _used(self, token_id: int, now: float) -> None:
        """Queue a last-used time (once a minute per token) and start a write when one is due."""
        marked = self._marked.get(token_id)
        if marked is None or now - marked >= TOUCH_INTERVAL_S:
            self._marked[token_id] = now
            self._pending[token_id] = self._now()
        due = self._last_flush is None or now - self._last_flush >= TOUCH_INTERVAL_S
        if self._pending and due and (self._flushing is None or self._flushing.done()):
            self._last_flush = now
            self._flushing = asyncio.get_running_loop().create_task(self._flush_quietly())

    async def _flush_quietly(self) -> None:
        try:
            await self.flush()
        except Exception as exc:  # noqa: BLE001  (a hint lost must not fail a request; kept for the next write)
            log.warning("recording API tokens' last use failed", error=f"{type(exc).__name__}: {exc}")

    async def flush(self) -> None:
        """Write the queued last-used times now (the API calls it when it stops)."""
        if self._flushing is not None and not self._flushing.done() and self._flushing is not asyncio.current_task():
            await asyncio.shield(self._flushing)
        pending, self._pending = self._pending, {}
        if not pending:
            return
        try:
            await self._store.tokens.touch(pending)
        except BaseException:
            # Put them back (newer uses queued meanwhile win) for the next write.
            self._pending = {**pending, **self._pending}
            raise
