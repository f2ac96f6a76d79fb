"""The agent as a process: bind the health port, open the agent, serve until
SIGTERM/SIGINT (or a stop event), then stop gracefully; a second signal ends
the grace period at once."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable
from types import TracebackType
from typing import Protocol, Self

import structlog
from aiohttp import web
from prometheus_client import CollectorRegistry

from agent import __version__
from agent.config import Settings
from agent.lists.catalog import ListCatalog
from agent.runtime.agent import Agent
from agent.runtime.health import HealthSource, health_app, listen
from agent.store import Store

log = structlog.get_logger("agent.daemon")  # the name operators' log filters already use


class DaemonAgent(HealthSource, Protocol):
    """What the process needs of the agent it runs (agent.runtime.agent.Agent, or a test's)."""

    @property
    def node(self) -> str: ...
    @property
    def store(self) -> Store: ...
    @property
    def catalog(self) -> ListCatalog: ...
    @property
    def ready(self) -> asyncio.Event: ...

    async def __aenter__(self) -> Self: ...
    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...
    async def serve(self, stop: asyncio.Event) -> None: ...
    def hurry(self) -> None: ...


AgentFactory = Callable[[Settings, CollectorRegistry], DaemonAgent]


async def run_daemon(
    settings: Settings,
    registry: CollectorRegistry,
    stop: asyncio.Event | None = None,
    *,
    agent_factory: AgentFactory = Agent,
) -> None:
    """Serve until SIGTERM/SIGINT (or `stop`), then stop gracefully. Raises DaemonError
    when the agent cannot start, before it has touched the database."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    agent = agent_factory(settings, registry)

    def on_signal(sig: signal.Signals) -> None:
        if not stop.is_set():
            log.info("agent.stopping", signal=sig.name, grace_s=settings.agent.shutdown_grace_s)
            stop.set()
        else:  # asked twice: the operator will not wait out the grace
            log.warning("agent.stopping_now", signal=sig.name)
            agent.hurry()

    # Left installed until asyncio.run closes the loop: removed earlier, a second
    # Ctrl-C during the last steps of the stop would raise KeyboardInterrupt there.
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal, sig)
    runner = web.AppRunner(health_app(agent), access_log=None)
    await runner.setup()
    try:
        # The port first: a second agent started by mistake must fail before it marks
        # the first one's scans interrupted or releases its leases.
        host, port = await listen(runner, settings)
        async with agent:
            serving = asyncio.create_task(agent.serve(stop))
            ready = asyncio.create_task(agent.ready.wait())
            await asyncio.wait([serving, ready], return_when=asyncio.FIRST_COMPLETED)
            ready.cancel()
            if not serving.done():
                targets = await agent.store.targets.all(enabled_only=True)
                log.info(
                    "agent.started",
                    version=__version__,
                    node=agent.node,
                    data_dir=str(settings.agent.data_dir),
                    database=agent.store.dialect,
                    health=f"http://{host}:{port}/healthz",
                    targets=len(targets),
                    lists=len(agent.catalog.summaries),
                    gateways=len(settings.gateways.urls),
                )
            await serving  # returns once stopped gracefully; raises what made serve fail
    finally:
        await runner.cleanup()
    log.info("agent.stopped")
