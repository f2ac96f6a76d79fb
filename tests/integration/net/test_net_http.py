"""The session factory: the User-Agent a server sees is chosen by the session's purpose."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from agent import __version__
from agent.net.connector import guarded_request, guarded_session
from agent.net.guard import NetGuard
from agent.net.http import Purpose, client_session, user_agent


@pytest.fixture
async def echo_url() -> AsyncIterator[str]:
    """A server on 127.0.0.1 that answers with the User-Agent it received."""

    async def echo(request: web.Request) -> web.Response:
        return web.Response(text=request.headers.get("User-Agent", ""))

    app = web.Application()
    app.router.add_get("/ua", echo)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}/ua"
    finally:
        await runner.cleanup()


@pytest.mark.parametrize(
    ("purpose", "expected"),
    [
        (Purpose.SCAN, "dweb-agent (+verified retrieval)"),
        (Purpose.DAEMON, f"dweb-agent/{__version__}"),
        (Purpose.LISTS, f"dweb-agent/{__version__}"),
    ],
)
async def test_the_server_sees_the_user_agent_of_the_purpose(echo_url: str, purpose: Purpose, expected: str) -> None:
    async with client_session(purpose) as session, session.get(echo_url) as resp:
        assert await resp.text() == expected
    assert user_agent(purpose) == expected


async def test_extra_headers_are_sent_beside_the_user_agent(echo_url: str) -> None:
    async with client_session(Purpose.DAEMON, headers={"X-Trace": "1"}) as session:
        assert session.headers["X-Trace"] == "1"
        async with session.get(echo_url) as resp:
            assert await resp.text() == f"dweb-agent/{__version__}"


def test_a_caller_cannot_choose_its_own_user_agent() -> None:
    with pytest.raises(TypeError, match="User-Agent"):
        client_session(Purpose.SCAN, headers={"user-agent": "curl/8"})


async def test_timeouts_come_from_the_purpose_unless_given() -> None:
    async with client_session(Purpose.LISTS) as lists, client_session(Purpose.SCAN, timeout=7) as scan:
        assert lists.timeout.total == 300
        assert scan.timeout == aiohttp.ClientTimeout(total=7)


async def test_the_guarded_session_comes_from_the_factory(echo_url: str) -> None:
    guard = NetGuard(allow_hosts=frozenset({"127.0.0.1"}))
    async with (
        guarded_session(guard, timeout=10) as session,
        guarded_request(session, guard, "GET", echo_url) as resp,
    ):
        assert await resp.text() == user_agent(Purpose.WEBHOOK)
