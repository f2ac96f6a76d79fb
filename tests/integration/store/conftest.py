"""The `store` fixture: every store test runs on SQLite and on PostgreSQL.

SQLite gets a file in the test's tmp dir. PostgreSQL gets a fresh schema per
test in the database named by DWEB_TEST_POSTGRES_URL (dropped after), so
tests never see each other's rows. If that server cannot be reached the
PostgreSQL half fails under CI=true and is skipped with the reason elsewhere
(tests/support/postgres.py); SQLite always runs."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from agent.store import Store
from tests.support.postgres import connect_admin, postgres_url

POSTGRES_URL = postgres_url()


@dataclass
class Databases:
    """Makes empty databases of one dialect and opens Stores on them; cleans
    up everything it made when the test ends."""

    dialect: str
    tmp_path: Path
    admin: AsyncEngine | None = None
    _schemas: list[str] = field(default_factory=list)
    _stores: list[Store] = field(default_factory=list)
    _count: int = 0

    async def new(self) -> Callable[[], Awaitable[Store]]:
        """A fresh, empty database; returns a function that opens a new Store
        (its own engine and connections) on it."""
        self._count += 1
        if self.dialect == "sqlite":
            url = f"sqlite+aiosqlite:///{self.tmp_path / f'db{self._count}' / 'agent.db'}"
            schema = None
        else:
            assert self.admin is not None
            schema = f"t_{uuid.uuid4().hex[:12]}"
            async with self.admin.begin() as conn:
                await conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
            self._schemas.append(schema)
            url = POSTGRES_URL

        async def open_store() -> Store:
            store = await Store.open(url, schema=schema)
            self._stores.append(store)
            return store

        return open_store

    async def cleanup(self) -> None:
        for store in self._stores:
            await store.close()
        if self.admin is not None:
            async with self.admin.begin() as conn:
                for schema in self._schemas:
                    await conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
            await self.admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
async def databases(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Databases]:
    dbs = Databases(dialect=request.param, tmp_path=tmp_path)
    if request.param == "postgresql":
        dbs.admin = await connect_admin(POSTGRES_URL)
    try:
        yield dbs
    finally:
        await dbs.cleanup()


@dataclass(frozen=True)
class StoreOpener:
    """Opens more Stores on the same database as the `store` fixture."""

    _open: Callable[[], Awaitable[Store]]

    async def __call__(self) -> Store:
        return await self._open()


@pytest.fixture
async def open_store(databases: Databases) -> StoreOpener:
    return StoreOpener(await databases.new())


@pytest.fixture
async def store(open_store: StoreOpener) -> Store:
    return await open_store()
