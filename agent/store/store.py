"""The agent's database: SQLAlchemy 2 async Core over SQLite or PostgreSQL.

`Store` owns the connection and one repository per aggregate:
`store.targets`, `store.scans`, `store.items` (with locations and directories),
`store.findings`, `store.views` (findings as analysts read them), `store.lists`,
`store.slots`, `store.subscriptions`, `store.outbox` (events and deliveries),
`store.reviews` (with retractions and suppressions) and `store.content`.

Multi-node work: periodic jobs are claimed once per slot (`slots.claim`, a
unique row); outbox deliveries are leased with FOR UPDATE SKIP LOCKED on
PostgreSQL (SQLite has one writer, so BEGIN IMMEDIATE is already exclusive)."""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType
from typing import Any, Concatenate, Generic, ParamSpec, TypeVar

from sqlalchemy.ext.asyncio import AsyncEngine

from agent.store import migrations
from agent.store.content import ContentRepository
from agent.store.engine import DialectName, Engine, create_engine
from agent.store.findings import FindingRepository
from agent.store.items import ItemRepository
from agent.store.lists import ListRepository
from agent.store.outbox import OutboxRepository
from agent.store.reviews import ReviewRepository
from agent.store.scans import ScanRepository
from agent.store.slots import SlotRepository
from agent.store.subscriptions import SubscriptionRepository
from agent.store.targets import TargetRepository
from agent.store.views import FindingViewRepository

P = ParamSpec("P")
R = TypeVar("R")


class _Moved(Generic[P, R]):  # shim: issue-10 integration removes
    """A Store attribute under an old name: the same method of a repository, typed."""

    def __init__(self, repository: str, method: Callable[Concatenate[Any, P], R]) -> None:
        self._repository = repository
        self._method = method.__name__

    def __get__(self, store: Store, owner: type[Store] | None = None) -> Callable[P, R]:
        bound: Callable[P, R] = getattr(getattr(store, self._repository), self._method)
        return bound


class Store:
    """Targets, scans, items, findings, lists, slots and alerts, one repository each."""

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
        self.content = ContentRepository(engine)

    # shim: issue-10 integration removes -- the old flat method names, each the bound
    # method of its new home (the same list is in /work/briefs/store-renames.txt).
    add_target = _Moved("targets", TargetRepository.add)
    get_target = _Moved("targets", TargetRepository.get)
    list_targets = _Moved("targets", TargetRepository.all)
    set_target_enabled = _Moved("targets", TargetRepository.set_enabled)
    remove_target = _Moved("targets", TargetRepository.remove)
    record_poll = _Moved("targets", TargetRepository.record_poll)
    claim_poll = _Moved("targets", TargetRepository.claim_poll)
    start_scan = _Moved("scans", ScanRepository.start)
    finish_scan = _Moved("scans", ScanRepository.finish)
    interrupt_running_scans = _Moved("scans", ScanRepository.interrupt_running)
    get_scan = _Moved("scans", ScanRepository.get)
    recent_scans = _Moved("scans", ScanRepository.recent)
    seen_keys = _Moved("items", ItemRepository.seen_keys)
    get_items = _Moved("items", ItemRepository.get_many)
    record_item = _Moved("items", ItemRepository.record)
    record_directory = _Moved("items", ItemRepository.record_directory)
    iter_items_with_signals = _Moved("items", ItemRepository.iter_with_signals)
    count_items = _Moved("items", ItemRepository.count)
    locations_of = _Moved("items", ItemRepository.locations_of)
    add_findings = _Moved("findings", FindingRepository.add)
    list_findings = _Moved("findings", FindingRepository.recent)
    get_finding = _Moved("findings", FindingRepository.get)
    count_findings = _Moved("findings", FindingRepository.count)
    finding_views = _Moved("views", FindingViewRepository.recent)
    finding_detail = _Moved("views", FindingViewRepository.detail)
    record_list_version = _Moved("lists", ListRepository.record_version)
    latest_list_versions = _Moved("lists", ListRepository.latest_versions)
    get_list_state = _Moved("lists", ListRepository.get_state)
    put_list_state = _Moved("lists", ListRepository.put_state)
    claim_slot = _Moved("slots", SlotRepository.claim)
    prune_slots = _Moved("slots", SlotRepository.prune)
    add_subscription = _Moved("subscriptions", SubscriptionRepository.add)
    list_subscriptions = _Moved("subscriptions", SubscriptionRepository.all)
    get_subscription = _Moved("subscriptions", SubscriptionRepository.get)
    remove_subscription = _Moved("subscriptions", SubscriptionRepository.remove)
    rotate_secret = _Moved("subscriptions", SubscriptionRepository.rotate_secret)
    set_subscription_enabled = _Moved("subscriptions", SubscriptionRepository.set_enabled)
    set_failing_since = _Moved("subscriptions", SubscriptionRepository.set_failing_since)
    emit_events = _Moved("outbox", OutboxRepository.emit)
    lease_deliveries = _Moved("outbox", OutboxRepository.lease)
    release_leases = _Moved("outbox", OutboxRepository.release_leases)
    record_attempt = _Moved("outbox", OutboxRepository.record_attempt)
    replay = _Moved("outbox", OutboxRepository.replay)
    list_events = _Moved("outbox", OutboxRepository.events)
    deliveries_of = _Moved("outbox", OutboxRepository.deliveries_of)
    review_finding = _Moved("reviews", ReviewRepository.review)
    retract_entries = _Moved("reviews", ReviewRepository.retract_entries)
    retracted_ids = _Moved("reviews", ReviewRepository.retracted_ids)
    reviews_of = _Moved("reviews", ReviewRepository.of)
    list_reviews = _Moved("reviews", ReviewRepository.audit_trail)
    watched_content = _Moved("content", ContentRepository.watched)
    set_content_state = _Moved("content", ContentRepository.set_state)

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
