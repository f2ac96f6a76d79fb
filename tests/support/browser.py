"""A real Chromium for browser tests, guarded: whatever a page does that a user would call broken fails the test.

    async def test_login(browser: GuardedBrowser) -> None:      # the `browser` fixture below
        page = await browser.new_page()
        await page.goto(agent.ui_url)
        ...                                                      # teardown: browser.guard.check()

or, outside a fixture, `async with guarded_browser() as browser: ...` (checked at exit).

The guard records, for every page of every context the browser opens: each dialog (alert,
confirm, prompt, beforeunload; dismissed at once), each console message of type error, each
uncaught exception, each Content-Security-Policy violation the console reports, and each
request to a host other than loopback (127.0.0.0/8, ::1, localhost), which is aborted before it
is sent. `guard.check()` raises AssertionError listing them. A test that provokes one on
purpose (a 403 page logs "Failed to load resource") takes it with `guard.expected(...)`, which
also proves it happened.

Two fences keep the browser on the machine: `context.route` aborts and records every request
beyond loopback, and Chromium's proxy is a loopback port that is bound but never listens, so
whatever the route does not see (a WebSocket, the browser's own background traffic) fails to
connect instead of leaving; Chromium never proxies loopback, so the agent is reached directly.

The browser is Debian's `chromium` (/usr/bin/chromium, or $DWEB_TEST_CHROMIUM); the one
Playwright would download cannot be fetched here. A missing browser fails the test with the
command that installs it, never skips it."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import os
import re
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.async_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Dialog,
    Page,
    Playwright,
    Route,
    WebError,
    async_playwright,
)
from playwright.async_api import Error as PlaywrightError

CHROMIUM_ENV = "DWEB_TEST_CHROMIUM"
DEFAULT_CHROMIUM = Path("/usr/bin/chromium")
INSTALL_HINT = f"install it with `apt-get install -y chromium` (as root), or set {CHROMIUM_ENV} to a Chromium binary"
# Fixed so that screenshots in docs/ come out the same on every machine.
VIEWPORT = {"width": 1280, "height": 900}
# A page stuck in an error loop must not fill the test's memory: past this many, incidents are
# only counted. Each text is cut as well (it may be a page's, i.e. anybody's, string).
_MAX_INCIDENTS = 1000
_MAX_TEXT = 500
# The last round trip to each page before the guard is read, so that what the page did before
# the test ended has been reported; a page that does not answer within this is not waited for.
_SETTLE_S = 10.0
_WEBSOCKET_FAILED = re.compile(r"^WebSocket connection to '([^']*)' failed")
_BLOCKED_LOAD = "Failed to load resource: net::ERR_BLOCKED_BY_CLIENT"


class IncidentKind(Enum):
    DIALOG = "dialog"
    CONSOLE_ERROR = "console error"
    PAGE_ERROR = "uncaught exception"
    CSP_VIOLATION = "Content-Security-Policy violation"
    OUTSIDE_REQUEST = "request beyond loopback (aborted)"


@dataclass(frozen=True)
class Incident:
    kind: IncidentKind
    text: str
    url: str  # the page it happened on; for a request, the address it asked for

    def __str__(self) -> str:
        return f"{self.kind.value}: {self.text} (at {self.url or 'no page'})"


def is_loopback_url(url: str) -> bool:
    """Whether `url` names this machine: localhost, 127.0.0.0/8 or ::1 (data:, blob: and about:
    URLs have no host and never reach the network; they count as local)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https", "ws", "wss"):
        return True
    host = (parts.hostname or "").rstrip(".").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _cut(text: str) -> str:
    return text if len(text) <= _MAX_TEXT else text[:_MAX_TEXT] + f"... ({len(text)} characters)"


class Guard:
    """What went wrong in the browser's pages so far (see the module docstring)."""

    def __init__(self) -> None:
        self._incidents: list[Incident] = []
        self._dropped = 0
        # Requests the route aborted: Chromium logs each again as a failed load, said once here.
        self._aborted: set[str] = set()

    @property
    def incidents(self) -> tuple[Incident, ...]:
        return tuple(self._incidents)

    def record(self, kind: IncidentKind, text: str, url: str) -> None:
        if len(self._incidents) >= _MAX_INCIDENTS:
            self._dropped += 1
            return
        self._incidents.append(Incident(kind, _cut(text), _cut(url)))

    def expected(self, kind: IncidentKind, contains: str = "") -> list[Incident]:
        """Remove and return the incidents of `kind` whose text holds `contains`: a test that
        provokes them on purpose asserts the list is not empty, and they no longer fail it."""
        taken = [i for i in self._incidents if i.kind is kind and contains in i.text]
        self._incidents = [i for i in self._incidents if i not in taken]
        return taken

    def check(self) -> None:
        """Raise AssertionError naming every incident (none: return)."""
        if not self._incidents:
            return
        lines = [f"the browser saw {len(self._incidents) + self._dropped} thing(s) a user would call broken:"]
        lines += [f"  - {i}" for i in self._incidents]
        if self._dropped:
            lines.append(f"  ... and {self._dropped} more not kept")
        raise AssertionError("\n".join(lines))

    def watch(self, context: BrowserContext) -> None:
        context.on("dialog", self._on_dialog)
        context.on("console", self._on_console)
        context.on("weberror", self._on_web_error)

    async def fence(self, context: BrowserContext) -> None:
        await context.route(lambda url: not is_loopback_url(url), self._on_outside)

    async def _on_dialog(self, dialog: Dialog) -> None:
        self.record(IncidentKind.DIALOG, f"{dialog.type} {dialog.message!r}", dialog.page.url if dialog.page else "")
        # The page is blocked until the dialog goes; a closed page has no dialog left to dismiss.
        with contextlib.suppress(PlaywrightError):
            await dialog.dismiss()

    def _on_console(self, message: ConsoleMessage) -> None:
        text = message.text
        where = message.page.url if message.page else message.location.get("url", "")
        if message.type in ("error", "warning") and "Content Security Policy" in text:
            self.record(IncidentKind.CSP_VIOLATION, text, where)
            return
        if message.type != "error":
            return
        if text.startswith(_BLOCKED_LOAD) and message.location.get("url", "") in self._aborted:
            return  # the route's abort, recorded as the request it was
        if (ws := _WEBSOCKET_FAILED.match(text)) and not is_loopback_url(ws.group(1)):
            # A WebSocket is not routed; the proxy fence made it fail, and this is its trace.
            self.record(IncidentKind.OUTSIDE_REQUEST, f"WebSocket {ws.group(1)}", ws.group(1))
            return
        self.record(IncidentKind.CONSOLE_ERROR, text, where)

    def _on_web_error(self, error: WebError) -> None:
        exc = error.error
        self.record(IncidentKind.PAGE_ERROR, f"{exc.name}: {exc.message}", error.page.url if error.page else "")

    async def _on_outside(self, route: Route) -> None:
        request = route.request
        self._aborted.add(request.url)
        self.record(IncidentKind.OUTSIDE_REQUEST, f"{request.method} {request.url}", request.url)
        await route.abort("blockedbyclient")


class GuardedBrowser:
    """A launched Chromium whose every context is guarded by one `guard` and kept on loopback."""

    def __init__(self, browser: Browser, guard: Guard) -> None:
        self.browser = browser
        self.guard = guard
        self._contexts: list[BrowserContext] = []

    async def new_context(self, *, base_url: str | None = None) -> BrowserContext:
        """A fresh profile (its own cookies: one per user a test logs in), fixed viewport, UTC,
        English, light, no animations; service workers blocked so no request escapes the route."""
        context = await self.browser.new_context(
            viewport={"width": VIEWPORT["width"], "height": VIEWPORT["height"]},
            device_scale_factor=1,
            locale="en-US",
            timezone_id="UTC",
            color_scheme="light",
            reduced_motion="reduce",
            service_workers="block",
            accept_downloads=True,
            base_url=base_url,
        )
        self.guard.watch(context)
        await self.guard.fence(context)
        self._contexts.append(context)
        return context

    async def new_page(self, *, base_url: str | None = None) -> Page:
        """A page in a context of its own."""
        return await (await self.new_context(base_url=base_url)).new_page()

    async def settle(self) -> None:
        """One round trip to every open page, so what each did before now has been reported."""
        for context in self._contexts:
            for page in context.pages:
                if page.is_closed():
                    continue
                # A page navigating away or closing meanwhile has nothing more to tell.
                with contextlib.suppress(PlaywrightError, TimeoutError):
                    await asyncio.wait_for(page.evaluate("0"), _SETTLE_S)


def chromium_path() -> Path:
    return Path(os.environ.get(CHROMIUM_ENV) or DEFAULT_CHROMIUM)


def _require_chromium() -> Path:
    path = chromium_path()
    if not (path.is_file() and os.access(path, os.X_OK)):
        pytest.fail(f"no Chromium at {path}: {INSTALL_HINT}", pytrace=False)
    return path


async def _launch(playwright: Playwright, path: Path, proxy_port: int) -> Browser:
    args = [f"--proxy-server=http://127.0.0.1:{proxy_port}"]
    if os.geteuid() == 0:  # Chromium refuses to run as root with its sandbox on
        args.append("--no-sandbox")
    try:
        return await playwright.chromium.launch(executable_path=str(path), headless=True, args=args)
    except PlaywrightError as exc:
        pytest.fail(f"Chromium at {path} did not start ({exc.message.strip()}); {INSTALL_HINT}", pytrace=False)


@contextlib.asynccontextmanager
async def guarded_browser() -> AsyncIterator[GuardedBrowser]:
    """A headless Chromium; at exit every page is settled, the browser closed and the guard
    checked (when the body raised, the incidents are added to its error instead)."""
    path = _require_chromium()
    # The proxy fence: bound, so no test server can take the port, and never listening, so
    # every connection to it is refused at once.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as fence:
        fence.bind(("127.0.0.1", 0))
        async with async_playwright() as playwright:
            guarded = GuardedBrowser(await _launch(playwright, path, fence.getsockname()[1]), Guard())
            try:
                yield guarded
            except BaseException as exc:
                await guarded.settle()
                for incident in guarded.guard.incidents:
                    exc.add_note(f"browser: {incident}")
                raise
            else:
                await guarded.settle()
            finally:
                await guarded.browser.close()
            guarded.guard.check()


# Named `browser` for the tests that ask for it; defined under another name so that a module
# importing it (`from tests.support.browser import browser_fixture`) has no `browser` of its own
# for a test's parameter to shadow.
@pytest.fixture(name="browser")
async def browser_fixture() -> AsyncIterator[GuardedBrowser]:
    """A guarded Chromium for one test; the test fails at teardown if the guard recorded anything."""
    async with guarded_browser() as guarded:
        yield guarded


async def screenshot(page: Page, path: Path, *, full_page: bool = False) -> Path:
    """A PNG of `page` for docs/: fonts loaded, animations stopped and the caret hidden, so the
    same page gives the same picture."""
    path.parent.mkdir(parents=True, exist_ok=True)
    await page.evaluate("document.fonts.ready.then(() => true)")
    await page.screenshot(path=str(path), full_page=full_page, animations="disabled", caret="hide", scale="css")
    return path
