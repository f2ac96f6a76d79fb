"""The real API app on a real 127.0.0.1 socket, served from its own thread, for tests whose
client blocks (schemathesis, hypothesis): the server's event loop is fenced so nothing the
app does leaves the machine.

    with LiveApi(tmp_path, Role.PLATFORM) as live:
        answer = live.send("POST", "/v1/match", b"{}", {"Content-Type": "application/json"})
        assert live.fence.outbound == []

`FencedLoop` answers every host-name look-up with "unknown name" (recorded in `lookups`, so
no DNS query is sent) and refuses every connection to an address outside 127.0.0.0/8 and
::1 (recorded in `outbound`): the SSRF guard decides first, the fence only proves that
nothing got past it."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import threading
from collections.abc import Coroutine, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
from aiohttp import web

from agent.alerts.signing import new_secret
from agent.api.app import build_app
from agent.api.context import ApiContext
from agent.config import AlertSettings, Settings
from agent.lists.catalog import ListCatalog
from agent.model.access import Role
from agent.model.signals import SignalType
from agent.model.status import ItemState
from agent.services import Services
from agent.services.matching import MatchService
from agent.store import FindingRow, ItemRow, LocationRow, NewEvent, Store, SubscriptionRow
from tests.support.api import api_settings

T = TypeVar("T")
CID = "bafybeihchr7vmgjaasntayyatmp5sv6xza57iy2h4xj7g46bpjij6yhrmy"
# How long the test thread waits for the server thread (start, one request, stop).
_WAIT_S = 60.0


def _is_loopback(host: object) -> bool:
    try:
        return ipaddress.ip_address(str(host).strip("[]").split("%")[0]).is_loopback
    except ValueError:
        return False


class FencedLoop(asyncio.SelectorEventLoop):
    """An event loop from which nothing reaches beyond loopback (see the module docstring)."""

    def __init__(self) -> None:
        super().__init__()
        self.lookups: list[str] = []
        self.outbound: list[str] = []
        # Every address a socket was connected to or refused, loopback included (host, port).
        self.connections: list[tuple[str, int]] = []

    async def getaddrinfo(
        self, host: Any, port: Any, *, family: int = 0, type: int = 0, proto: int = 0, flags: int = 0
    ) -> list[Any]:
        if host is None or _is_loopback(host):
            return await super().getaddrinfo(host, port, family=family, type=type, proto=proto, flags=flags)
        self.lookups.append(str(host))
        raise socket.gaierror(socket.EAI_NONAME, f"{host}: no look-ups from a test")

    async def sock_connect(self, sock: socket.socket, address: Any) -> None:
        self.connections.append((str(address[0]), int(address[1])))
        if not _is_loopback(address[0]):
            self.outbound.append(f"{address[0]}:{address[1]}")
            raise ConnectionRefusedError(f"{address[0]}: no connections beyond loopback from a test")
        await super().sock_connect(sock, address)

    async def create_connection(self, protocol_factory: Any, host: Any = None, port: Any = None, **kw: Any) -> Any:
        if host is not None:
            self.connections.append((str(host), int(port or 0)))
        if host is not None and not _is_loopback(host):
            self.outbound.append(f"{host}:{port}")
            raise ConnectionRefusedError(f"{host}: no connections beyond loopback from a test")
        return await super().create_connection(protocol_factory, host, port, **kw)


@dataclass(frozen=True)
class Sent:
    """What the app answered one request."""

    status: int
    content_type: str
    text: str


def live_settings() -> Settings:
    # Generated requests must meet the routes, not the per-token rate limit.
    base = api_settings(rate_limit_per_s=100_000.0, rate_limit_burst=1_000_000)
    return base.model_copy(update={"alerts": AlertSettings(allow_hosts=[])})


async def seed(store: Store, principal: str) -> None:
    """A watch target, a subscription of `principal` and a finding delivered to it (ids 1),
    so generated ids meet real rows as well as missing ones."""
    await store.targets.add(f"ipfs://{CID}", "ipfs", 600)
    sub = await store.subscriptions.add("https://hooks.example/h", new_secret(), owner=principal)

    def outbox(new: list[FindingRow], _loc: LocationRow | None, _subs: list[SubscriptionRow]) -> list[NewEvent]:
        return [NewEvent(f"evt_{f.id}", "finding.created", {"id": f.id}, (sub.id,), f.id, f.item_key) for f in new]

    await store.items.record(
        ItemRow(key="k1", status=ItemState.VERIFIED, cid=CID),
        LocationRow(item_key="k1", path="k1.jpg"),
        [FindingRow("k1", "tcap", "tcap:k1", "abc", SignalType.MD5, 0.0)],
        outbox=outbox,
    )


class LiveApi:
    """The app over an SQLite store in `tmp_path`, with one token of `role` (`token`)."""

    def __init__(self, tmp_path: Path, role: Role, settings: Settings | None = None) -> None:
        self._db = f"sqlite+aiosqlite:///{tmp_path / 'agent.sqlite3'}"
        self.role = role
        self.principal = f"{role.value}-live"
        self.settings = settings or live_settings()
        self.fence = FencedLoop()
        self.url = ""
        self.token = ""
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._session: aiohttp.ClientSession | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=f"live-api-{role.value}", daemon=True)

    def __enter__(self) -> LiveApi:
        self._thread.start()
        assert self._ready.wait(_WAIT_S), "the API did not start"
        if self._error is not None:
            raise self._error
        return self

    def __exit__(self, *exc: object) -> None:
        if self._stop is not None:
            self.fence.call_soon_threadsafe(self._stop.set)
        self._thread.join(_WAIT_S)
        self.fence.close()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run `coro` on the server's loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.fence).result(_WAIT_S)

    def send(self, method: str, path: str, data: bytes | None = None, headers: Mapping[str, str] | None = None) -> Sent:
        """One request with the live token (unless `headers` names an Authorization)."""
        sent = {"Authorization": f"Bearer {self.token}", **(headers or {})}
        return self.run(self._send(method, path, data, sent))

    async def _send(self, method: str, path: str, data: bytes | None, headers: dict[str, str]) -> Sent:
        assert self._session is not None
        async with self._session.request(method, self.url + path, data=data, headers=headers) as r:
            return Sent(r.status, r.content_type if r.content_length != 0 else "", await r.text())

    def _run(self) -> None:
        try:
            self.fence.run_until_complete(self._serve())
        except BaseException as exc:  # noqa: BLE001  (handed to the test's thread, which raises it)
            self._error = exc
            self._ready.set()

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        store = await Store.open(self._db)
        services = Services(self.settings, store)
        self.token = (await services.tokens.add(self.role, self.principal)).token
        await seed(store, self.principal)
        matcher = MatchService(ListCatalog.empty, None, self.settings)
        context = ApiContext(self.settings, services, services.tokens, services.audit, matcher)
        runner = web.AppRunner(build_app(context), access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        host, port = runner.addresses[0][:2]
        self.url = f"http://{host}:{port}"
        self._session = aiohttp.ClientSession()
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            await self._session.close()
            await services.tokens.flush()
            await runner.cleanup()
            await store.close()
