"""The long-running agent: wires the health/metrics endpoint and waits for work.

Scheduling of watch targets lives here once targets exist (see the daemon issue);
today the daemon serves /healthz and /metrics and stops cleanly on SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import signal
import time

import structlog
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Gauge, generate_latest

from agent import __version__
from agent.config import Settings

log = structlog.get_logger(__name__)


def health_app(registry: CollectorRegistry, started: float) -> web.Application:
    async def healthz(_request: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "version": __version__, "uptime_s": round(time.monotonic() - started, 3)})

    async def metrics(_request: web.Request) -> web.Response:
        return web.Response(body=generate_latest(registry), headers={"Content-Type": CONTENT_TYPE_LATEST})

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    return app


async def run_daemon(settings: Settings, registry: CollectorRegistry, stop: asyncio.Event | None = None) -> None:
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    settings.agent.data_dir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    Gauge("dweb_agent_up", "1 while the agent runs", registry=registry).set(1)
    Gauge("dweb_agent_targets", "Targets being watched", registry=registry).set(0)
    runner = web.AppRunner(health_app(registry, started), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, settings.agent.health_host, settings.agent.health_port)
    await site.start()
    bound = runner.addresses[0] if runner.addresses else (settings.agent.health_host, settings.agent.health_port)
    log.info("agent.started", version=__version__, data_dir=str(settings.agent.data_dir),
             health=f"http://{bound[0]}:{bound[1]}/healthz", targets=0,
             gateways=len(settings.gateways.urls))
    try:
        await stop.wait()
        log.info("agent.stopping")
    finally:
        await runner.cleanup()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
    log.info("agent.stopped")
