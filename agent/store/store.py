"""The agent's database: SQLAlchemy 2 async Core over SQLite or PostgreSQL.

`Store` owns the connection and one repository per aggregate:
`store.targets`, `store.scans`, `store.items` (with locations and directories),
`store.findings`, `store.views` (findings as analysts read them), `store.lists`,
`store.slots`, `store.subscriptions`, `store.outbox` (events and deliveries),
`store.reviews` (with retractions and suppressions), `store.content`,
`store.reports` (the transparency report's aggregates), and for
the HTTP API `store.tokens` (tokens by the hash of their secret), `store.audit`
(the audit log) and `store.jobs` (scans queued through the API), and for the
console `store.sessions` (logins by the hash of their id, reviewers' preferences), and
`store.gateways` (liars one node caught, distrusted by every node).

Multi-node work: periodic jobs are claimed once per slot (`slots.claim`, a
unique row); outbox deliveries and queued scans are leased with FOR UPDATE
SKIP LOCKED on PostgreSQL (SQLite has one writer, so BEGIN IMMEDIATE is
already exclusive)."""

from __future__ import annotations

from types import TracebackType

from sqlalchemy.ext.asyncio import AsyncEngine

from agent.store import migrations
from agent.store.audit import AuditRepository
from agent.store.content import ContentRepository
from agent.store.engine import DialectName, Engine, create_engine
from agent.store.findings import FindingRepository
from agent.store.gateways import GatewayMarkRepository
from agent.store.items import ItemRepository
from agent.store.jobs import ScanJobRepository
from agent.store.lists import ListRepository
from agent.store.outbox import OutboxRepository
from agent.store.reports import ReportRepository
from agent.store.reviews import ReviewRepository
from agent.store.scans import ScanRepository
from agent.store.sessions import SessionRepository
from agent.store.slots import SlotRepository
from agent.store.subscriptions import SubscriptionRepository
from agent.store.targets import TargetRepository
from agent.store.tokens import TokenRepository
from agent.store.views import FindingViewRepository


class Store:
    """Targets, scans, items, findings, lists, slots, alerts and the API's tokens, audit
    log and queued scans, one repository each."""

    def __init__(self, engine: Engine) -> None:
        self._db = engine
        self.targets = TargetRepository(engine)
        self.scans = ScanRepository(engine)
        self.items = ItemRepository(engine)
        self.findings = FindingRepository(engine)
        self.views = FindingViewRepository(engine)
        self.lists = ListRepository(engine)
        self.slots = SlotRepository(engine)
        self.subscriptions = SubscriptionRepository(engine)
        self.outbox = OutboxRepository(engine)
        self.reviews = ReviewRepository(engine)
        self.reports = ReportRepository(engine)
        self.content = ContentRepository(engine)
        self.tokens = TokenRepository(engine)
        self.audit = AuditRepository(engine)
        self.jobs = ScanJobRepository(engine)
        self.sessions = SessionRepository(engine)
        self.gateways = GatewayMarkRepository(engine)

    @classmethod
    async def open(cls, url: str, *, schema: str | None = None) -> Store:
        """Connect and bring the schema up to date.

        `url`: `sqlite+aiosqlite:///path` (the parent directory is created) or
        `postgresql+asyncpg://...`; `sqlite:///` and `postgresql://` are
        accepted and mapped to those drivers. `schema` (PostgreSQL only) puts
        every table in that existing schema via the connection's search_path.
        """
        engine = create_engine(url, schema=schema)
        try:
            async with engine.begin_migration() as conn:
                await migrations.migrate(conn)
        except BaseException:
            await engine.dispose()
            raise
        return cls(engine)

    async def close(self) -> None:
        await self._db.dispose()

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
        return self._db.dialect

    @property
    def _engine(self) -> AsyncEngine:
        """The SQLAlchemy engine (tests write fixtures through it)."""
        return self._db.sa

    async def schema_version(self) -> int:
        async with self._db.read() as conn:
            return await migrations.current_version(conn)
