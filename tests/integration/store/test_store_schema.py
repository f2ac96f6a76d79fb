"""Migrations and column types, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
import sqlalchemy as sa

from agent.model.status import ItemState
from agent.store import ItemRow, SchemaTooNew, Store
from agent.store.migrations import LATEST_VERSION
from agent.store.schema import item_locations, metadata, schema_migrations

EXPECTED_TABLES = {
    "schema_migrations",
    "targets",
    "scans",
    "items",
    "item_locations",
    "findings",
    "list_versions",
    "list_state",
    "job_slots",
    "subscriptions",
    "events",
    "deliveries",
    "delivery_attempts",
    "reviews",
    "retractions",
    "suppressions",
    "content_status",
    "api_tokens",
    "audit_log",
    "scan_jobs",
    "console_sessions",
    "console_preferences",
    "gateway_marks",
}


def _reflect(conn: sa.Connection) -> dict[str, set[str]]:
    inspector = sa.inspect(conn)
    return {t: {c["name"] for c in inspector.get_columns(t)} for t in inspector.get_table_names()}


async def test_migrations_create_exactly_the_declared_schema(store: Store) -> None:
    assert await store.schema_version() == LATEST_VERSION == 6
    async with store._engine.connect() as conn:
        tables = await conn.run_sync(_reflect)
    assert set(tables) == EXPECTED_TABLES
    # A migrated database matches the metadata the queries are written for:
    # this is what catches a migration that forgot a column.
    for name, table in metadata.tables.items():
        assert tables[name] == {c.name for c in table.columns}, name


async def test_the_database_itself_refuses_a_second_row_for_the_same_place(store: Store) -> None:
    # Not just the store's ON CONFLICT: any writer hits the unique index,
    # including for NULL target_id / root_cid, where a plain UNIQUE would not.
    now = datetime.now(UTC)
    await store.items.record(ItemRow(key="k", status=ItemState.VERIFIED), None, [])
    place = {
        "item_key": "k",
        "target_id": None,
        "root_cid": None,
        "path": "/a",
        "first_seen_at": now,
        "last_seen_at": now,
    }
    async with store._engine.begin() as conn:
        await conn.execute(sa.insert(item_locations).values(place))
    with pytest.raises(sa.exc.IntegrityError):
        async with store._engine.begin() as conn:
            await conn.execute(sa.insert(item_locations).values(place))


async def test_reopening_applies_nothing_and_keeps_data(
    store: Store, open_store: Callable[[], Awaitable[Store]]
) -> None:
    await store.targets.add("ipfs://bafykeep", "ipfs", 300)
    await store.close()

    again = await open_store()
    assert await again.schema_version() == LATEST_VERSION
    async with again._engine.connect() as conn:
        rows = (await conn.execute(sa.select(schema_migrations.c.version))).scalars().all()
    assert rows == list(range(1, LATEST_VERSION + 1))
    assert [t.url for t in await again.targets.all()] == ["ipfs://bafykeep"]


async def test_agents_starting_at_once_migrate_once(databases: Any) -> None:
    open_fresh = await databases.new()
    stores = await asyncio.gather(*(open_fresh() for _ in range(10)))
    for store in stores:
        assert await store.schema_version() == LATEST_VERSION
    async with stores[0]._engine.connect() as conn:
        count = await conn.scalar(sa.select(sa.func.count()).select_from(schema_migrations))
    assert count == LATEST_VERSION


async def test_an_older_agent_refuses_a_newer_schema(store: Store, open_store: Callable[[], Awaitable[Store]]) -> None:
    async with store._engine.begin() as conn:
        await conn.execute(
            sa.insert(schema_migrations).values(version=LATEST_VERSION + 1, applied_at=datetime.now(UTC))
        )
    with pytest.raises(SchemaTooNew, match="upgrade the agent"):
        await open_store()


async def test_datetimes_come_back_aware_utc_at_the_same_instant(store: Store) -> None:
    plus_two = timezone(timedelta(hours=2))
    seen = datetime(2024, 5, 1, 14, 30, 15, 123456, tzinfo=plus_two)
    await store.items.record(
        ItemRow(key="k", status=ItemState.VERIFIED, first_seen_at=seen, last_seen_at=seen), None, []
    )

    item = (await store.items.get_many(["k"]))["k"]
    assert item.first_seen_at.tzinfo is not None
    assert item.first_seen_at.utcoffset() == timedelta(0)
    assert item.first_seen_at == seen  # same instant
    assert item.first_seen_at == datetime(2024, 5, 1, 12, 30, 15, 123456, tzinfo=UTC)

    target = await store.targets.add("ipfs://bafyaware", "ipfs", 60)
    assert target.created_at.tzinfo is not None and target.created_at.utcoffset() == timedelta(0)


async def test_naive_datetimes_are_refused(store: Store) -> None:
    target = await store.targets.add("ipfs://bafynaive", "ipfs", 60)
    with pytest.raises(sa.exc.StatementError, match="naive datetime"):
        await store.targets.record_poll(target.id, ok=True, error=None, next_run_at=datetime(2024, 1, 1))  # noqa: DTZ001 -- the naive value is what is tested
    # Nothing was written.
    unchanged = await store.targets.get(target.id)
    assert unchanged is not None and unchanged.last_poll_at is None


async def test_store_opens_with_plain_urls_and_creates_the_directory(tmp_path: object) -> None:
    from pathlib import Path

    path = Path(str(tmp_path)) / "nested" / "deeper" / "agent.db"
    store = await Store.open(f"sqlite:///{path}")
    try:
        assert store.dialect == "sqlite"
        assert path.exists()
    finally:
        await store.close()
    with pytest.raises(ValueError, match="file path"):
        await Store.open("sqlite+aiosqlite:///:memory:")
