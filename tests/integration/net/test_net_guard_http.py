"""SSRF guard against a real aiohttp server on 127.0.0.1.

Every URL in these tests points at loopback (or at an address refused before
any socket is opened), and fake resolvers only ever answer loopback or
forbidden addresses, so no connection can leave the machine even if the
guard were broken. The server counts what reaches it: "refused" means it saw
zero requests."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import aiohttp
import pytest
from aiohttp import web

from agent.net.addresses import BlockedDestination
from agent.net.connector import GuardedResolver, guarded_request, guarded_session
from agent.net.guard import NetGuard, redirect_target_refused
from tests.support.resolver import FakeResolver

LOOPBACK_ALLOWED = NetGuard(allow_hosts=frozenset({"127.0.0.1"}))
METADATA_URL = "http://169.254.169.254/latest/meta-data"


@dataclass
class HookServer:
    port: int
    paths: list[str] = field(default_factory=list)

    def url(self, path: str = "/hook", host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"


@pytest.fixture
async def server() -> AsyncIterator[HookServer]:
    hooks = HookServer(port=0)

    async def hook(request: web.Request) -> web.Response:
        hooks.paths.append(request.path)
        await request.read()
        return web.Response(status=204)

    async def to_metadata(request: web.Request) -> web.Response:
        hooks.paths.append(request.path)
        raise web.HTTPFound(METADATA_URL)

    async def to_same_host(request: web.Request) -> web.Response:
        hooks.paths.append(request.path)
        raise web.HTTPTemporaryRedirect("/hook")

    app = web.Application()
    app.router.add_route("*", "/hook", hook)
    app.router.add_route("*", "/redirect-metadata", to_metadata)
    app.router.add_route("*", "/redirect-same", to_same_host)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    hooks.port = runner.addresses[0][1]
    try:
        yield hooks
    finally:
        await runner.cleanup()


async def test_allowed_loopback_host_is_reached(server: HookServer) -> None:
    async with (
        guarded_session(LOOPBACK_ALLOWED, timeout=10) as session,
        guarded_request(session, LOOPBACK_ALLOWED, "POST", server.url(), json={"a": 1}) as resp,
    ):
        assert resp.status == 204
        assert redirect_target_refused(LOOPBACK_ALLOWED, resp) is None
    assert server.paths == ["/hook"]


async def test_loopback_refused_without_allow(server: HookServer) -> None:
    guard = NetGuard()
    async with guarded_session(guard, timeout=10) as session:
        with pytest.raises(BlockedDestination, match="loopback"):
            async with guarded_request(session, guard, "POST", server.url()):
                pass
        # Using the session directly does not get around the guard either:
        # aiohttp never resolves IP literals, so the session re-checks the URL.
        with pytest.raises(BlockedDestination, match="loopback"):
            async with session.post(server.url()):
                pass
        with pytest.raises(BlockedDestination, match="non-canonical"):
            async with session.post(server.url(host="127.1")):
                pass
    assert server.paths == []


async def test_localhost_name_refused_unless_allowed(server: HookServer) -> None:
    guard = NetGuard()
    async with guarded_session(guard, timeout=10) as session:
        with pytest.raises(BlockedDestination, match="localhost"):
            async with guarded_request(session, guard, "POST", server.url(host="localhost")):
                pass
    # The real system resolver answers loopback for it, which GuardedResolver
    # refuses even when the name check is bypassed.
    with pytest.raises(BlockedDestination, match="loopback"):
        await GuardedResolver(guard).resolve("localhost", server.port, socket.AF_UNSPEC)
    assert server.paths == []

    allowed = NetGuard(allow_hosts=frozenset({"localhost"}))
    async with (
        guarded_session(allowed, timeout=10) as session,
        guarded_request(session, allowed, "POST", server.url(host="localhost")) as resp,
    ):
        assert resp.status == 204
    assert server.paths == ["/hook"]


async def test_name_resolving_to_forbidden_address_never_connects(server: HookServer) -> None:
    # Both names answer addresses that reach the loopback server (IPv4-mapped
    # works on a dual-stack socket): had the guard let them through, the
    # server would have seen the request. Private/metadata answers are covered
    # at resolver level in the unit tests, where nothing can connect.
    fake = FakeResolver({"internal.example": ["127.0.0.1"], "mapped.example": ["::ffff:127.0.0.1"]})
    guard = NetGuard()
    async with guarded_session(guard, timeout=10, resolver=fake) as session:
        with pytest.raises(BlockedDestination) as info:
            async with guarded_request(session, guard, "POST", server.url(host="internal.example")):
                pass
        assert info.value.url == "internal.example" and "loopback" in info.value.reason
        # Also straight through the session: BlockedDestination surfaces as is,
        # not wrapped in a ClientConnectorError.
        with pytest.raises(BlockedDestination, match="IPv4-mapped"):
            async with session.post(server.url(host="mapped.example")):
                pass
    assert fake.calls == ["internal.example", "mapped.example"]
    assert server.paths == []


async def test_each_connection_resolves_once_and_uses_the_checked_answer(server: HookServer) -> None:
    # An allowed name mapped to loopback: at most one lookup per connection
    # (no DNS cache, so no stale answer), and the socket goes to exactly what
    # the resolver returned.
    fake = FakeResolver({"hooks.test": ["127.0.0.1"]})
    guard = NetGuard(allow_hosts=frozenset({"hooks.test"}))
    async with guarded_session(guard, timeout=10, resolver=fake) as session:
        for _ in range(2):
            async with guarded_request(session, guard, "POST", server.url(host="hooks.test"), data=b"x") as resp:
                assert resp.status == 204
    assert server.paths == ["/hook", "/hook"]
    # The second request may reuse the kept-alive (already checked) connection;
    # never more than one lookup per request.
    assert fake.calls in (["hooks.test"], ["hooks.test"] * 2)


async def test_redirect_to_metadata_is_returned_not_followed(server: HookServer) -> None:
    async with (
        guarded_session(LOOPBACK_ALLOWED, timeout=10) as session,
        guarded_request(session, LOOPBACK_ALLOWED, "POST", server.url("/redirect-metadata")) as resp,
    ):
        assert resp.status == 302
        assert resp.headers["Location"] == METADATA_URL
        why = redirect_target_refused(LOOPBACK_ALLOWED, resp)
        assert why is not None and "metadata" in why and "169.254.169.254" in why
        assert "metadata" in LOOPBACK_ALLOWED.check_redirect(resp.headers["Location"], resp.url)
    assert server.paths == ["/redirect-metadata"]


async def test_redirect_to_same_allowed_host_is_not_followed(server: HookServer) -> None:
    async with (
        guarded_session(LOOPBACK_ALLOWED, timeout=10) as session,
        guarded_request(session, LOOPBACK_ALLOWED, "POST", server.url("/redirect-same")) as resp,
    ):
        assert resp.status == 307
        why = redirect_target_refused(LOOPBACK_ALLOWED, resp)
        assert why is not None and "never followed" in why
        # A caller that asks aiohttp itself to follow redirects is stopped
        # before the second hop.
        with pytest.raises(BlockedDestination, match="never followed"):
            async with session.get(server.url("/redirect-same"), allow_redirects=True):
                pass
    assert server.paths == ["/redirect-same", "/redirect-same"]


async def test_plain_session_is_refused(server: HookServer) -> None:
    async with aiohttp.ClientSession() as plain:
        with pytest.raises(TypeError):
            async with guarded_request(plain, LOOPBACK_ALLOWED, "POST", server.url()):
                pass
    assert server.paths == []
