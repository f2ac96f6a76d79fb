"""/healthz and /metrics: what an orchestrator or a person asks a running agent."""

from __future__ import annotations

import errno
from dataclasses import asdict, dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from agent import __version__
from agent.config import Settings
from agent.lists.catalog import ListSummary
from agent.runtime.errors import DaemonError


class HealthStatus(StrEnum):
    STARTING = "starting"  # lists loading, targets not scheduled yet
    OK = "ok"
    STOPPING = "stopping"  # the grace period of a stop: running polls finish, no new ones


@dataclass(frozen=True)
class HealthState:
    """One look at the agent, taken when /healthz is asked."""

    status: HealthStatus
    node: str
    uptime_s: float
    targets: int
    lists: tuple[ListSummary, ...]
    last_list_sync: datetime | None
    polls_running: int


class HealthSource(Protocol):
    """What the health app needs of the agent."""

    @property
    def registry(self) -> CollectorRegistry: ...

    def health(self) -> HealthState: ...


def health_body(state: HealthState) -> dict[str, object]:
    """The /healthz JSON (its keys and their order are what operators' probes read)."""
    return {
        "status": state.status.value,
        "version": __version__,
        "node": state.node,
        "uptime_s": round(state.uptime_s, 3),
        "targets": state.targets,
        "lists": [asdict(s) for s in state.lists],
        "last_list_sync": state.last_list_sync.isoformat() if state.last_list_sync else None,
        "polls_running": state.polls_running,
    }


def health_app(agent: HealthSource) -> web.Application:
    async def healthz(_request: web.Request) -> web.Response:
        return web.json_response(health_body(agent.health()))

    async def metrics(_request: web.Request) -> web.Response:
        return web.Response(body=generate_latest(agent.registry), headers={"Content-Type": CONTENT_TYPE_LATEST})

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    return app


async def listen(runner: web.AppRunner, settings: Settings) -> tuple[str, int]:
    """Bind /healthz and /metrics, or say which address is taken and what changes it."""
    host, port = settings.agent.health_host, settings.agent.health_port
    try:
        await web.TCPSite(runner, host, port).start()
    except OSError as exc:
        why = (
            "the address is already in use (is another agent running?)"
            if exc.errno == errno.EADDRINUSE
            else str(exc.strerror or exc)
        )
        raise DaemonError(
            f"cannot listen on {host}:{port} for /healthz and /metrics: {why}; set another "
            "port with [agent] health_port in the config or DWEB_AGENT_AGENT_HEALTH_PORT "
            "(0 picks a free one)"
        ) from None
    bound = runner.addresses[0] if runner.addresses else (host, port)
    return str(bound[0]), int(bound[1])
