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

from agent.lists.denylist.ids import DENY_SIGNAL_TYPES, migrated_entry_id
from agent.model.time import utcnow
from agent.store.errors import SchemaTooNew
from agent.store.schema import (
    api_tokens,
    audit_log,
    console_preferences,
    console_sessions,
    content_status,
    deliveries,
    delivery_attempts,
    events,
    findings,
    gateway_marks,
    item_locations,
    items,
    job_slots,
    list_state,
    list_versions,
    metadata,
    retractions,
    reviews,
    scan_jobs,
    scans,
    schema_migrations,
    suppressions,
    targets,
)
from agent.store.types import BigId, UTCDateTime, json_type

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


# `subscriptions` as migration 2 created it (frozen: migration 4 adds `owner`).
_SUBSCRIPTIONS_V2 = sa.Table(
    "subscriptions",
    sa.MetaData(naming_convention=metadata.naming_convention),
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("url", sa.Text, nullable=False),
    sa.Column("secret", sa.Text, nullable=False),
    sa.Column("previous_secret", sa.Text, nullable=True),
    sa.Column("previous_secret_until", UTCDateTime, nullable=True),
    sa.Column("lists", json_type(), nullable=False, server_default=sa.text("'[]'")),
    sa.Column("labels", json_type(), nullable=False, server_default=sa.text("'[]'")),
    sa.Column("targets", json_type(), nullable=False, server_default=sa.text("'[]'")),
    sa.Column("event_types", json_type(), nullable=False, server_default=sa.text("'[]'")),
    sa.Column("enabled", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("disabled_reason", sa.Text, nullable=True),
    sa.Column("failing_since", UTCDateTime, nullable=True),
    sa.Column("max_in_flight", sa.Integer, nullable=False, server_default=sa.text("4")),
    sa.Column("description", sa.Text, nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
)


def _v2(conn: sa.Connection) -> None:
    # The frozen copy first: the deliveries' foreign key names it.
    _SUBSCRIPTIONS_V2.create(conn, checkfirst=False)
    _create(conn, events, deliveries, delivery_attempts, reviews, retractions, suppressions, content_status)


def _v3(conn: sa.Connection) -> None:
    # Denylist findings were identified by `<the operator's file path>:<line>`, which
    # leaked the path to platforms and changed with how the path was typed. They
    # are now `<list>:<rule hash>`. Stored findings and their suppressions move to
    # the new ids, or every finding suppressed as a false positive would be alerted
    # again under its new id. Data only: no table changes shape.
    rows = conn.execute(
        sa.select(
            findings.c.id,
            findings.c.item_key,
            findings.c.list_name,
            findings.c.entry_id,
            findings.c.entry_value,
            findings.c.signal_type,
        )
        .where(findings.c.signal_type.in_(sorted(DENY_SIGNAL_TYPES)))
        .order_by(findings.c.id)
    ).all()
    taken = {(r.item_key, r.list_name, r.entry_id, r.signal_type) for r in rows}
    for r in rows:
        new_id = migrated_entry_id(r.list_name, r.entry_id, r.entry_value, r.signal_type)
        if new_id is None:
            continue
        suppressed = conn.execute(
            sa.select(suppressions.c.created_at).where(
                suppressions.c.item_key == r.item_key,
                suppressions.c.list_name == r.list_name,
                suppressions.c.entry_id == r.entry_id,
            )
        ).first()
        if (
            suppressed is not None
            and conn.execute(
                sa.select(suppressions.c.item_key).where(
                    suppressions.c.item_key == r.item_key,
                    suppressions.c.list_name == r.list_name,
                    suppressions.c.entry_id == new_id,
                )
            ).first()
            is None
        ):
            conn.execute(
                sa.insert(suppressions).values(
                    item_key=r.item_key, list_name=r.list_name, entry_id=new_id, created_at=suppressed.created_at
                )
            )
        if (r.item_key, r.list_name, new_id, r.signal_type) in taken:
            # The same rule reached through two spellings of the list's path: the first
            # finding takes the new id, the other keeps its old one (history is kept).
            continue
        conn.execute(sa.update(findings).where(findings.c.id == r.id).values(entry_id=new_id))
        taken.add((r.item_key, r.list_name, new_id, r.signal_type))


def _v4(conn: sa.Connection) -> None:
    _create(conn, api_tokens, audit_log, scan_jobs)
    # Nullable, no default: every existing subscription was made with the CLI.
    conn.execute(sa.text("ALTER TABLE subscriptions ADD COLUMN owner TEXT"))


def _v5(conn: sa.Connection) -> None:
    _create(conn, console_sessions, console_preferences)


def _v6(conn: sa.Connection) -> None:
    _create(conn, gateway_marks)


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "targets, scans, items, locations, findings, lists, job slots", _v1),
    Migration(2, "alerts: subscriptions, events, deliveries, reviews, retractions, content status", _v2),
    Migration(3, "denylist entry ids: <list>:<rule hash> instead of the list file's path and line", _v3),
    Migration(4, "api: tokens, audit log, queued scans, subscription owners", _v4),
    Migration(5, "console: sessions, reviewers' preferences", _v5),
    Migration(6, "gateways: liars distrusted by every node", _v6),
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
        conn.execute(sa.insert(schema_migrations).values(version=migration.version, applied_at=utcnow()))
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
