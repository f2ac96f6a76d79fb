"""Console sessions and reviewers' preferences: the session id's SHA-256 (never the id),
whose token it is, and the form token its POSTs carry."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from agent.model.access import ConsoleSession, Preferences, Principal, Role
from agent.store.engine import Engine
from agent.store.schema import api_tokens, console_preferences, console_sessions


class SessionRepository:
    def __init__(self, engine: Engine) -> None:
        self._db = engine

    async def add(self, id_hash: str, token_id: int, csrf: str, now: datetime) -> None:
        stmt = sa.insert(console_sessions).values(
            id_hash=id_hash, token_id=token_id, csrf=csrf, created_at=now, last_seen_at=now
        )
        async with self._db.write() as conn:
            await conn.execute(stmt)

    async def get(self, id_hash: str) -> ConsoleSession | None:
        """The session with its token's principal; None when unknown or its token is revoked."""
        query = (
            sa.select(console_sessions, api_tokens.c.name, api_tokens.c.role)
            .join(api_tokens, api_tokens.c.id == console_sessions.c.token_id)
            .where(console_sessions.c.id_hash == id_hash, api_tokens.c.revoked_at.is_(None))
        )
        async with self._db.read() as conn:
            row = (await conn.execute(query)).mappings().one_or_none()
        if row is None:
            return None
        principal = Principal(token_id=int(row["token_id"]), name=row["name"], role=Role(row["role"]))
        return ConsoleSession(row["id_hash"], principal, row["csrf"], row["created_at"], row["last_seen_at"])

    async def touch(self, id_hash: str, now: datetime) -> None:
        stmt = sa.update(console_sessions).where(console_sessions.c.id_hash == id_hash).values(last_seen_at=now)
        async with self._db.write() as conn:
            await conn.execute(stmt)

    async def delete(self, id_hash: str) -> None:
        async with self._db.write() as conn:
            await conn.execute(sa.delete(console_sessions).where(console_sessions.c.id_hash == id_hash))

    async def purge(self, *, idle_before: datetime, created_before: datetime) -> int:
        """Forget sessions idle since `idle_before` or begun before `created_before`."""
        stmt = sa.delete(console_sessions).where(
            sa.or_(console_sessions.c.last_seen_at < idle_before, console_sessions.c.created_at < created_before)
        )
        async with self._db.write() as conn:
            return int((await conn.execute(stmt)).rowcount)

    async def preferences(self, principal: str) -> Preferences | None:
        query = sa.select(console_preferences.c.blur_previews).where(console_preferences.c.principal == principal)
        async with self._db.read() as conn:
            blur = (await conn.execute(query)).scalar_one_or_none()
        return Preferences(blur_previews=bool(blur)) if blur is not None else None

    async def set_preferences(self, principal: str, prefs: Preferences, now: datetime) -> None:
        async with self._db.write() as conn:
            done = await conn.execute(
                sa.update(console_preferences)
                .where(console_preferences.c.principal == principal)
                .values(blur_previews=prefs.blur_previews, updated_at=now)
            )
            if done.rowcount == 0:
                await conn.execute(
                    sa.insert(console_preferences).values(
                        principal=principal, blur_previews=prefs.blur_previews, updated_at=now
                    )
                )
