"""No input makes the API answer 500: schemathesis generates requests (valid and invalid)
from the app's own /openapi.json for every route, sends them with an admin token to the
real app on a real socket, and checks every answer against the document (status, content
type, body schema). Bounded examples per operation, so it runs in CI."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from aiohttp import web
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from agent.api.app import build_app
from agent.api.context import ApiContext
from agent.api.openapi import openapi_document
from agent.api.routes import ROUTES
from agent.model.access import Role
from agent.services import Services
from agent.store import Store
from tests.support.api import api_settings

SCHEMA = schemathesis.openapi.from_dict(openapi_document(ROUTES))
CID = "bafybeihchr7vmgjaasntayyatmp5sv6xza57iy2h4xj7g46bpjij6yhrmy"


class LiveApi:
    """The app over an SQLite store, served from its own thread's event loop (schemathesis
    sends with a blocking client)."""

    def __init__(self, tmp_path: Path) -> None:
        self._db = f"sqlite+aiosqlite:///{tmp_path / 'agent.sqlite3'}"
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self.url = ""
        self.token = ""
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> LiveApi:
        self._thread.start()
        assert self._ready.wait(60), "the API did not start"
        if self._error is not None:
            raise self._error
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._stop is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(60)

    def _run(self) -> None:
        try:
            self._loop.run_until_complete(self._serve())
        except BaseException as exc:  # noqa: BLE001  (handed to the test's thread, which raises it)
            self._error = exc
            self._ready.set()

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        store = await Store.open(self._db)
        # A generous rate: the examples must meet the routes, not the limiter.
        settings = api_settings(rate_limit_per_s=10_000.0, rate_limit_burst=100_000)
        services = Services(settings, store)
        self.token = (await services.tokens.add(Role.ADMIN, "fuzz")).token
        await services.targets.add(f"ipfs://{CID}")
        runner = web.AppRunner(build_app(ApiContext(settings, services, services.tokens, services.audit)))
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        host, port = runner.addresses[0][:2]
        self.url = f"http://{host}:{port}"
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            await runner.cleanup()
            await store.close()


@pytest.fixture(scope="module")
def live_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveApi]:
    with LiveApi(tmp_path_factory.mktemp("fuzz")) as api:
        yield api


@SCHEMA.parametrize()
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_generated_request_gets_a_500_or_an_undocumented_answer(case: Any, live_api: LiveApi) -> None:
    """Whatever the generator sends, the answer is one the document declares, never a 500.
    (A schema-valid body may still be refused: "0" is a string but names no target.)"""
    case.call_and_validate(
        base_url=live_api.url,
        headers={"Authorization": f"Bearer {live_api.token}"},
        excluded_checks=[positive_data_acceptance],
    )
