"""API tokens: who may call the API, by the SHA-256 of their secret (never the secret)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import RowMapping

from agent.model.access import Role, TokenRow
from agent.model.time import utcnow
from agent.store.engine import Engine
from agent.store.schema import api_tokens
from agent.store.types import UTCDateTime

# The columns a TokenRow is made of: the hash stays in the store unless asked for.
_ROW_COLUMNS = (
    api_tokens.c.id,
    api_tokens.c.name,
    api_tokens.c.role,
    api_tokens.c.created_at,
    api_tokens.c.last_used_at,
    api_tokens.c.revoked_at,
)


def token_from_row(r: RowMapping) -> TokenRow:
    return TokenRow(
        id=int(r["id"]),
        name=r["name"],
        role=Role(r["role"]),
        created_at=r["created_at"],
        last_used_at=r["last_used_at"],
        revoked_at=r["revoked_at"],
    )


class TokenRepository:
    def __init__(self, engine: Engine) -> None:
        self._db = engine

    async def add(self, name: str, role: Role, token_hash: str) -> TokenRow:
        """A new active token; `token_hash` is the SHA-256 hex of its secret (unique)."""
        stmt = (
            sa.insert(api_tokens)
            .values(name=name, role=Role(role).value, token_hash=token_hash, created_at=utcnow())
            .returning(*_ROW_COLUMNS)
        )
        async with self._db.write() as conn:
            return token_from_row((await conn.execute(stmt)).mappings().one())

    async def by_hash(self, token_hash: str) -> tuple[TokenRow, str] | None:
        """The token with this hash and the hash as stored (the caller compares the two in
        constant time); a revoked token is returned too: the caller checks `active`."""
        query = sa.select(*_ROW_COLUMNS, api_tokens.c.token_hash).where(api_tokens.c.token_hash == token_hash)
        async with self._db.read() as conn:
            row = (await conn.execute(query)).mappings().one_or_none()
        return (token_from_row(row), str(row["token_hash"])) if row is not None else None

    async def get(self, token_id: int) -> TokenRow | None:
        query = sa.select(*_ROW_COLUMNS).where(api_tokens.c.id == token_id)
        async with self._db.read() as conn:
            row = (await conn.execute(query)).mappings().one_or_none()
        return token_from_row(row) if row is not None else None

    async def all(self, *, include_revoked: bool = True) -> list[TokenRow]:
        """Oldest first."""
        query = sa.select(*_ROW_COLUMNS).order_by(api_tokens.c.id)
        if not include_revoked:
            query = query.where(api_tokens.c.revoked_at.is_(None))
        async with self._db.read() as conn:
            return [token_from_row(r) for r in (await conn.execute(query)).mappings()]

    async def revoke(self, token_id: int) -> TokenRow | None:
        """Revoked from now on; revoking again keeps the first time. None: no such token."""
        stmt = (
            sa.update(api_tokens)
            .where(api_tokens.c.id == token_id, api_tokens.c.revoked_at.is_(None))
            .values(revoked_at=utcnow())
        )
        async with self._db.write() as conn:
            await conn.execute(stmt)
            row = (await conn.execute(sa.select(*_ROW_COLUMNS).where(api_tokens.c.id == token_id))).mappings()
            found = row.one_or_none()
        return token_from_row(found) if found is not None else None

    async def touch(self, used: Mapping[int, datetime]) -> None:
        """Record when tokens were last used, many in one transaction (the API batches them
        so that a request does not cost a write); a time never moves backwards."""
        if not used:
            return
        when = sa.bindparam("b_used", type_=UTCDateTime)
        stmt = (
            sa.update(api_tokens)
            .where(
                api_tokens.c.id == sa.bindparam("b_id"),
                sa.or_(api_tokens.c.last_used_at.is_(None), api_tokens.c.last_used_at < when),
            )
            .values(last_used_at=when)
        )
        params = [{"b_id": token_id, "b_used": at} for token_id, at in sorted(used.items())]
        async with self._db.write() as conn:
            await conn.execute(stmt, params)
