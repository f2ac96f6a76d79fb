"""The `store` fixture: every store test runs on SQLite and on PostgreSQL.

SQLite gets a file in the test's tmp dir. PostgreSQL gets a fresh schema per
test in the database named by DWEB_TEST_POSTGRES_URL (dropped after), so
tests never see each other's rows. If that server cannot be reached the
PostgreSQL half is skipped with the reason; SQLite always runs."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from agent.store import Store

DEFAULT_POSTGRES_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
POSTGRES_URL = os.environ.get("DWEB_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL)


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


async def _postgres_admin() -> AsyncEngine:
    engine = create_async_engine(POSTGRES_URL, connect_args={"timeout": 5})
    try:
        async with engine.connect() as conn:
            await conn.execute(sa.text("SELECT 1"))
    except (OSError, TimeoutError, sa.exc.SQLAlchemyError) as exc:
        await engine.dispose()
        pytest.skip(f"PostgreSQL not reachable at {POSTGRES_URL}: {exc!r}")
    return engine


@pytest.fixture(params=["sqlite", "postgresql"])
async def databases(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Databases]:
    dbs = Databases(dialect=request.param, tmp_path=tmp_path)
    if request.param == "postgresql":
        dbs.admin = await _postgres_admin()
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
