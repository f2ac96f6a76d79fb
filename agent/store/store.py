"""The agent's database: SQLAlchemy 2 async Core over SQLite or PostgreSQL."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, cast

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.sql.base import ReadOnlyColumnCollection

from agent.model.time import utcnow
from agent.store import migrations
from agent.store.alert_queries import AlertQueries, Outbox
from agent.store.errors import DuplicateTarget
from agent.model.records import (
    FindingRow,
    ItemRow,
    JSONObject,
    ListStateRow,
    ListVersionRow,
    LocationRow,
    ScanRow,
    TargetRow,
)
from agent.model.finding import matched_on
from agent.model.signals import ItemSignals, VideoFrameHash
from agent.model.status import ItemState, ScanStatus
from agent.store.schema import (
    FINDING_CONFLICT_TARGET,
    LOCATION_CONFLICT_TARGET,
    findings,
    item_locations,
    items,
    job_slots,
    list_state,
    list_versions,
    scans,
    targets,
)

# Items-table status of a directory remembered as examined (see Store.record_directory);
# the scan's KnownItem carries the same word.
DIRECTORY_STATUS = ItemState.DIRECTORY

DialectName = Literal["sqlite", "postgresql"]
FINISHED_STATUSES = frozenset({ScanStatus.OK, ScanStatus.FAILED, ScanStatus.INTERRUPTED})
INTERRUPTED_ERROR = "the agent stopped before the scan finished"

# Execution option that makes the SQLite "begin" hook emit BEGIN IMMEDIATE.
_WRITE_OPTION = "dweb_agent_write"
# SQLite waits this long for another connection's write lock before failing.
_SQLITE_BUSY_TIMEOUT_MS = 30_000
# Keys per IN (...) query: below SQLite's old 999-variable limit; PostgreSQL
# (asyncpg) allows 32767 parameters per statement.
_IN_CHUNK = {"sqlite": 900, "postgresql": 10_000}

_Excluded = ReadOnlyColumnCollection[str, sa.ColumnElement[Any]]


def _later(new: sa.ColumnElement[Any], old: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
    """The later of two timestamps, so a late or replayed write never moves
    last_seen_at backwards (portable; GREATEST does not exist on SQLite)."""
    return sa.case((new > old, new), else_=old)


class Store(AlertQueries):
    """Targets, scans, items, findings, list sync state and job slots.

    Every method is one short transaction; nothing is held open between calls,
    so a long retroactive pass never pins a snapshot or blocks SQLite's WAL
    checkpoints.

    Multi-node work: periodic jobs are claimed once per slot with
    `claim_slot` (a unique row). Leasing scans or outbox deliveries to one of
    several nodes is not implemented yet; it belongs here as
    `SELECT ... FOR UPDATE SKIP LOCKED LIMIT n` inside a write transaction on
    PostgreSQL (SQLite has one writer anyway, so the plain SELECT under
    BEGIN IMMEDIATE is already exclusive there), followed by an UPDATE that
    stamps the lease owner and expiry in the same transaction.
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        # Same pool; transactions begun through this view are writes (on
        # SQLite: BEGIN IMMEDIATE, see _install_sqlite_hooks).
        self._write_engine = engine.execution_options(**{_WRITE_OPTION: True})
        self._dialect = cast(DialectName, engine.dialect.name)
        self._write_lock = asyncio.Lock() if self._dialect == "sqlite" else None

    # ------------------------------------------------------------------ open

    @classmethod
    async def open(cls, url: str, *, schema: str | None = None) -> Store:
        """Connect and bring the schema up to date.

        `url`: `sqlite+aiosqlite:///path` (the parent directory is created) or
        `postgresql+asyncpg://...`; `sqlite:///` and `postgresql://` are
        accepted and mapped to those drivers. `schema` (PostgreSQL only) puts
        every table in that existing schema via the connection's search_path.
        """
        engine = _create_engine(url, schema=schema)
        store = cls(engine)
        try:
            async with store._write_engine.begin() as conn:
                await migrations.migrate(conn)
        except BaseException:
            await engine.dispose()
            raise
        return store

    async def close(self) -> None:
        await self._engine.dispose()

    async def __aenter__(self) -> Store:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    @property
    def dialect(self) -> DialectName:
        return self._dialect

    async def schema_version(self) -> int:
        async with self._read() as conn:
            return await migrations.current_version(conn)

    def _read(self) -> AbstractAsyncContextManager[AsyncConnection]:
        return self._engine.connect()

    @asynccontextmanager
    async def _write(self) -> AsyncIterator[AsyncConnection]:
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

    def _insert(
        self,
        table: sa.Table,
        values: Mapping[str, Any] | Sequence[Mapping[str, Any]],
        conflict: Sequence[sa.ColumnElement[Any]],
        update: Callable[[_Excluded], Mapping[str, Any]] | None = None,
    ) -> sa.Insert:
        """INSERT ... ON CONFLICT (conflict) DO NOTHING, or DO UPDATE SET
        update(excluded). Both dialects spell it the same way in SQL but
        SQLAlchemy has one construct per dialect."""
        stmt: pg.Insert | sqlite.Insert
        if self._dialect == "postgresql":
            stmt = pg.insert(table).values(values)
        else:
            stmt = sqlite.insert(table).values(values)
        if update is None:
            return stmt.on_conflict_do_nothing(index_elements=conflict)
        return stmt.on_conflict_do_update(index_elements=conflict, set_=update(stmt.excluded))

    # --------------------------------------------------------------- targets

    async def add_target(
        self,
        url: str,
        kind: str,
        interval_s: int,
        options: JSONObject | None = None,
    ) -> TargetRow:
        """Register a target. Raises DuplicateTarget if `url` is registered."""
        values = {
            "url": url,
            "kind": kind,
            "interval_s": interval_s,
            "options": dict(options or {}),
            "enabled": True,
            "created_at": utcnow(),
            "consecutive_failures": 0,
            "state": {},
        }
        # ON CONFLICT DO NOTHING instead of catching IntegrityError: no
        # aborted transaction on PostgreSQL, and no guessing which constraint
        # a driver error was about.
        stmt = self._insert(targets, values, (targets.c.url,)).returning(*targets.c)
        async with self._write() as conn:
            row = (await conn.execute(stmt)).mappings().first()
        if row is None:
            raise DuplicateTarget(url)
        return _target(row)

    async def get_target(self, id_or_url: int | str) -> TargetRow | None:
        async with self._read() as conn:
            row = (await conn.execute(sa.select(targets).where(_target_is(id_or_url)))).mappings().first()
        return None if row is None else _target(row)

    async def list_targets(self, enabled_only: bool = False) -> list[TargetRow]:
        query = sa.select(targets).order_by(targets.c.id)
        if enabled_only:
            query = query.where(targets.c.enabled.is_(True))
        async with self._read() as conn:
            return [_target(r) for r in (await conn.execute(query)).mappings()]

    async def set_target_enabled(self, id_or_url: int | str, enabled: bool) -> bool:
        """Pause or resume a target; False if there is no such target."""
        stmt = sa.update(targets).where(_target_is(id_or_url)).values(enabled=enabled)
        async with self._write() as conn:
            return (await conn.execute(stmt)).rowcount > 0

    async def remove_target(self, id_or_url: int | str) -> bool:
        """Delete a target and where-seen rows under it; its scans stay (with
        target_id cleared) and items and findings stay. False if absent."""
        async with self._write() as conn:
            return (await conn.execute(sa.delete(targets).where(_target_is(id_or_url)))).rowcount > 0

    async def record_poll(
        self,
        target_id: int,
        *,
        ok: bool,
        error: str | None,
        next_run_at: datetime | None,
        state: JSONObject | None = None,
    ) -> TargetRow | None:
        """Record one poll's outcome in a single UPDATE: last_poll_at, and on
        success last_success_at and a reset failure count, else the count plus
        one; last_error is set to `error` (None clears it); `state` replaces the
        stored cursors when given. Returns the updated target, or None if it
        was removed meanwhile (a poll racing a removal is not an error)."""
        now = utcnow()
        values: dict[str, Any] = {
            "last_poll_at": now,
            "last_error": error,
            "next_run_at": next_run_at,
        }
        if ok:
            values["last_success_at"] = now
            values["consecutive_failures"] = 0
        else:
            # Incremented in SQL, not read-modify-write: two nodes recording
            # failures at once both count.
            values["consecutive_failures"] = targets.c.consecutive_failures + 1
        if state is not None:
            values["state"] = dict(state)
        stmt = sa.update(targets).where(targets.c.id == target_id).values(values).returning(*targets.c)
        async with self._write() as conn:
            row = (await conn.execute(stmt)).mappings().first()
        return None if row is None else _target(row)

    async def claim_poll(self, target_id: int, node: str, *, min_gap_s: float) -> bool:
        """Claim a scheduled poll of an enabled target for this agent: True
        unless another agent (or this one) polled it less than `min_gap_s`
        seconds ago, so agents sharing a database poll each target once per
        interval. One conditional UPDATE that stamps last_poll_at: on
        PostgreSQL concurrent claimers queue on the row lock and re-check the
        condition after the winner commits, so exactly one wins; SQLite has a
        single writer. `node` is not stored here (no column for it yet);
        start_scan records which node ran the poll. A claimer that dies
        mid-poll holds the target for `min_gap_s` at most."""
        now = utcnow()
        stmt = (
            sa.update(targets)
            .where(
                targets.c.id == target_id,
                targets.c.enabled.is_(True),
                sa.or_(
                    targets.c.last_poll_at.is_(None),
                    targets.c.last_poll_at <= now - timedelta(seconds=min_gap_s),
                ),
            )
            .values(last_poll_at=now)
        )
        async with self._write() as conn:
            return (await conn.execute(stmt)).rowcount == 1

    # ----------------------------------------------------------------- scans

    async def start_scan(self, target_id: int | None, target_url: str, node: str | None = None) -> int:
        stmt = (
            sa.insert(scans)
            .values(
                target_id=target_id,
                target_url=target_url,
                started_at=utcnow(),
                status=ScanStatus.RUNNING.value,
                summary={},
                node=node,
            )
            .returning(scans.c.id)
        )
        async with self._write() as conn:
            return int((await conn.execute(stmt)).scalar_one())

    async def finish_scan(
        self,
        scan_id: int,
        status: str,
        *,
        root_cid: str | None = None,
        summary: JSONObject | None = None,
        error: str | None = None,
    ) -> bool:
        """Close a scan with 'ok', 'failed' or 'interrupted'. False if there
        is no such scan.

        An interrupted scan (its poll cancelled by a graceful stop) releases the
        poll claim it held in the same transaction, as interrupt_running_scans
        does after a crash: the poll did not happen, so the next agent to start
        polls the target at once instead of waiting out the claim."""
        if status not in FINISHED_STATUSES:
            raise ValueError(f"a finished scan's status is one of {sorted(FINISHED_STATUSES)}, not {status!r}")
        values: dict[str, Any] = {"status": ScanStatus(status).value, "finished_at": utcnow(), "error": error}
        if root_cid is not None:
            values["root_cid"] = root_cid
        if summary is not None:
            values["summary"] = dict(summary)
        async with self._write() as conn:
            result = await conn.execute(
                sa.update(scans).where(scans.c.id == scan_id).values(values).returning(scans.c.target_id)
            )
            row = result.first()
            if row is not None and status == "interrupted" and row.target_id is not None:
                await conn.execute(
                    sa.update(targets)
                    .where(targets.c.id == row.target_id)
                    .values(last_poll_at=targets.c.last_success_at)
                )
            return row is not None

    async def interrupt_running_scans(self, node: str | None = None) -> int:
        """At startup: mark scans left 'running' by a previous process as
        'interrupted'. With `node`, only that node's scans (other nodes' scans
        may really be running); without, every running scan (single node).
        Returns how many were marked.

        The poll claims those scans held (targets.last_poll_at, see claim_poll)
        are released in the same transaction, so a restarted agent polls the
        interrupted targets at once instead of waiting out the claim."""
        stmt = (
            sa.update(scans)
            .where(scans.c.status == ScanStatus.RUNNING.value)
            .values(
                status=ScanStatus.INTERRUPTED.value,
                finished_at=utcnow(),
                error=sa.func.coalesce(scans.c.error, INTERRUPTED_ERROR),
            )
            .returning(scans.c.id, scans.c.target_id)
        )
        if node is not None:
            stmt = stmt.where(scans.c.node == node)
        async with self._write() as conn:
            rows = (await conn.execute(stmt)).all()
            target_ids = sorted({row.target_id for row in rows if row.target_id is not None})
            if target_ids:
                await conn.execute(
                    sa.update(targets)
                    .where(targets.c.id.in_(target_ids))
                    .values(last_poll_at=targets.c.last_success_at)
                )
            return len(rows)

    async def get_scan(self, scan_id: int) -> ScanRow | None:
        async with self._read() as conn:
            row = (await conn.execute(sa.select(scans).where(scans.c.id == scan_id))).mappings().first()
        return None if row is None else _scan(row)

    async def recent_scans(self, limit: int = 20) -> list[ScanRow]:
        """Newest first."""
        query = sa.select(scans).order_by(scans.c.started_at.desc(), scans.c.id.desc()).limit(limit)
        async with self._read() as conn:
            return [_scan(r) for r in (await conn.execute(query)).mappings()]

    # ----------------------------------------------------------------- items

    async def seen_keys(self, keys: Iterable[str]) -> set[str]:
        """The subset of `keys` already stored as items."""
        wanted = list(dict.fromkeys(keys))
        seen: set[str] = set()
        if not wanted:
            return seen
        chunk = _IN_CHUNK[self._dialect]
        async with self._read() as conn:
            for start in range(0, len(wanted), chunk):
                part = wanted[start : start + chunk]
                result = await conn.execute(sa.select(items.c.key).where(items.c.key.in_(part)))
                seen.update(result.scalars())
        return seen

    async def get_items(self, keys: Iterable[str]) -> dict[str, ItemRow]:
        wanted = list(dict.fromkeys(keys))
        found: dict[str, ItemRow] = {}
        chunk = _IN_CHUNK[self._dialect]
        async with self._read() as conn:
            for start in range(0, len(wanted), chunk):
                part = wanted[start : start + chunk]
                result = await conn.execute(sa.select(items).where(items.c.key.in_(part)))
                for row in result.mappings():
                    found[row["key"]] = _item(row)
        return found

    async def record_item(
        self,
        item: ItemRow,
        location: LocationRow | None,
        findings_: Sequence[FindingRow] = (),
        outbox: Outbox | None = None,
    ) -> list[FindingRow]:
        """Store what a scan learned about one item, in ONE transaction: the
        item (re-recording updates status, last_seen_at, and signals, size,
        media type, CID and video frames when the new values are present, so a
        later failed fetch never erases hashes), where it was seen, and its
        findings. A finding already stored is skipped. Returns the findings that
        are new, as stored (with id and created_at): exactly those need alerts.
        """
        if location is not None and location.item_key != item.key:
            raise ValueError(f"location is for {location.item_key!r}, item is {item.key!r}")
        for finding in findings_:
            if finding.item_key != item.key:
                raise ValueError(f"finding is for {finding.item_key!r}, item is {item.key!r}")
        async with self._write() as conn:
            await conn.execute(self._upsert_item(item))
            if location is not None:
                await conn.execute(self._upsert_location(location))
            new = await self._insert_findings(conn, findings_, retroactive=None)
            await self._queue_alerts(conn, new, location, outbox)
            return new

    async def _queue_alerts(
        self, conn: AsyncConnection, new: list[FindingRow], location: LocationRow | None, outbox: Outbox | None
    ) -> None:
        """The outbox: events for new findings are written in the findings' own transaction."""
        if outbox is None or not new:
            return
        await self._write_events(conn, outbox(new, location, await self._enabled_subscriptions(conn)))

    async def record_directory(self, key: str, cid: str | None) -> None:
        """Remember a directory (or HAMT shard) whose every entry was examined, by its
        multihash, so a later root that still contains it skips it unfetched. Kept in
        the items table with status 'directory' (no signals, no findings); a content
        item already stored under the same multihash is left as it is."""
        now = utcnow()
        values: dict[str, Any] = {
            "key": key,
            "cid": cid,
            "size": None,
            "media_type": "inode/directory",
            "status": DIRECTORY_STATUS.value,
            "signals": {},
            "video_frames": None,
            "first_seen_at": now,
            "last_seen_at": now,
        }
        async with self._write() as conn:
            await conn.execute(self._insert(items, values, (items.c.key,)))

    def _upsert_item(self, item: ItemRow) -> sa.Insert:
        # The columns keep the report's `signals` object and the frames as
        # [frame, quality, pdq_hex, timestamp] lists, as older agents wrote them.
        signals_view = item.signals.to_view()
        frames = [[f.frame, f.quality, f.pdq_hex, f.timestamp] for f in item.signals.frames] or None
        values = {
            "key": item.key,
            "cid": item.cid,
            "size": item.size,
            "media_type": item.media_type,
            "status": ItemState(item.status).value,
            "signals": signals_view,
            "video_frames": frames,
            "first_seen_at": item.first_seen_at,
            "last_seen_at": item.last_seen_at,
        }

        def update(excluded: _Excluded) -> dict[str, Any]:
            changes: dict[str, Any] = {
                "status": excluded.status,
                "last_seen_at": _later(excluded.last_seen_at, items.c.last_seen_at),
                "cid": sa.func.coalesce(excluded.cid, items.c.cid),
                "size": sa.func.coalesce(excluded.size, items.c.size),
                "media_type": sa.func.coalesce(excluded.media_type, items.c.media_type),
            }
            # Decided here rather than in SQL: JSON has no portable "is empty"
            # test, and the caller's values are known now.
            if signals_view:
                changes["signals"] = excluded.signals
            if frames is not None:
                changes["video_frames"] = excluded.video_frames
            return changes

        return self._insert(items, values, (items.c.key,), update)

    def _upsert_location(self, location: LocationRow) -> sa.Insert:
        values = {
            "item_key": location.item_key,
            "target_id": location.target_id,
            "root_cid": location.root_cid,
            "path": location.path,
            "gateway": location.gateway,
            "first_seen_at": location.first_seen_at,
            "last_seen_at": location.last_seen_at,
        }

        def update(excluded: _Excluded) -> dict[str, Any]:
            return {
                "last_seen_at": _later(excluded.last_seen_at, item_locations.c.last_seen_at),
                "gateway": sa.func.coalesce(excluded.gateway, item_locations.c.gateway),
            }

        return self._insert(item_locations, values, LOCATION_CONFLICT_TARGET, update)

    async def _insert_findings(
        self,
        conn: AsyncConnection,
        rows: Sequence[FindingRow],
        *,
        retroactive: bool | None,
    ) -> list[FindingRow]:
        # Duplicates inside one call would make the second one "not new" in
        # an order-dependent way; keep the first of each identity.
        unique: dict[tuple[str, str, str, str], FindingRow] = {}
        for row in rows:
            unique.setdefault(row.identity, row)
        # A finding reviewed as a false positive is never recorded (nor alerted) again
        # for the same item and list entry, whichever signal matches next time.
        suppressed = await self._suppressed(conn, list(unique.values()))
        unique = {k: v for k, v in unique.items() if (v.item_key, v.list_name, v.entry_id) not in suppressed}
        if not unique:
            return []
        now = utcnow()
        values = [
            {
                "item_key": f.item_key,
                "list_name": f.list_name,
                "entry_id": f.entry_id,
                "entry_value": f.entry_value,
                "signal_type": f.signal_type.value,
                "distance": float(f.distance),
                "labels": list(f.labels),
                "query": f.query,
                "detail": f.detail_view(),
                # The store stamps the time: findings are ordered and paged by
                # when they were recorded, not by when a caller built them.
                "created_at": now,
                "retroactive": f.retroactive if retroactive is None else retroactive,
            }
            for f in unique.values()
        ]
        # RETURNING with ON CONFLICT DO NOTHING yields only the inserted rows
        # on both dialects: that is the "new findings" answer, race-free even
        # when two nodes record the same finding at once.
        stmt = self._insert(findings, values, FINDING_CONFLICT_TARGET).returning(*findings.c)
        inserted = {r.identity: r for r in (_finding(m) for m in (await conn.execute(stmt)).mappings())}
        return [inserted[key] for key in unique if key in inserted]

    async def iter_items_with_signals(self, batch: int = 1000) -> AsyncIterator[list[ItemRow]]:
        """Every item that has signals or video frames, in key order, `batch`
        at a time, each exactly once (keyset pagination, so items added while
        iterating do not shift pages; one short transaction per page)."""
        if batch < 1:
            raise ValueError("batch must be >= 1")
        has_signals = sa.or_(
            # Stored JSON text of an empty object is exactly '{}' on both
            # dialects (PostgreSQL json keeps the text as sent).
            sa.cast(items.c.signals, sa.Text) != "{}",
            items.c.video_frames.is_not(None),
        )
        after: str | None = None
        while True:
            query = sa.select(items).where(has_signals).order_by(items.c.key).limit(batch)
            if after is not None:
                query = query.where(items.c.key > after)
            async with self._read() as conn:
                page = [_item(r) for r in (await conn.execute(query)).mappings()]
            if not page:
                return
            yield page
            if len(page) < batch:
                return
            after = page[-1].key

    async def count_items(self) -> int:
        """Content items; directories remembered by `record_directory` are not items."""
        query = sa.select(sa.func.count()).select_from(items).where(items.c.status != DIRECTORY_STATUS)
        async with self._read() as conn:
            return int(await conn.scalar(query) or 0)

    async def locations_of(self, item_key: str) -> list[LocationRow]:
        query = (
            sa.select(item_locations)
            .where(item_locations.c.item_key == item_key)
            .order_by(item_locations.c.first_seen_at, item_locations.c.id)
        )
        async with self._read() as conn:
            return [_location(r) for r in (await conn.execute(query)).mappings()]

    # -------------------------------------------------------------- findings

    async def add_findings(
        self,
        item_key: str,
        findings_: Sequence[FindingRow],
        retroactive: bool = False,
        outbox: Outbox | None = None,
    ) -> list[FindingRow]:
        """Record findings for a stored item (e.g. a retroactive match after a
        list update); `retroactive` overrides the rows' flag. Returns the new
        ones only."""
        for finding in findings_:
            if finding.item_key != item_key:
                raise ValueError(f"finding is for {finding.item_key!r}, not {item_key!r}")
        async with self._write() as conn:
            new = await self._insert_findings(conn, findings_, retroactive=retroactive)
            if new and outbox is not None:
                places = (
                    (
                        await conn.execute(
                            sa.select(item_locations)
                            .where(item_locations.c.item_key == item_key)
                            .order_by(item_locations.c.first_seen_at)
                            .limit(1)
                        )
                    )
                    .mappings()
                    .all()
                )
                await self._queue_alerts(conn, new, _location(places[0]) if places else None, outbox)
            return new

    async def list_findings(
        self,
        limit: int = 100,
        since: datetime | None = None,
        list_name: str | None = None,
    ) -> list[FindingRow]:
        """Newest first. `since` is inclusive: a finding recorded in the same
        instant as the last one a caller saw is shown again, never skipped."""
        query = sa.select(findings).order_by(findings.c.created_at.desc(), findings.c.id.desc())
        if since is not None:
            query = query.where(findings.c.created_at >= since)
        if list_name is not None:
            query = query.where(findings.c.list_name == list_name)
        async with self._read() as conn:
            return [_finding(r) for r in (await conn.execute(query.limit(limit))).mappings()]

    async def get_finding(self, finding_id: int) -> FindingRow | None:
        async with self._read() as conn:
            row = (await conn.execute(sa.select(findings).where(findings.c.id == finding_id))).mappings().one_or_none()
        return _finding(row) if row is not None else None

    async def count_findings(self) -> int:
        async with self._read() as conn:
            return int(await conn.scalar(sa.select(sa.func.count()).select_from(findings)) or 0)

    # ----------------------------------------------------------------- lists

    async def record_list_version(
        self,
        name: str,
        source: str,
        content_hash: str,
        entries: int,
        deny_rules: int,
        problems: int,
    ) -> bool:
        """Note that list `name` now has this content. True when this content
        was never recorded for the list; a list that goes back to an earlier
        content gets that version's loaded_at refreshed (False), so
        latest_list_versions still names what is loaded now."""
        now = utcnow()
        values = {
            "name": name,
            "source": source,
            "content_hash": content_hash,
            "entries": entries,
            "deny_rules": deny_rules,
            "problems": problems,
            "loaded_at": now,
        }
        insert = self._insert(list_versions, values, (list_versions.c.name, list_versions.c.content_hash)).returning(
            list_versions.c.id
        )
        async with self._write() as conn:
            if (await conn.execute(insert)).first() is not None:
                return True
            await conn.execute(
                sa.update(list_versions)
                .where(list_versions.c.name == name, list_versions.c.content_hash == content_hash)
                .values(loaded_at=_later(sa.literal(now, list_versions.c.loaded_at.type), list_versions.c.loaded_at))
            )
            return False

    async def latest_list_versions(self) -> list[ListVersionRow]:
        """The most recently loaded version of each list, by name."""
        ranked = sa.select(
            list_versions,
            sa.func.row_number()
            .over(
                partition_by=list_versions.c.name,
                order_by=(list_versions.c.loaded_at.desc(), list_versions.c.id.desc()),
            )
            .label("rank"),
        ).subquery()
        query = (
            sa.select(*(ranked.c[c.name] for c in list_versions.c)).where(ranked.c.rank == 1).order_by(ranked.c.name)
        )
        async with self._read() as conn:
            return [_list_version(r) for r in (await conn.execute(query)).mappings()]

    async def get_list_state(self, name: str) -> ListStateRow | None:
        async with self._read() as conn:
            row = (await conn.execute(sa.select(list_state).where(list_state.c.name == name))).mappings().first()
        return None if row is None else _list_state(row)

    async def put_list_state(self, state: ListStateRow) -> None:
        """Insert or replace the sync state of list `state.name`."""
        values = {
            "name": state.name,
            "source": state.source,
            "etag": state.etag,
            "last_modified": state.last_modified,
            "checkpoint": state.checkpoint,
            "content_hash": state.content_hash,
            "updated_at": state.updated_at,
        }

        def update(excluded: _Excluded) -> dict[str, Any]:
            return {k: excluded[k] for k in values if k != "name"}

        async with self._write() as conn:
            await conn.execute(self._insert(list_state, values, (list_state.c.name,), update))

    # ----------------------------------------------------------------- slots

    async def claim_slot(self, job: str, slot: int, node: str) -> bool:
        """True for exactly one caller per (job, slot), across processes and
        nodes: the primary key decides, the losers' INSERT does nothing. On
        PostgreSQL a concurrent loser waits for the winner's commit, then sees
        the conflict; on SQLite writers are serialized by the file lock."""
        stmt = self._insert(
            job_slots,
            {"job": job, "slot": slot, "node": node, "claimed_at": utcnow()},
            (job_slots.c.job, job_slots.c.slot),
        )
        async with self._write() as conn:
            return (await conn.execute(stmt)).rowcount == 1

    async def prune_slots(self, older_than: datetime) -> int:
        """Forget claims made before `older_than`; returns how many."""
        stmt = sa.delete(job_slots).where(job_slots.c.claimed_at < older_than)
        async with self._write() as conn:
            return (await conn.execute(stmt)).rowcount


# --------------------------------------------------------------------- engine


def _create_engine(url: str, *, schema: str | None) -> AsyncEngine:
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
        return engine
    if backend == "postgresql":
        connect_args: dict[str, Any] = {}
        if schema is not None:
            connect_args["server_settings"] = {"search_path": schema}
        return create_async_engine(
            sa_url.set(drivername="postgresql+asyncpg"),
            connect_args=connect_args,
            # A daemon outlives server restarts and idle-connection reapers.
            pool_pre_ping=True,
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


# ------------------------------------------------------------------ row maps


def _target_is(id_or_url: int | str) -> sa.ColumnElement[bool]:
    if isinstance(id_or_url, int):
        return targets.c.id == id_or_url
    return targets.c.url == id_or_url


def _target(r: RowMapping) -> TargetRow:
    return TargetRow(
        id=r["id"],
        url=r["url"],
        kind=r["kind"],
        interval_s=r["interval_s"],
        options=dict(r["options"] or {}),
        enabled=bool(r["enabled"]),
        created_at=r["created_at"],
        last_poll_at=r["last_poll_at"],
        last_success_at=r["last_success_at"],
        last_error=r["last_error"],
        consecutive_failures=r["consecutive_failures"],
        next_run_at=r["next_run_at"],
        state=dict(r["state"] or {}),
    )


def _scan(r: RowMapping) -> ScanRow:
    return ScanRow(
        id=r["id"],
        target_id=r["target_id"],
        target_url=r["target_url"],
        started_at=r["started_at"],
        finished_at=r["finished_at"],
        status=ScanStatus(r["status"]),
        root_cid=r["root_cid"],
        summary=dict(r["summary"] or {}),
        error=r["error"],
        node=r["node"],
    )


def _frames(raw: Any) -> tuple[VideoFrameHash, ...]:
    if raw is None:
        return ()
    return tuple(VideoFrameHash(int(f), int(q), str(h), float(t)) for f, q, h, t in raw)


def _item(r: RowMapping) -> ItemRow:
    return ItemRow(
        key=r["key"],
        status=ItemState(r["status"]),
        cid=r["cid"],
        size=r["size"],
        media_type=r["media_type"],
        signals=ItemSignals.from_view(dict(r["signals"] or {}), _frames(r["video_frames"])),
        first_seen_at=r["first_seen_at"],
        last_seen_at=r["last_seen_at"],
    )


def _location(r: RowMapping) -> LocationRow:
    return LocationRow(
        id=r["id"],
        item_key=r["item_key"],
        target_id=r["target_id"],
        root_cid=r["root_cid"],
        path=r["path"],
        gateway=r["gateway"],
        first_seen_at=r["first_seen_at"],
        last_seen_at=r["last_seen_at"],
    )


def _finding(r: RowMapping) -> FindingRow:
    detail = dict(r["detail"] or {})
    source, line, percent = detail.get("list_source"), detail.get("list_line"), detail.get("compared_percent")
    return FindingRow(
        id=r["id"],
        item_key=r["item_key"],
        list_name=r["list_name"],
        entry_id=r["entry_id"],
        entry_value=r["entry_value"],
        signal_type=matched_on(r["signal_type"]),
        distance=float(r["distance"]),
        labels=tuple(r["labels"] or ()),
        query=r["query"],
        list_source=source if isinstance(source, str) else None,
        list_line=line if isinstance(line, int) and not isinstance(line, bool) else None,
        compared_percent=float(percent) if isinstance(percent, int | float) else None,
        created_at=r["created_at"],
        retroactive=bool(r["retroactive"]),
    )


def _list_version(r: RowMapping) -> ListVersionRow:
    return ListVersionRow(
        id=r["id"],
        name=r["name"],
        source=r["source"],
        content_hash=r["content_hash"],
        entries=r["entries"],
        deny_rules=r["deny_rules"],
        problems=r["problems"],
        loaded_at=r["loaded_at"],
    )


def _list_state(r: RowMapping) -> ListStateRow:
    return ListStateRow(
        name=r["name"],
        source=r["source"],
        etag=r["etag"],
        last_modified=r["last_modified"],
        checkpoint=r["checkpoint"],
        content_hash=r["content_hash"],
        updated_at=r["updated_at"],
    )
