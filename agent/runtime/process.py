"""The agent as a process: bind the health port (and the API's), open the agent, serve
until SIGTERM/SIGINT (or a stop event), then stop gracefully; a second signal ends
the grace period at once."""

from __future__ import annotations

import asyncio
import errno
import signal
import socket
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
from agent.runtime.errors import DaemonError
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


def bind_api(settings: Settings) -> socket.socket | None:
    """The API's listening socket ([api] host/port; port 0 picks one), bound now so that a
    port taken fails the start before the store is touched; None when [api] enabled is off."""
    if not settings.api.enabled:
        return None
    host, port = settings.api.host, settings.api.port
    try:
        info = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
        sock = socket.socket(info[0], socket.SOCK_STREAM)
    except OSError as exc:
        raise DaemonError(f"cannot listen on {host}:{port} for the API: {exc.strerror or exc}") from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(info[4])
    except OSError as exc:
        sock.close()
        why = (
            "the address is already in use (is another agent running?)"
            if exc.errno == errno.EADDRINUSE
            else str(exc.strerror or exc)
        )
        raise DaemonError(
            f"cannot listen on {host}:{port} for the API: {why}; set another port with [api] port "
            "in the config or DWEB_AGENT_API_PORT (0 picks a free one), or turn it off with [api] enabled = false"
        ) from None
    return sock


async def serve_api(agent: DaemonAgent, settings: Settings, sock: socket.socket) -> tuple[web.AppRunner, str]:
    """The API app over the open agent's store and catalog, served on `sock`; its URL."""
    from agent.api.app import build_app
    from agent.api.context import ApiContext
    from agent.services import Services
    from agent.services.matching import MatchService

    services = Services(settings, agent.store)
    # The media pool, for POST /v1/hash: the Agent has one once open; an agent without one
    # (a test's) answers hash requests as unavailable.
    media = getattr(agent, "media", None)
    context = ApiContext(
        settings,
        services,
        services.tokens,
        services.audit,
        matcher=MatchService(lambda: agent.catalog, media, settings),
        wake_scans=getattr(agent, "wake_scans", None),
    )
    app = build_app(context)
    if settings.console.enabled:
        from agent.console import mount_console

        mount_console(app, context)

    async def flush_tokens(_app: web.Application) -> None:
        # Tokens' last use, batched in memory, is written before the agent closes the store.
        try:
            await services.tokens.flush()
        except Exception as exc:  # noqa: BLE001  (a lost last-use hint must not fail the stop)
            log.warning("api tokens' last use not recorded", error=f"{type(exc).__name__}: {exc}")

    app.on_cleanup.append(flush_tokens)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.SockSite(runner, sock).start()
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in str(host) else str(host)
    return runner, f"http://{shown}:{port}"


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
    api_socket: socket.socket | None = None
    try:
        # The port first: a second agent started by mistake must fail before it marks
        # the first one's scans interrupted or releases its leases.
        host, port = await listen(runner, settings)
        api_socket = bind_api(settings)
        async with agent:
            api: tuple[web.AppRunner, str] | None = None
            try:
                if api_socket is not None:
                    api = await serve_api(agent, settings, api_socket)
                    api_socket = None  # the API's server owns it now
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
                        api=api[1] if api is not None else None,
                        targets=len(targets),
                        lists=len(agent.catalog.summaries),
                        gateways=len(settings.gateways.urls),
                    )
                await serving  # returns once stopped gracefully; raises what made serve fail
            finally:
                # Before the store closes: no request may meet a closed store.
                if api is not None:
                    await api[0].cleanup()
    finally:
        if api_socket is not None:
            api_socket.close()
        await runner.cleanup()
    log.info("agent.stopped")
