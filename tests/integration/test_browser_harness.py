"""The browser-test harness itself: a guarded Chromium fails a test for every dialog, script error,
CSP violation and request beyond loopback, passes a clean page; the real agent process starts,
answers, hands out working tokens and stops cleanly."""

from __future__ import annotations

import asyncio
import os
import struct
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from playwright.async_api import Request

from agent.model.access import Role
from tests.conftest import REPO
from tests.support.agent_process import AgentProcess, config_toml, fresh_postgres_database
from tests.support.browser import (
    CHROMIUM_ENV,
    GuardedBrowser,
    IncidentKind,
    browser_fixture,  # noqa: F401  (the `browser` fixture)
    guarded_browser,
    screenshot,
)

Page = tuple[str, Mapping[str, str]]  # HTML, extra response headers
Site = Callable[[Mapping[str, Page]], Awaitable[str]]


@pytest.fixture
async def site() -> AsyncIterator[Site]:
    """Serves the given pages on 127.0.0.1; returns their base URL. /missing is a 404."""
    runners: list[web.AppRunner] = []

    async def serve(pages: Mapping[str, Page]) -> str:
        async def handler(request: web.Request) -> web.Response:
            if request.path not in pages:
                return web.Response(status=404, text="no such page")
            html, headers = pages[request.path]
            kind = "application/javascript" if request.path.endswith(".js") else "text/html"
            return web.Response(text=html, content_type=kind, headers=dict(headers))

        app = web.Application()
        app.router.add_route("GET", "/{path:.*}", handler)
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        runners.append(runner)
        return f"http://127.0.0.1:{runner.addresses[0][1]}"

    yield serve
    for runner in runners:
        await runner.cleanup()


def _page(body: str, **headers: str) -> Page:
    return (f"<!doctype html><html><head><title>t</title></head><body>{body}</body></html>", headers)


async def test_an_alert_is_dismissed_and_fails_the_check_naming_the_dialog(site: Site) -> None:
    base = await site({"/": _page("<script>alert(1)</script><p id=after>after the alert</p>")})

    async def visit() -> None:
        async with guarded_browser() as browser:
            page = await browser.new_page()
            await page.goto(base + "/")
            # Dismissed at once: the page went on past the script that opened it.
            assert await page.text_content("#after") == "after the alert"

    with pytest.raises(AssertionError, match=r"dialog: alert '1'") as failed:
        await visit()
    assert base in str(failed.value), "the incident names the page it happened on"


async def test_an_uncaught_exception_fails_the_check(site: Site) -> None:
    base = await site({"/": _page("<script>throw new TypeError('boom from the page')</script>")})
    with pytest.raises(AssertionError, match=r"uncaught exception: TypeError: boom from the page"):
        async with guarded_browser() as browser:
            await (await browser.new_page()).goto(base + "/")


async def test_a_console_error_fails_the_check(site: Site) -> None:
    base = await site({"/": _page("<script>console.error('the widget broke')</script>")})
    with pytest.raises(AssertionError, match=r"console error: the widget broke"):
        async with guarded_browser() as browser:
            await (await browser.new_page()).goto(base + "/")


async def test_an_inline_script_refused_by_the_csp_fails_the_check_as_a_csp_violation(site: Site) -> None:
    csp = {"Content-Security-Policy": "script-src 'self'"}
    base = await site({"/": _page("<script>document.title = 'ran'</script>", **csp)})

    async def visit() -> None:
        async with guarded_browser() as browser:
            page = await browser.new_page()
            await page.goto(base + "/")
            assert await page.title() == "t", "the policy did refuse the script"

    with pytest.raises(AssertionError, match=r"Content-Security-Policy violation: .*script-src 'self'"):
        await visit()


async def test_a_request_beyond_loopback_is_aborted_before_it_is_sent_and_fails_the_check(site: Site) -> None:
    body = "<img src='http://192.0.2.1/pixel.png'><script src='/fetch.js'></script>"
    base = await site({"/": _page(body), "/fetch.js": ("fetch('http://outside.example/api').catch(() => {})", {})})
    failures: dict[str, str | None] = {}

    def failed_request(request: Request) -> None:
        failures[request.url] = request.failure

    async def visit() -> None:
        async with guarded_browser() as browser:
            page = await browser.new_page()
            page.on("requestfailed", failed_request)
            async with page.expect_event("requestfailed", lambda r: "outside.example" in r.url):
                await page.goto(base + "/")

    with pytest.raises(AssertionError) as failed:
        await visit()
    message = str(failed.value)
    assert "request beyond loopback (aborted): GET http://192.0.2.1/pixel.png" in message
    assert "request beyond loopback (aborted): GET http://outside.example/api" in message
    # Refused by the harness itself, not by a connection attempt that timed out or was refused.
    assert (
        failures["http://192.0.2.1/pixel.png"] is not None
        and "ERR_BLOCKED_BY_CLIENT" in failures["http://192.0.2.1/pixel.png"]
    )
    # Chromium's own "Failed to load resource" for the aborted image is not listed a second time.
    assert "2 thing(s)" in message and "console error" not in message, message


async def test_a_websocket_beyond_loopback_never_connects_and_fails_the_check(site: Site) -> None:
    """WebSockets bypass the route: the proxy fence makes them fail to connect, and that is recorded."""
    script = "const s = new WebSocket('ws://192.0.2.1/live'); s.onerror = () => { document.title = 'refused'; };"
    base = await site({"/": _page("<script src='/ws.js'></script>"), "/ws.js": (script, {})})

    async def visit() -> None:
        async with guarded_browser() as browser:
            page = await browser.new_page()
            await page.goto(base + "/")
            await page.wait_for_function("document.title === 'refused'")

    with pytest.raises(AssertionError, match=r"request beyond loopback \(aborted\): WebSocket ws://192.0.2.1/live"):
        await visit()


async def test_a_clean_page_passes_and_loopback_is_reached_directly(browser: GuardedBrowser, site: Site) -> None:
    csp = {"Content-Security-Policy": "default-src 'self'"}
    base = await site(
        {
            "/": _page("<p id=out></p><script src='/app.js'></script>", **csp),
            "/app.js": ("document.getElementById('out').textContent = 'script ran';", {}),
        }
    )
    page = await browser.new_page()
    await page.goto(base + "/")
    assert await page.text_content("#out") == "script ran"
    other = await browser.new_page()
    await other.goto(base.replace("127.0.0.1", "localhost") + "/")  # not sent to the proxy fence
    assert await other.text_content("#out") == "script ran"
    await browser.settle()
    assert browser.guard.incidents == ()
    browser.guard.check()


async def test_an_incident_a_test_provokes_is_taken_with_expected_and_then_passes(
    browser: GuardedBrowser, site: Site
) -> None:
    base = await site({})
    page = await browser.new_page()
    response = await page.goto(base + "/missing")
    assert response is not None and response.status == 404
    await browser.settle()
    taken = browser.guard.expected(IncidentKind.CONSOLE_ERROR, "404")
    assert len(taken) == 1 and taken[0].url == base + "/missing"
    assert browser.guard.incidents == ()


async def test_a_failing_test_keeps_its_own_error_with_the_incidents_as_notes(site: Site) -> None:
    base = await site({"/": _page("<script>alert('hello')</script>")})

    async def visit() -> None:
        async with guarded_browser() as browser:
            await (await browser.new_page()).goto(base + "/")
            raise ValueError("the test's own failure")

    with pytest.raises(ValueError, match="the test's own failure") as failed:
        await visit()
    assert any("dialog: alert 'hello'" in note for note in failed.value.__notes__)


INNER_TEST = """
from tests.support.browser import GuardedBrowser, browser_fixture  # noqa: F401


async def test_opens_an_alert(browser: GuardedBrowser) -> None:
    page = await browser.new_page()
    await page.set_content("<p>fine</p>")
    await page.evaluate("alert('from the inner test')")  # returns once the guard dismissed it
"""


async def test_the_browser_fixture_fails_a_test_whose_page_opened_a_dialog(tmp_path: Path) -> None:
    """The inner test's body passes; the fixture's check at teardown fails it (exit code 1, the
    dialog named)."""
    (tmp_path / "test_inner.py").write_text(INNER_TEST)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        *("-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "asyncio_mode=auto", str(tmp_path / "test_inner.py")),
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out = (await asyncio.wait_for(proc.communicate(), 120))[0].decode()
    assert proc.returncode == 1, out
    assert "dialog: alert 'from the inner test'" in out and "1 error" in out, out


async def test_a_missing_chromium_fails_the_test_with_the_install_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(CHROMIUM_ENV, str(tmp_path / "no-chromium"))
    with pytest.raises(pytest.fail.Exception, match=r"apt-get install -y chromium"):  # a failure, not a skip
        async with guarded_browser():
            pass


async def test_the_viewport_is_fixed_and_screenshot_writes_a_png_of_it(
    browser: GuardedBrowser, site: Site, tmp_path: Path
) -> None:
    base = await site({"/": _page("<h1>Queue</h1>")})
    page = await browser.new_page()
    await page.goto(base + "/")
    assert await page.evaluate("[innerWidth, innerHeight, devicePixelRatio]") == [1280, 900, 1]
    shot = await screenshot(page, tmp_path / "docs" / "queue.png")
    png = shot.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and struct.unpack(">II", png[16:24]) == (1280, 900)


@pytest.fixture(params=["sqlite", "postgresql"])
async def database_url(request: pytest.FixtureRequest) -> AsyncIterator[str]:
    """Empty: the agent's own SQLite file; else a fresh PostgreSQL database."""
    if request.param == "sqlite":
        yield ""
        return
    async with fresh_postgres_database() as url:
        yield url


async def test_the_agent_process_answers_gives_working_tokens_and_stops_cleanly(
    tmp_path: Path, database_url: str
) -> None:
    text = config_toml(tmp_path / "data", database_url=database_url)
    async with AgentProcess.start(tmp_path, config_text=text) as agent, aiohttp.ClientSession() as http:
        assert agent.api_url.startswith("http://127.0.0.1:") and agent.ui_url == agent.api_url + "/ui/"
        async with http.get(agent.health_url) as resp:
            assert resp.status == 200 and (await resp.json())["status"] == "ok"
        async with http.get(agent.api_url + "/openapi.json") as resp:
            assert resp.status == 200 and "/v1/targets" in (await resp.json())["paths"]
        async with http.get(agent.api_url + "/v1/targets") as resp:
            assert resp.status == 401, "no token, no targets"
        token = await agent.token(Role.VIEWER, "viewer-1")
        async with http.get(agent.api_url + "/v1/targets", headers={"Authorization": f"Bearer {token}"}) as resp:
            assert resp.status == 200, await resp.text()
        assert agent.events("agent.started")[0]["database"] == ("postgresql" if database_url else "sqlite")
    assert agent.proc.returncode == 0
    assert [e["event"] for e in agent.events()][-2:] == ["agent.stopping", "agent.stopped"]


async def test_an_agent_that_cannot_start_fails_with_its_own_words(tmp_path: Path) -> None:
    text = config_toml(tmp_path / "data", settings={"agent": {"shutdown_grace_s": -1}})
    with pytest.raises(AssertionError, match=r"(?s)exited before logging agent.started.*shutdown_grace_s"):
        async with AgentProcess.start(tmp_path, config_text=text):
            pass


async def test_an_agent_that_died_during_the_test_fails_it(tmp_path: Path) -> None:

    async def run() -> None:
        async with AgentProcess.start(tmp_path) as agent:
            agent.proc.kill()
            await agent.proc.wait()

    with pytest.raises(AssertionError, match=r"exited on its own while the test ran"):
        await run()
