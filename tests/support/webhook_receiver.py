"""A real webhook receiver on 127.0.0.1 that verifies Standard Webhooks signatures.

Every request is checked with `standardwebhooks.Webhook(secret).verify`, as a
platform would, against each configured secret (a receiver in the middle of a
secret rotation may know the old one only, the new one only, or both). Answers
are scripted per path; holds are driven by asyncio primitives the test owns,
so tests never sleep."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import Self

from aiohttp import web
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from tests.support.http import serve_app


@dataclass(frozen=True)
class Received:
    path: str
    webhook_id: str | None
    verified: bool
    error: str | None
    body: str
    headers: dict[str, str]
    at: datetime
    status: int


@dataclass
class Script:
    """What one path answers. `statuses` are used in order, then `status`."""

    statuses: deque[int] = field(default_factory=deque)
    status: int = 204
    retry_after: str | None = None
    redirect_to: str | None = None
    # Every request waits for this event (a slow or hung endpoint).
    hold: asyncio.Event | None = None
    # Every request takes one token first: the test lets requests through one by one.
    gate: asyncio.Semaphore | None = None


class WebhookReceiver:
    def __init__(self, secrets: Sequence[str]) -> None:
        self.secrets = list(secrets)
        self.received: list[Received] = []
        self.in_flight: dict[str, int] = {}
        self.max_in_flight: dict[str, int] = {}
        self._scripts: dict[str, Script] = {}
        self._changed = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self.base = ""

    # ------------------------------------------------------------- lifetime

    async def start(self) -> Self:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner, self.base = await serve_app(app)
        return self

    async def stop(self) -> None:
        for script in self._scripts.values():  # never leave a handler hanging
            if script.hold is not None:
                script.hold.set()
            if script.gate is not None:
                for _ in range(1000):
                    script.gate.release()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    # ------------------------------------------------------------ scripting

    def url(self, path: str = "/hook") -> str:
        return f"{self.base}{path}"

    def script(
        self,
        path: str,
        *,
        statuses: Sequence[int] = (),
        status: int = 204,
        retry_after: str | None = None,
        redirect_to: str | None = None,
        hold: asyncio.Event | None = None,
        gate: asyncio.Semaphore | None = None,
    ) -> Script:
        script = Script(deque(statuses), status, retry_after, redirect_to, hold, gate)
        self._scripts[path] = script
        return script

    # ----------------------------------------------------------- inspection

    def verify(self, body: str | bytes, headers: dict[str, str]) -> None:
        """Raise WebhookVerificationError unless one of our secrets verifies the request."""
        last: WebhookVerificationError | None = None
        for secret in self.secrets:
            try:
                Webhook(secret).verify(body, headers)
                return
            except WebhookVerificationError as exc:
                last = exc
        raise last or WebhookVerificationError("no secret configured")

    def at(self, path: str) -> list[Received]:
        return [r for r in self.received if r.path == path]

    # ASYNC109: `timeout` only guards a hung test; callers state it where a slow path is expected.
    async def wait_for(self, count: int, path: str | None = None, timeout: float = 10.0) -> list[Received]:  # noqa: ASYNC109
        """Wait (event-driven; `timeout` only guards against a hung test) until
        `count` requests reached `path` (any path if None)."""

        def enough() -> bool:
            return len(self.at(path) if path else self.received) >= count

        async with asyncio.timeout(timeout):
            async with self._changed:
                await self._changed.wait_for(enough)
        return self.at(path) if path else list(self.received)

    # -------------------------------------------------------------- handler

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        body = (await request.read()).decode("utf-8", "replace")
        headers = {k.lower(): v for k, v in request.headers.items()}
        script = self._scripts.get(path, Script())
        # Status is chosen on arrival so concurrent requests consume the script in order.
        status = script.statuses.popleft() if script.statuses else script.status
        verified, error = True, None
        try:
            self.verify(body, headers)
        except WebhookVerificationError as exc:
            verified, error = False, str(exc)
        self.in_flight[path] = self.in_flight.get(path, 0) + 1
        self.max_in_flight[path] = max(self.max_in_flight.get(path, 0), self.in_flight[path])
        async with self._changed:
            self.received.append(
                Received(path, headers.get("webhook-id"), verified, error, body, headers, datetime.now(UTC), status)
            )
            self._changed.notify_all()
        try:
            if script.gate is not None:
                await script.gate.acquire()
            if script.hold is not None:
                await script.hold.wait()
        finally:
            self.in_flight[path] -= 1
        if script.redirect_to is not None:
            raise web.HTTPFound(script.redirect_to)
        response_headers = {"Retry-After": script.retry_after} if script.retry_after is not None else {}
        return web.Response(status=status, headers=response_headers)
