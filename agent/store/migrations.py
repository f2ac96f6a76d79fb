"""Numbered schema migrations, applied in order when a Store opens.

How to add one (e.g. 2 for the alert tables):
  1. define the new tables in `agent.store.schema`;
  2. write `def _v2(conn: sa.Connection) -> None` that creates them with
     `_create(conn, new_table, ...)` or runs `op`-style DDL for changes;
  3. append `Migration(2, "alerts", _v2)` to MIGRATIONS.
Never edit a migration that has shipped. If a later migration alters a table
that migration 1 creates, first copy that table's version-1 definition into
this module (frozen) and make `_v1` create the copy, so that a fresh database
and an upgraded one end up identical; the schema test compares the migrated
database with `schema.metadata` and fails on any drift.

All pending migrations run in ONE transaction together with the bookkeeping
row for each, so a crash leaves the database at the old version, never half
way (both SQLite and PostgreSQL have transactional DDL). On PostgreSQL the
transaction first takes an advisory lock, so two agents starting at once run
the migrations one after the other; the second then finds nothing to do. On
SQLite the Store begins write transactions with BEGIN IMMEDIATE, which
serializes openers the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from agent.store.errors import SchemaTooNew
from agent.store.schema import (
    content_status,
    deliveries,
    delivery_attempts,
    events,
    findings,
    item_locations,
    items,
    job_slots,
    list_state,
    list_versions,
    metadata,
    retractions,
    reviews,
    scans,
    schema_migrations,
    subscriptions,
    suppressions,
    targets,
)
from agent.store.types import utcnow

# Key for pg_advisory_xact_lock: ASCII "dwebmigr" as a signed 64-bit int. The
# lock is per database, so agents using different schemas of one database
# also wait for each other; migrations are short, that is harmless.
ADVISORY_LOCK_KEY = int.from_bytes(b"dwebmigr", "big", signed=True)


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    description: str
    apply: Callable[[sa.Connection], None]


def _create(conn: sa.Connection, *tables: sa.Table) -> None:
    # checkfirst=False: a table that exists although its migration was never
    # recorded means someone changed the database by hand; fail loudly rather
    # than adopt a table of unknown shape.
    metadata.create_all(conn, tables=list(tables), checkfirst=False)


def _v1(conn: sa.Connection) -> None:
    _create(conn, targets, scans, items, item_locations, findings, list_versions, list_state, job_slots)


def _v2(conn: sa.Connection) -> None:
    _create(conn, subscriptions, events, deliveries, delivery_attempts, reviews, retractions, suppressions,
            content_status)


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "targets, scans, items, locations, findings, lists, job slots", _v1),
    Migration(2, "alerts: subscriptions, events, deliveries, reviews, retractions, content status", _v2),
)
LATEST_VERSION = MIGRATIONS[-1].version


def _check_order(migrations: tuple[Migration, ...]) -> None:
    versions = [m.version for m in migrations]
    if versions != list(range(1, len(versions) + 1)):
        raise RuntimeError(f"migration versions must be 1..n without gaps, got {versions}")


_check_order(MIGRATIONS)


def _applied_versions(conn: sa.Connection) -> set[int]:
    return set(conn.execute(sa.select(schema_migrations.c.version)).scalars())


def _apply_pending(conn: sa.Connection) -> list[int]:
    schema_migrations.create(conn, checkfirst=True)
    applied = _applied_versions(conn)
    if applied and max(applied) > LATEST_VERSION:
        raise SchemaTooNew(
            f"the database is at schema version {max(applied)}, this agent knows up to "
            f"{LATEST_VERSION}: upgrade the agent instead of running an older one against it"
        )
    done: list[int] = []
    for migration in MIGRATIONS:
        if migration.version in applied:
            continue
        migration.apply(conn)
        conn.execute(
            sa.insert(schema_migrations).values(version=migration.version, applied_at=utcnow())
        )
        done.append(migration.version)
    return done


async def migrate(conn: AsyncConnection) -> list[int]:
    """Apply pending migrations on `conn`, which must be inside a write
    transaction the caller commits. Returns the versions applied now."""
    if conn.dialect.name == "postgresql":
        await conn.execute(sa.select(sa.func.pg_advisory_xact_lock(ADVISORY_LOCK_KEY)))
    return await conn.run_sync(_apply_pending)


async def current_version(conn: AsyncConnection) -> int:
    version = await conn.scalar(sa.select(sa.func.max(schema_migrations.c.version)))
    return int(version or 0)
