"""Migration 4 and subscription owners, on SQLite and PostgreSQL: a version 3 database
upgrades with its subscriptions kept (owner NULL: made with the CLI) into exactly the
schema a fresh database gets, and subscriptions are listed by owner."""

from __future__ import annotations

import warnings
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from agent.model.access import Role
from agent.store import Store
from agent.store.migrations import LATEST_VERSION
from agent.store.schema import schema_migrations
from tests.integration.store.conftest import Databases, StoreOpener


def _shape(conn: sa.Connection) -> dict[str, Any]:
    """Tables with their columns (name, type, nullability, default), indexes and uniques."""
    with warnings.catch_warnings():
        # SQLite's inspector cannot reflect the expression index of item_locations (an
        # older table, the same on both paths) and says so for every reflection.
        warnings.filterwarnings("ignore", "Skipped unsupported reflection", sa.exc.SAWarning)
        return _reflect_shape(sa.inspect(conn))


def _reflect_shape(inspector: sa.Inspector) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for table in sorted(inspector.get_table_names()):
        out[table] = {
            "columns": [
                (c["name"], str(c["type"]), c["nullable"], str(c.get("default"))) for c in inspector.get_columns(table)
            ],
            "indexes": sorted(
                (i["name"], tuple(i["column_names"]), bool(i["unique"])) for i in inspector.get_indexes(table)
            ),
            "uniques": sorted(str(u["column_names"]) for u in inspector.get_unique_constraints(table)),
        }
    return out


async def _as_version_3(store: Store) -> None:
    """Turn a migrated database back into what migration 3 left."""
    async with store._engine.begin() as conn:
        later = ("gateway_marks", "console_preferences", "console_sessions", "scan_jobs", "audit_log", "api_tokens")
        for table in later:
            await conn.execute(sa.text(f"DROP TABLE {table}"))
        await conn.execute(sa.text("ALTER TABLE subscriptions DROP COLUMN owner"))
        await conn.execute(sa.delete(schema_migrations).where(schema_migrations.c.version >= 4))


async def test_a_version_3_database_keeps_its_subscriptions_and_matches_a_fresh_one(databases: Databases) -> None:
    """Upgrading from 3 keeps a CLI-made subscription (owner NULL) and ends in the same
    schema, column for column and index for index, as a database created at the latest version."""
    open_old = await databases.new()
    old = await open_old()
    await _as_version_3(old)
    async with old._engine.begin() as conn:
        await conn.execute(
            sa.text(
                "INSERT INTO subscriptions (url, secret, lists, labels, targets, event_types, enabled, "
                "max_in_flight, created_at) VALUES ('https://cli.example/hook', 'whsec_old', '[]', "
                "'[\"terrorism\"]', '[]', '[]', :on, 4, :at)"
            ),
            {"on": True, "at": datetime(2026, 10, 1, tzinfo=UTC).replace(tzinfo=None)},
        )
    await old.close()

    upgraded = await open_old()
    assert await upgraded.schema_version() == LATEST_VERSION
    (kept,) = await upgraded.subscriptions.all()
    assert (kept.url, kept.secret, kept.labels, kept.owner) == (
        "https://cli.example/hook",
        "whsec_old",
        ("terrorism",),
        None,
    )
    assert await upgraded.subscriptions.all(owner="acme") == []
    token = await upgraded.tokens.add("first-admin", Role.ADMIN, "0" * 64)
    assert [t.id for t in await upgraded.tokens.all()] == [token.id]

    fresh = await (await databases.new())()
    async with upgraded._engine.connect() as conn:
        upgraded_shape = await conn.run_sync(_shape)
    async with fresh._engine.connect() as conn:
        fresh_shape = await conn.run_sync(_shape)
    assert upgraded_shape == fresh_shape


async def test_subscriptions_carry_their_owner_and_are_listed_by_it(open_store: StoreOpener) -> None:
    """A subscription made through the API keeps its owner; all(owner=...) lists only that
    principal's (with enabled_only too); one made by the CLI has none."""
    store = await open_store()
    acme = await store.subscriptions.add("https://acme.example/a", "whsec_a", owner="acme")
    other = await store.subscriptions.add("https://other.example/h", "whsec_o", owner="other")
    cli = await store.subscriptions.add("https://cli.example/h", "whsec_c")
    acme_off = await store.subscriptions.add("https://acme.example/b", "whsec_b", owner="acme")
    await store.subscriptions.set_enabled(acme_off.id, False, reason="paused")
    assert (acme.owner, other.owner, cli.owner) == ("acme", "other", None)
    got = await store.subscriptions.get(acme.id)
    assert got is not None and got.owner == "acme"
    assert [s.id for s in await store.subscriptions.all(owner="acme")] == [acme.id, acme_off.id]
    assert [s.id for s in await store.subscriptions.all(True, owner="acme")] == [acme.id]
    assert [s.id for s in await store.subscriptions.all()] == [acme.id, other.id, cli.id, acme_off.id]
    assert await store.subscriptions.all(owner="nobody") == []
