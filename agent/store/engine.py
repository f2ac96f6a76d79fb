"""The connection: one SQLAlchemy async engine over SQLite or PostgreSQL, the
transaction helpers every repository uses, and dialect-portable statements.

Every repository call is one short transaction; nothing is held open between
calls, so a long retroactive pass never pins a snapshot or blocks SQLite's WAL
checkpoints."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any, Literal, TypeVar, cast

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg
from sqlalchemy.dialects import sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.sql.base import ReadOnlyColumnCollection

DialectName = Literal["sqlite", "postgresql"]
Excluded = ReadOnlyColumnCollection[str, sa.ColumnElement[Any]]
T = TypeVar("T")

# Execution option that makes the SQLite "begin" hook emit BEGIN IMMEDIATE.
_WRITE_OPTION = "dweb_agent_write"
# SQLite waits this long for another connection's write lock before failing.
_SQLITE_BUSY_TIMEOUT_MS = 30_000
# Keys per IN (...) list: below SQLite's old 999-variable limit; PostgreSQL
# (asyncpg) allows 32767 parameters per statement.
_IN_CHUNK: dict[DialectName, int] = {"sqlite": 900, "postgresql": 10_000}
# The alert queries' IN lists stay small on both dialects (they page findings).
SMALL_CHUNK = 900


def chunks(values: Sequence[T], size: int = SMALL_CHUNK) -> list[list[T]]:
    return [list(values[i : i + size]) for i in range(0, len(values), size)]


def later(new: sa.ColumnElement[Any], old: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
    """The later of two timestamps, so a late or replayed write never moves
    last_seen_at backwards (portable; GREATEST does not exist on SQLite)."""
    return sa.case((new > old, new), else_=old)


class Engine:
    """The database connection the repositories share."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.sa = engine
        # Same pool; transactions begun through this view are writes (on
        # SQLite: BEGIN IMMEDIATE, see _install_sqlite_hooks).
        self._write_engine = engine.execution_options(**{_WRITE_OPTION: True})
        self.dialect = cast(DialectName, engine.dialect.name)
        self._write_lock = asyncio.Lock() if self.dialect == "sqlite" else None

    @property
    def in_chunk(self) -> int:
        """Keys per IN (...) list on this dialect."""
        return _IN_CHUNK[self.dialect]

    def read(self) -> AbstractAsyncContextManager[AsyncConnection]:
        return self.sa.connect()

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        if self._write_lock is None:
            async with self._write_engine.begin() as conn:
                yield conn
            return
        # SQLite has one writer per file. Writers of this process queue here,
        # in order, instead of polling the file lock in SQLite's busy handler
        # (which sleeps up to 100 ms per retry); other processes still wait
        # through busy_timeout.
        async with self._write_lock, self._write_engine.begin() as conn:
            yield conn

    def begin_migration(self) -> AbstractAsyncContextManager[AsyncConnection]:
        """A write transaction outside the process lock (nothing else runs yet)."""
        return self._write_engine.begin()

    def upsert(
        self,
        table: sa.Table,
        values: Mapping[str, Any] | Sequence[Mapping[str, Any]],
        conflict: Sequence[sa.ColumnElement[Any]],
        update: Callable[[Excluded], Mapping[str, Any]] | None = None,
    ) -> sa.Insert:
        """INSERT ... ON CONFLICT (conflict) DO NOTHING, or DO UPDATE SET
        update(excluded). Both dialects spell it the same way in SQL but
        SQLAlchemy has one construct per dialect."""
        stmt: pg.Insert | sqlite.Insert = (
            pg.insert(table).values(values) if self.dialect == "postgresql" else sqlite.insert(table).values(values)
        )
        if update is None:
            return stmt.on_conflict_do_nothing(index_elements=conflict)
        return stmt.on_conflict_do_update(index_elements=conflict, set_=update(stmt.excluded))

    def insert_ignore(self, table: sa.Table, values: Mapping[str, Any]) -> sa.Insert:
        """INSERT ... ON CONFLICT DO NOTHING, whichever unique constraint it hits."""
        stmt = pg.insert(table) if self.dialect == "postgresql" else sqlite.insert(table)
        return stmt.values(values).on_conflict_do_nothing()

    async def dispose(self) -> None:
        await self.sa.dispose()


def create_engine(url: str, *, schema: str | None) -> Engine:
    """`url`: `sqlite+aiosqlite:///path` (the parent directory is created) or
    `postgresql+asyncpg://...`; `sqlite:///` and `postgresql://` are mapped to
    those drivers. `schema` (PostgreSQL only) is put on the search_path."""
    sa_url = sa.make_url(url)
    backend = sa_url.get_backend_name()
    if backend == "sqlite":
        if schema is not None:
            raise ValueError("schema= is for PostgreSQL; SQLite has one schema per file")
        database = sa_url.database or ""
        if database in ("", ":memory:") or sa_url.query.get("mode") == "memory":
            # One connection shared by concurrent tasks would mix their
            # transactions (a rollback in one discards another's writes).
            raise ValueError("the store needs a SQLite file path, not an in-memory database")
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(sa_url.set(drivername="sqlite+aiosqlite"))
        _install_sqlite_hooks(engine)
        return Engine(engine)
    if backend == "postgresql":
        connect_args: dict[str, Any] = {}
        if schema is not None:
            connect_args["server_settings"] = {"search_path": schema}
        return Engine(
            create_async_engine(
                sa_url.set(drivername="postgresql+asyncpg"),
                connect_args=connect_args,
                # A daemon outlives server restarts and idle-connection reapers.
                pool_pre_ping=True,
            )
        )
    raise ValueError(
        f"unsupported database URL {sa_url.render_as_string(hide_password=True)!r}: use sqlite or postgresql"
    )


def _enable_wal(cursor: Any) -> None:
    """Switch the file to WAL unless it already is (WAL is stored in the file, so
    only the first connection ever switches). While several connections create a
    new file at once, SQLite may answer the switch with "database is locked" at
    once, without waiting in its busy handler: retry that a bounded number of
    times. The short sleeps block only this connection's first use."""
    cursor.execute("PRAGMA journal_mode")
    row = cursor.fetchone()
    if row is not None and str(row[0]).lower() == "wal":
        return
    for attempt in range(40):
        try:
            cursor.execute("PRAGMA journal_mode = WAL")
            return
        except Exception as exc:  # the dialect's OperationalError; only "locked" is retried
            if "locked" not in str(exc) or attempt == 39:
                raise
            time.sleep(0.025 * (1 + attempt % 4))


def _install_sqlite_hooks(engine: AsyncEngine) -> None:
    @sa.event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take BEGIN away from the sqlite3 module (it skips BEGIN before DDL
        # and SELECT, which breaks transactional migrations and consistent
        # reads) and emit it ourselves in _on_begin.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            # Set first, so the journal_mode switch below waits for a lock too.
            cursor.execute(f"PRAGMA busy_timeout = {_SQLITE_BUSY_TIMEOUT_MS}")
            # WAL: readers never block the writer and vice versa.
            _enable_wal(cursor)
            # SQLite ignores REFERENCES ... ON DELETE unless asked, per connection.
            cursor.execute("PRAGMA foreign_keys = ON")
            # FULL (not NORMAL) so a committed finding survives power loss too.
            cursor.execute("PRAGMA synchronous = FULL")
        finally:
            cursor.close()

    @sa.event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        # Writes take the write lock up front (IMMEDIATE): a deferred
        # transaction that reads and then writes can fail with SQLITE_BUSY
        # without waiting when another connection wrote in between.
        if conn.get_execution_options().get(_WRITE_OPTION):
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            conn.exec_driver_sql("BEGIN")
