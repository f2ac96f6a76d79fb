"""What every API handler may reach: the settings, the services, who the caller is, where
the audit trail goes, and the agent's live parts (its match service), held by the app
under `API_CONTEXT`.

`Authenticator` and `AuditSink` are ports: agent.services.tokens.TokensService and
agent.services.audit.AuditService satisfy them; the API never reads the store itself."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

import structlog
from aiohttp import web

from agent.model.access import AuditEntry, Principal

log = structlog.get_logger(__name__)

if TYPE_CHECKING:
    from agent.config import Settings
    from agent.services import Services
    from agent.services.matching import MatchService


class Authenticator(Protocol):
    async def authenticate(self, token: str) -> Principal | None:
        """The principal of a bearer token, or None (malformed, unknown or revoked)."""
        ...


class AuditSink(Protocol):
    async def record(self, entry: AuditEntry) -> None:
        """Keep one audit entry."""
        ...


def peer_address(request: web.Request) -> str | None:
    """The caller's address as the socket says. X-Forwarded-For is not read: anyone can send
    it, so trusting it would let a caller write any address into the audit trail."""
    return request.remote


@dataclass(frozen=True)
class ApiContext:
    settings: Settings
    services: Services
    auth: Authenticator
    audit: AuditSink
    # POST /v1/match and /v1/hash, over the agent's current catalog and media pool; GET
    # /v1/lists reads the entry counts of that catalog from it too.
    matcher: MatchService
    # Tells the agent's scan runner a scan was queued (POST /v1/scans), so it need not wait
    # for its next poll; None: another agent's runner finds the job at its poll.
    wake_scans: Callable[[], None] | None = None
    # Monotonic seconds: the rate limiter's clock, injectable so tests need no sleeps.
    clock: Callable[[], float] = time.monotonic
    remote_of: Callable[[web.Request], str | None] = field(default=peer_address)

    async def record_call(
        self, request: web.Request, principal: Principal, action: str, status: int, resource: str | None
    ) -> None:
        """Keep one mutating call (the API's or the console's) in the audit trail. A lost
        entry is logged loudly and not raised: the change it records is already made."""
        entry = AuditEntry(
            action=action,
            status=status,
            principal=principal.name,
            token_id=principal.token_id,
            role=principal.role,
            resource=resource,
            remote=self.remote_of(request),
        )
        try:
            await self.audit.record(entry)
        except Exception as exc:  # noqa: BLE001  (see the docstring)
            log.error("audit entry not recorded", action=action, status=status, error=type(exc).__name__)


API_CONTEXT: web.AppKey[ApiContext] = web.AppKey("api_context", ApiContext)
