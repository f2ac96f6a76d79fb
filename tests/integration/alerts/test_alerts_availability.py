"""ContentProbe against real gateways and a real routing server on 127.0.0.1.

The point under test is the asymmetry of the verdict: one verified positive
answer makes content "available", only unanimous negative answers make it
"unavailable", and anything broken on our side is "unknown"."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import aiohttp
import pytest
from aiohttp import web

from agent.ipfs.cid import CID, block_key, cid_text
from agent.ipfs.errors import InvalidCid
from agent.ipfs.probe import ContentProbe
from tests.conftest import IPFS_FIXTURES
from tests.support.gateway import FixtureGateway
from tests.support.http import serve_app
from tests.support.routing_server import RoutingServer, peer_record

CAR = IPFS_FIXTURES / "gateway-conformance" / "path_gateway_unixfs" / "dir-with-files.car"
MakeGateway = Callable[..., Awaitable[FixtureGateway]]


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


@pytest.fixture
async def router() -> AsyncIterator[RoutingServer]:
    server = RoutingServer()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
def closed_port_url() -> Iterator[str]:
    """A 127.0.0.1 port that is bound but not listening: connections are refused at once."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        sock.close()


async def loaded(make_gateway: MakeGateway, **knobs: object) -> tuple[FixtureGateway, CID]:
    gw = await make_gateway(**knobs)
    roots = await gw.load_car(CAR)
    return gw, roots[0]


async def test_served_content_is_available(make_gateway: MakeGateway, session: aiohttp.ClientSession) -> None:
    gw, root = await loaded(make_gateway)
    result = await ContentProbe(session, [gw.url]).check(cid_text(root))
    assert result.state == "available"
    answer = result.gateways[gw.url]
    assert (answer.status, answer.verdict) == (200, "available")
    assert "verified" in answer.detail
    assert result.providers is None
    assert result.reason == f"served at {gw.url}"
    assert result.checked_at.tzinfo is not None
    # One cheap raw request for the root block, nothing more.
    assert gw.requests["raw"] == 1 and gw.requests["car"] == 0


@pytest.mark.parametrize("status", [410, 451])
async def test_takedown_answer_is_unavailable(
    make_gateway: MakeGateway, session: aiohttp.ClientSession, status: int
) -> None:
    gw, root = await loaded(make_gateway)
    gw.blocked[block_key(root)] = status
    result = await ContentProbe(session, [gw.url]).check(cid_text(root))
    assert result.state == "unavailable"
    assert result.gateways[gw.url].verdict == "blocked"
    assert result.gateways[gw.url].status == status
    assert result.reason == f"{status} at {gw.url}"


async def test_404_everywhere_and_no_providers_is_unavailable(
    make_gateway: MakeGateway, session: aiohttp.ClientSession, router: RoutingServer
) -> None:
    gw1, root = await loaded(make_gateway)
    gw2, _ = await loaded(make_gateway)
    gw1.blocked[block_key(root)] = 410
    gw2.hide.add(block_key(root))
    probe = ContentProbe(session, [gw1.url, gw2.url], routing_url=router.url)
    result = await probe.check(cid_text(root))
    assert result.state == "unavailable"
    assert result.providers == 0
    assert [a.verdict for a in result.gateways.values()] == ["blocked", "not_found"]
    assert result.reason == f"410 at {gw1.url}; 404 at {gw2.url}; 0 providers"
    # The router is asked with the base32 CIDv1 spelling, as the spec's examples use.
    assert router.requests == [(root.set(version=1).encode("base32"), "application/json")]


async def test_404_at_gateway_but_providers_is_available(
    make_gateway: MakeGateway, session: aiohttp.ClientSession, router: RoutingServer
) -> None:
    gw, root = await loaded(make_gateway)
    gw.hide.add(block_key(root))
    router.providers[str(root)] = [peer_record(1), peer_record(2)]
    result = await ContentProbe(session, [gw.url], routing_url=router.url).check(cid_text(root))
    assert result.state == "available"
    assert result.providers == 2
    assert result.gateways[gw.url].verdict == "not_found"
    assert result.reason == f"404 at {gw.url}; 2 providers"


async def test_blocked_at_one_gateway_and_another_unreachable_is_unknown(
    make_gateway: MakeGateway, session: aiohttp.ClientSession, closed_port_url: str
) -> None:
    gw, root = await loaded(make_gateway)
    gw.blocked[block_key(root)] = 410
    result = await ContentProbe(session, [gw.url, closed_port_url]).check(cid_text(root))
    assert result.state == "unknown"
    down = result.gateways[closed_port_url]
    assert (down.status, down.verdict) == (None, "error")
    assert result.reason.startswith(f"410 at {gw.url}; error at {closed_port_url} (")


async def test_wrong_bytes_are_an_error_not_available(
    make_gateway: MakeGateway, session: aiohttp.ClientSession
) -> None:
    gw, root = await loaded(make_gateway)
    gw.lie_about.add(block_key(root))
    result = await ContentProbe(session, [gw.url]).check(cid_text(root))
    assert result.state == "unknown"
    answer = result.gateways[gw.url]
    assert (answer.status, answer.verdict) == (200, "error")
    assert "do not match" in answer.detail


async def test_liar_does_not_outvote_an_honest_gateway(
    make_gateway: MakeGateway, session: aiohttp.ClientSession
) -> None:
    liar, root = await loaded(make_gateway)
    honest, _ = await loaded(make_gateway)
    liar.lie_about.add(block_key(root))
    result = await ContentProbe(session, [liar.url, honest.url]).check(cid_text(root))
    assert result.state == "available"
    assert result.gateways[liar.url].verdict == "error"


async def test_router_failure_means_unknown_providers(
    make_gateway: MakeGateway, session: aiohttp.ClientSession, router: RoutingServer
) -> None:
    gw, root = await loaded(make_gateway)
    gw.hide.add(block_key(root))
    router.providers[str(root)] = [peer_record(1)]
    router.fail_with = 500
    result = await ContentProbe(session, [gw.url], routing_url=router.url).check(cid_text(root))
    assert result.providers is None
    # Every gateway said 404, but the router could not confirm: no takedown is declared.
    assert result.state == "unknown"
    assert result.reason == f"404 at {gw.url}; routing HTTP 500 Internal Server Error"


async def test_streamed_providers_are_counted(
    make_gateway: MakeGateway, session: aiohttp.ClientSession, router: RoutingServer
) -> None:
    gw, root = await loaded(make_gateway)
    gw.hide.add(block_key(root))
    # The same peer twice (once per transport, as routers do) counts once.
    router.providers[str(root)] = [peer_record(1), peer_record(2), peer_record(3), peer_record(3)]
    probe = ContentProbe(session, [gw.url], routing_url=router.url, stream_providers=True)
    result = await probe.check(cid_text(root))
    assert "application/x-ndjson" in router.requests[0][1]
    assert result.providers == 3
    assert result.state == "available"


async def test_stalled_gateway_times_out_as_error(make_gateway: MakeGateway, session: aiohttp.ClientSession) -> None:
    gw, root = await loaded(make_gateway, hold_after=0)  # holds every request until released
    result = await ContentProbe(session, [gw.url], timeout_s=0.2).check(cid_text(root))
    assert result.state == "unknown"
    assert result.gateways[gw.url].verdict == "error"
    assert "no answer within 0.2 s" in result.gateways[gw.url].detail


async def test_redirects_and_html_pages_are_errors(session: aiohttp.ClientSession) -> None:
    async def redirect(request: web.Request) -> web.Response:
        raise web.HTTPFound("http://127.0.0.1:9/elsewhere")

    async def html(request: web.Request) -> web.Response:
        return web.Response(text="<h1>content removed</h1>", content_type="text/html")

    apps = []
    for handler in (redirect, html):
        app = web.Application()
        app.router.add_get("/ipfs/{cid}", handler)
        apps.append(await serve_app(app))
    try:
        (_, redirecting), (_, page) = apps
        root = "bafybeihchr7vmgjaasntayyatmp5sv6xza57iy2h4xj7g46bpjij6yhrmy"
        result = await ContentProbe(session, [redirecting, page]).check(root)
        assert result.state == "unknown"
        assert result.gateways[redirecting].status == 302
        assert "not followed" in result.gateways[redirecting].detail
        assert result.gateways[page].verdict == "error"
        assert "text/html" in result.gateways[page].detail
    finally:
        for runner, _ in apps:
            await runner.cleanup()


async def test_probe_needs_a_source_and_a_valid_cid(session: aiohttp.ClientSession) -> None:
    with pytest.raises(ValueError, match="at least one gateway or a routing URL"):
        ContentProbe(session, [])
    with pytest.raises(InvalidCid):
        await ContentProbe(session, ["http://127.0.0.1:9"]).check("not-a-cid")


async def test_cidv0_is_asked_as_cidv1_at_the_router(
    make_gateway: MakeGateway, session: aiohttp.ClientSession, router: RoutingServer
) -> None:
    gw, root = await loaded(make_gateway)
    v0 = str(root.set(version=0))
    assert v0.startswith("Qm")
    router.providers[v0] = [peer_record(7)]
    result = await ContentProbe(session, [gw.url], routing_url=router.url).check(v0)
    assert result.state == "available" and result.providers == 1
    assert router.requests[0][0] == root.set(version=1).encode("base32")
