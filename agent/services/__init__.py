"""The only door into the core: what the CLI (and next, the HTTP API) may ask of the agent.

    async with Services.open(settings) as svc:
        added = await svc.targets.add("ipfs://...")

Each service is a small class over the store and the settings, in its own module; they
raise agent.services.errors (NotFound, Invalid) with the line to show, never click or HTTP
errors. Scans need no store: `ScansService(settings)`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from agent.services.audit import AuditService
from agent.services.errors import Invalid, NotFound, ServiceError
from agent.services.findings import FindingsService
from agent.services.lists import ListsService
from agent.services.preview import PreviewService
from agent.services.scan_jobs import ScanJobRequest, ScanJobsService
from agent.services.scans import ScansService
from agent.services.sessions import SessionsService
from agent.services.status import StatusService
from agent.services.targets import TargetsService
from agent.services.tokens import TokensService
from agent.services.transparency import TransparencyService
from agent.services.webhooks import WebhooksService

if TYPE_CHECKING:
    from agent.config import Settings
    from agent.store import Store

__all__ = [
    "AuditService",
    "FindingsService",
    "Invalid",
    "ListsService",
    "NotFound",
    "PreviewService",
    "ScanJobRequest",
    "ScanJobsService",
    "ScansService",
    "ServiceError",
    "Services",
    "SessionsService",
    "StatusService",
    "TargetsService",
    "TokensService",
    "TransparencyService",
    "WebhooksService",
]


class Services:
    """Every service over one store, built once from the settings."""

    def __init__(self, settings: Settings, store: Store) -> None:
        self.settings = settings
        self.store = store
        self.targets = TargetsService(store, settings.schedule.default_interval_s, settings)
        self.findings = FindingsService(store, settings.console.label_weights)
        self.lists = ListsService(store, settings)
        self.webhooks = WebhooksService(store, settings, self.lists)
        self.status = StatusService(store, settings)
        self.scans = ScansService(settings)
        self.jobs = ScanJobsService(store, settings)
        self.tokens = TokensService(store, settings.api.token_cache_s)
        self.audit = AuditService(store)
        self.sessions = SessionsService(store, self.tokens, settings.console)
        self.transparency = TransparencyService(store)
        # The console's previews: fetched when asked, never stored.
        self.preview = PreviewService(settings)

    @classmethod
    @asynccontextmanager
    async def open(cls, settings: Settings) -> AsyncIterator[Services]:
        """Open the configured database (creating the data directory) for the block's life."""
        from agent.store import Store

        settings.agent.data_dir.mkdir(parents=True, exist_ok=True)
        store = await Store.open(settings.agent.database())
        try:
            yield cls(settings, store)
        finally:
            await store.close()
