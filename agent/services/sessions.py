"""Console logins: an API token exchanged for a session, checked on every page.

The browser holds a random session id in an HttpOnly cookie; the store keeps only its
SHA-256, so a copy of the database opens no session. Each session has its own form token
(CSRF), compared in constant time on every POST. A session ends at logout, after
[console] session_idle_s without a request, session_max_s after login, or as soon as its
API token is revoked (the token is looked up with the session on every request, so a
revocation on any agent sharing the database ends the session at its next page)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from agent.model.access import ConsoleSession, Preferences, Principal, Role
from agent.model.time import utcnow
from agent.services.errors import Invalid

if TYPE_CHECKING:
    from agent.config import ConsoleSettings
    from agent.services.tokens import TokensService
    from agent.store import Store

# last_seen_at moves at most this often per session: the idle limit is minutes, not seconds.
_TOUCH_S = 30.0
# The roles the console serves: a platform's token is for the API (its webhooks, its findings).
CONSOLE_ROLES = frozenset({Role.ADMIN, Role.INVESTIGATOR, Role.VIEWER})


def _digest(session_id: str) -> str:
    return hashlib.sha256(session_id.encode("ascii", "replace")).hexdigest()


@dataclass(frozen=True, slots=True)
class NewSession:
    """A login just made: the id for the cookie (never stored) and the session."""

    session_id: str
    session: ConsoleSession


class SessionsService:
    def __init__(
        self,
        store: Store,
        tokens: TokensService,
        settings: ConsoleSettings,
        *,
        now: Callable[[], datetime] = utcnow,
    ) -> None:
        self._store = store
        self._tokens = tokens
        self._settings = settings
        self._now = now

    async def login(self, token: str) -> NewSession:
        """A session for a valid API token of a console role, or Invalid (one message for
        every bad token, so the form tells nobody which tokens exist)."""
        principal = await self._tokens.authenticate(token.strip())
        if principal is None:
            raise Invalid("that token is not valid (unknown, revoked or mistyped)", field="token")
        if principal.role not in CONSOLE_ROLES:
            raise Invalid(
                f"a {principal.role.value} token is for the API; the console is for admin, investigator "
                "and viewer tokens",
                field="token",
            )
        now = self._now()
        await self._purge(now)
        session_id = secrets.token_urlsafe(32)
        csrf = secrets.token_urlsafe(32)
        await self._store.sessions.add(_digest(session_id), principal.token_id, csrf, now)
        return NewSession(session_id, ConsoleSession(_digest(session_id), principal, csrf, now, now))

    async def resolve(self, session_id: str | None) -> ConsoleSession | None:
        """The live session of a cookie's id; None when absent, unknown, expired or revoked."""
        if not session_id or len(session_id) > 128:
            return None
        digest = _digest(session_id)
        session = await self._store.sessions.get(digest)
        if session is None:
            return None
        now = self._now()
        idle = timedelta(seconds=self._settings.session_idle_s)
        ceiling = timedelta(seconds=self._settings.session_max_s)
        if now - session.last_seen_at > idle or now - session.created_at > ceiling:
            await self._store.sessions.delete(digest)
            return None
        if (now - session.last_seen_at).total_seconds() >= _TOUCH_S:
            await self._store.sessions.touch(digest, now)
        return session

    async def logout(self, session_id: str | None) -> None:
        if session_id and len(session_id) <= 128:
            await self._store.sessions.delete(_digest(session_id))

    @staticmethod
    def csrf_ok(session: ConsoleSession, sent: str | None) -> bool:
        return sent is not None and hmac.compare_digest(session.csrf.encode(), sent.encode("utf-8", "replace"))

    async def preferences(self, principal: Principal) -> Preferences:
        """The reviewer's settings, or the configured defaults."""
        kept = await self._store.sessions.preferences(principal.name)
        return kept if kept is not None else Preferences(blur_previews=self._settings.blur_previews)

    async def set_preferences(self, principal: Principal, prefs: Preferences) -> None:
        await self._store.sessions.set_preferences(principal.name, prefs, self._now())

    async def _purge(self, now: datetime) -> None:
        # At each login rather than on a timer: sessions are few and logins rarer still.
        await self._store.sessions.purge(
            idle_before=now - timedelta(seconds=self._settings.session_idle_s),
            created_before=now - timedelta(seconds=self._settings.session_max_s),
        )
