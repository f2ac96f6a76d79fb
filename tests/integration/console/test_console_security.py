"""The console's defences, over HTTP on SQLite and PostgreSQL: the headers on every answer,
the session cookie, logins (bad, platform and revoked tokens, the form's nonce, the
failed-login limit, where a login may send the browser), sessions ending (idle, revoked,
logged out), every POST's origin and CSRF checks, roles on every POST page, the audit
trail, the form size limit, and a session id that never reaches a URL or the log."""

from __future__ import annotations

import io
import logging
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.cookies import Morsel, SimpleCookie
from typing import Any

import aiohttp
import pytest
import structlog
from aiohttp import web
from multidict import CIMultiDictProxy
from yarl import URL

from agent.api.app import build_app
from agent.api.context import ApiContext
from agent.config import Settings
from agent.console import mount_console
from agent.console.pages import PAGES
from agent.console.pages.login import LOGIN_COOKIE
from agent.console.routing import MAX_FORM_BYTES, READERS, SESSION_COOKIE
from agent.lists.catalog import ListCatalog
from agent.model.access import AuditEntry, Principal, Role
from agent.observability import configure_logging
from agent.services import Services
from agent.services.matching import MatchService
from agent.services.sessions import SessionsService
from agent.store import Store
from tests.support.api import ApiServer, api_server
from tests.support.console import ConsoleUser, hidden_inputs

EVIL = "https://evil.example"


@dataclass(frozen=True)
class Answer:
    """One answer as it came, redirects not followed."""

    status: int
    headers: CIMultiDictProxy[str]
    text: str

    def cookies(self) -> dict[str, Morsel[str]]:
        jar: SimpleCookie = SimpleCookie()
        for header in self.headers.getall("Set-Cookie", []):
            jar.load(header)
        return dict(jar)


async def raw(
    session: aiohttp.ClientSession,
    method: str,
    url: str,
    data: Mapping[str, str] | bytes | None = None,
    headers: Mapping[str, str] | None = None,
) -> Answer:
    async with session.request(method, url, data=data, headers=headers, allow_redirects=False) as r:
        return Answer(r.status, r.headers, await r.text(errors="replace"))


def settings_with(**console: Any) -> Settings:
    base = Settings()
    return base.model_copy(update={"console": base.console.model_copy(update=console)})


def session_id(user: ConsoleUser) -> str:
    return user.session.cookie_jar.filter_cookies(URL(user.base + "/ui/"))[SESSION_COOKIE].value


async def login_answer(
    session: aiohttp.ClientSession,
    base: str,
    token: str,
    *,
    fields: Mapping[str, str] | None = None,
    form_path: str = "/ui/login",
) -> Answer:
    """The login form fetched and posted with `token` (and `fields` over its hidden ones)."""
    form = await raw(session, "GET", base + form_path)
    sent = {**hidden_inputs(form.text), "token": token, **(fields or {})}
    return await raw(session, "POST", base + "/ui/login", sent, {"Origin": base})


async def principal_of(api: ApiServer, token: str) -> Principal:
    principal = await api.services.tokens.authenticate(token)
    assert principal is not None
    return principal


class Clock:
    """A wall clock for sessions and a monotonic one for the login limiter, moved by hand."""

    def __init__(self) -> None:
        self.at = datetime(2026, 3, 1, 12, tzinfo=UTC)
        self.mono = 1000.0

    def now(self) -> datetime:
        return self.at

    def monotonic(self) -> float:
        return self.mono

    def advance(self, seconds: float) -> None:
        self.at += timedelta(seconds=seconds)
        self.mono += seconds


def timed_sessions(api: ApiServer, clock: Clock) -> None:
    """The console's sessions on `clock` (the pages read them from the services at each request)."""
    api.services.sessions = SessionsService(api.store, api.services.tokens, api.settings.console, now=clock.now)


@dataclass
class Console:
    url: str
    services: Services


PEER = "X-Test-Peer"


@asynccontextmanager
async def console_from_peers(store: Store, settings: Settings, clock: Clock) -> AsyncIterator[Console]:
    """The API and console as api_server serves them, but on `clock`, and with the caller's
    address taken from a test header: a client on 127.0.0.1 cannot choose its socket's address."""
    services = Services(settings, store)
    services.sessions = SessionsService(store, services.tokens, settings.console, now=clock.now)

    def peer(request: web.Request) -> str | None:
        return request.headers.get(PEER, request.remote)

    context = ApiContext(
        settings,
        services,
        services.tokens,
        services.audit,
        matcher=MatchService(ListCatalog.empty, None, settings),
        clock=clock.monotonic,
        remote_of=peer,
    )
    app = build_app(context)
    mount_console(app, context)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    try:
        yield Console(f"http://{host}:{port}", services)
    finally:
        await services.tokens.flush()
        await runner.cleanup()


def assert_secure_headers(answer: Answer, what: str, *, cached: bool = False) -> None:
    csp = answer.headers.get("Content-Security-Policy", "")
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp, what
    assert "default-src 'none'" in csp and "script-src 'self'" in csp and "style-src 'self'" in csp, what
    assert "frame-ancestors 'none'" in csp, what
    assert answer.headers.get("X-Content-Type-Options") == "nosniff", what
    assert answer.headers.get("X-Frame-Options") == "DENY", what
    if not cached:
        assert answer.headers.get("Cache-Control") == "no-store", what


async def test_every_console_answer_carries_the_csp_nosniff_no_framing_and_no_store(store: Store) -> None:
    """Pages, redirects, error pages (401, 403, 404, 405, 413, 422), the login form and its
    refusals, and the static files (which alone may be cached) all carry the headers."""
    async with api_server(store, console=True) as api:
        token = await api.token(Role.VIEWER)
        async with ConsoleUser.anonymous(api.url) as anonymous:
            s, base = anonymous.session, api.url
            answers = {
                "login form": await raw(s, "GET", base + "/ui/login"),
                "front door": await raw(s, "GET", base + "/ui/"),
                "logged-out page": await raw(s, "GET", base + "/ui/settings"),
                "logged-out post": await raw(s, "POST", base + "/ui/settings", {"csrf": "x"}),
                "bad login": await login_answer(s, base, "dwa_" + "x" * 43),
                "unknown page, logged out": await raw(s, "GET", base + "/ui/no-such-page"),
            }
            static = {
                "script": await raw(s, "GET", base + "/ui/static/console.js"),
                "style": await raw(s, "GET", base + "/ui/static/console.css"),
            }
            missing_static = await raw(s, "GET", base + "/ui/static/no-such.css")
        async with ConsoleUser.login(api.url, token) as user:
            s = user.session
            answers |= {
                "page": await raw(s, "GET", base + "/ui/settings"),
                "report": await raw(s, "GET", base + "/ui/report"),
                "bad dates": await raw(s, "GET", base + "/ui/report?since=x"),
                "csv": await raw(s, "GET", base + "/ui/report.csv"),
                "unknown page": await raw(s, "GET", base + "/ui/no-such-page"),
                "wrong method": await raw(s, "POST", base + "/ui/report", {"csrf": user.csrf}, {"Origin": base}),
                "forged post": await raw(s, "POST", base + "/ui/settings", {"csrf": "wrong"}, {"Origin": base}),
                "large form": await raw(
                    s, "POST", base + "/ui/settings", {"csrf": user.csrf, "x": "y" * MAX_FORM_BYTES}
                ),
                "saved": await raw(s, "POST", base + "/ui/settings", {"csrf": user.csrf}, {"Origin": base}),
            }
    for what, answer in answers.items():
        assert_secure_headers(answer, what)
    for what, answer in static.items():
        assert answer.status == 200, what
        assert_secure_headers(answer, what, cached=True)
    assert missing_static.status == 404
    assert_secure_headers(missing_static, "missing static file", cached=True)
    assert answers["saved"].status == 303 and answers["forged post"].status == 403
    assert answers["large form"].status == 413 and answers["bad dates"].status == 422


@pytest.mark.parametrize("secure", [False, True])
async def test_the_session_cookie_is_httponly_strict_scoped_to_the_console_and_secure_when_set(
    store: Store, secure: bool
) -> None:
    """The session and login-form cookies are HttpOnly, SameSite=Strict, Path=/ui/, and
    Secure exactly when [console] secure_cookie is set (the agent behind a TLS proxy)."""
    async with (
        api_server(store, settings_with(secure_cookie=secure), console=True) as api,
        # No jar: a client keeps a Secure cookie for https only, and this server is http.
        aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as s,
    ):
        form = await raw(s, "GET", api.url + "/ui/login")
        nonce = form.cookies()[LOGIN_COOKIE].value
        fields = {**hidden_inputs(form.text), "token": await api.token(Role.INVESTIGATOR)}
        headers = {"Origin": api.url, "Cookie": f"{LOGIN_COOKIE}={nonce}"}
        answer = await raw(s, "POST", api.url + "/ui/login", fields, headers)
    assert answer.status == 303
    for name, morsel in [
        (LOGIN_COOKIE, form.cookies()[LOGIN_COOKIE]),
        (SESSION_COOKIE, answer.cookies()[SESSION_COOKIE]),
    ]:
        assert morsel["httponly"] is True, name
        assert morsel["samesite"] == "Strict", name
        assert morsel["path"] == "/ui/", name
        assert bool(morsel["secure"]) is secure, name
    assert not answer.cookies()[SESSION_COOKIE]["max-age"], "a session cookie ends with the browser"


async def test_a_bad_token_gets_the_login_page_with_401_and_no_session(store: Store) -> None:
    """An unknown token, a malformed one and an empty one: 401, the form again with the
    message, no session cookie, and the console still closed."""
    async with api_server(store, console=True) as api, ConsoleUser.anonymous(api.url) as user:
        for token in ("dwa_" + "Z" * 43, "not a token", "   ", "x" * 600):
            answer = await login_answer(user.session, api.url, token)
            assert answer.status == 401, token
            assert 'role="alert"' in answer.text and 'name="token"' in answer.text
            assert SESSION_COOKIE not in answer.cookies()
        page = await user.get("/ui/settings")
    assert page.url.startswith(api.url + "/ui/login")


async def test_a_platform_token_cannot_log_in(store: Store) -> None:
    """A platform's API token is refused at the login form (401, said why), no session."""
    async with api_server(store, console=True) as api, ConsoleUser.anonymous(api.url) as user:
        answer = await login_answer(user.session, api.url, await api.token(Role.PLATFORM))
        page = await user.get("/ui/settings")
    assert answer.status == 401 and "a platform token is for the API" in answer.text
    assert SESSION_COOKIE not in answer.cookies()
    assert page.url.startswith(api.url + "/ui/login")


async def test_a_revoked_tokens_session_ends_at_its_next_request(store: Store) -> None:
    """Revoking the token (through the tokens service, as the CLI and API do) ends the
    session it opened: the next page goes to the login form, the next form is refused."""
    async with api_server(store, console=True) as api:
        made = await api.tokens.add(Role.INVESTIGATOR, "ana")
        async with ConsoleUser.login(api.url, made.token) as user:
            assert (await user.get("/ui/settings")).status == 200
            csrf = user.csrf
            await api.services.tokens.revoke(made.row.id)
            page = await user.get("/ui/settings")
            posted = await user.post("/ui/settings", {"csrf": csrf, "blur_previews": "1"})
    assert page.url.startswith(api.url + "/ui/login")
    assert posted.status == 401 and "log in again" in posted.text


async def test_an_idle_session_ends_and_a_used_one_lives_until_its_ceiling(store: Store) -> None:
    """A session unused for longer than session_idle_s ends; one used within it goes on,
    but never past session_max_s after its login."""
    clock = Clock()
    settings = settings_with(session_idle_s=600.0, session_max_s=3000.0)
    async with api_server(store, settings, console=True) as api:
        timed_sessions(api, clock)
        token = await api.token(Role.VIEWER)
        async with ConsoleUser.login(api.url, token) as idle:
            clock.advance(601)
            assert (await idle.get("/ui/settings")).url.startswith(api.url + "/ui/login")
        async with ConsoleUser.login(api.url, token) as busy:
            for _ in range(4):  # 2,400 s in all, never 600 s idle
                clock.advance(599)
                assert (await busy.get("/ui/settings")).status == 200
            clock.advance(599)  # 2,995 s after login: still within the ceiling
            assert (await busy.get("/ui/settings")).status == 200
            clock.advance(10)  # 3,005 s: past session_max_s however busy
            assert (await busy.get("/ui/settings")).url.startswith(api.url + "/ui/login")


async def test_logout_ends_the_session_on_the_server(store: Store) -> None:
    """After logging out, the old cookie (replayed by another client) opens nothing and the
    logout is in the audit trail; a logout without the form's token is refused (403, as a
    page) and ends nothing."""
    async with api_server(store, console=True) as api:
        async with ConsoleUser.login(api.url, await api.token(Role.INVESTIGATOR, "ivan")) as user:
            old = session_id(user)
            refused = await raw(user.session, "POST", api.url + "/ui/logout", {"csrf": "wrong"}, {"Origin": api.url})
            assert refused.status == 403 and refused.headers["Content-Type"].startswith("text/html")
            assert (await user.get("/ui/settings")).status == 200
            out = await user.post("/ui/logout", {})
            assert out.url == api.url + "/ui/login"
            trail = [(e.action, e.principal) for e in await api.services.audit.recent(limit=10)]
            assert ("POST /ui/logout", "ivan") in trail and ("POST /ui/login", "ivan") in trail
        async with aiohttp.ClientSession() as replay:
            answer = await raw(replay, "GET", api.url + "/ui/settings", headers={"Cookie": f"{SESSION_COOKIE}={old}"})
            posted = await raw(
                replay, "POST", api.url + "/ui/settings", {"csrf": user.csrf}, {"Cookie": f"{SESSION_COOKIE}={old}"}
            )
    assert answer.status == 303 and answer.headers["Location"].startswith("/ui/login")
    assert posted.status == 401


@pytest.mark.parametrize(
    ("fields", "headers", "why"),
    [
        ({}, {}, "no CSRF token"),
        ({"csrf": "not-the-token"}, {}, "a wrong CSRF token"),
        ({"csrf": ""}, {}, "an empty CSRF token"),
        (None, {"Origin": EVIL}, "another site's Origin"),
        (None, {"Origin": "null"}, "an opaque Origin"),
        (None, {"Sec-Fetch-Site": "cross-site"}, "Sec-Fetch-Site cross-site"),
        (None, {"Sec-Fetch-Site": "same-site"}, "Sec-Fetch-Site same-site (a sibling subdomain)"),
    ],
)
async def test_a_forged_form_is_refused_and_changes_nothing(
    store: Store, fields: dict[str, str] | None, headers: dict[str, str], why: str
) -> None:
    """A POST without the session's CSRF token, or from another site even with the right
    token, is a 403 page; the setting it would change stays as it was."""
    async with api_server(store, console=True) as api:
        token = await api.token(Role.ADMIN, "ada")
        async with ConsoleUser.login(api.url, token) as user:
            sent = {"blur_previews": "0", **(fields if fields is not None else {"csrf": user.csrf})}
            answer = await raw(user.session, "POST", api.url + "/ui/settings", sent, {"Origin": api.url, **headers})
            control = await user.post("/ui/settings", {"blur_previews": "1"})
        prefs = await api.services.sessions.preferences(await principal_of(api, token))
    assert answer.status == 403, why
    assert 'role="alert"' in answer.text and answer.headers["Content-Type"].startswith("text/html")
    assert control.status == 200 and prefs.blur_previews is True  # only the genuine form took effect


@pytest.mark.parametrize("scheme", ["http", "https"])
async def test_a_genuine_form_from_a_browser_passes_the_origin_check(store: Store, scheme: str) -> None:
    """The same POST with this site's Origin and Sec-Fetch-Site same-origin (what a browser
    sends from the console's own page) is accepted and takes effect; so is the https origin
    of this host, which is what the agent sees behind a TLS proxy."""
    async with api_server(store, console=True) as api:
        token = await api.token(Role.ADMIN)
        async with ConsoleUser.login(api.url, token) as user:
            origin = api.url.replace("http://", f"{scheme}://")
            headers = {"Origin": origin, "Sec-Fetch-Site": "same-origin"}
            answer = await raw(user.session, "POST", api.url + "/ui/settings", {"csrf": user.csrf}, headers)
        prefs = await api.services.sessions.preferences(await principal_of(api, token))
    assert answer.status == 303 and answer.headers["Location"] == "/ui/settings?saved=1"
    assert prefs.blur_previews is False


@pytest.mark.parametrize(
    ("cookie", "sent", "headers"),
    [
        (None, "from-the-form", {}),
        ("kept", "another", {}),
        ("kept", None, {}),
        ("kept", "kept", {"Origin": EVIL}),
    ],
)
async def test_a_login_without_its_forms_nonce_or_from_another_site_is_refused(
    store: Store, cookie: str | None, sent: str | None, headers: dict[str, str]
) -> None:
    """The login form's nonce must come back in both its cookie and its field, from this
    site: otherwise 403 and no session, even with a good token (login CSRF)."""
    async with api_server(store, console=True) as api:
        token = await api.token(Role.ADMIN)
        async with aiohttp.ClientSession() as s:  # no jar: the test sets the cookie itself
            fields = {"token": token, "next": "/ui/findings", **({"login_nonce": sent} if sent else {})}
            sent_headers = {"Origin": api.url, **headers, **({"Cookie": f"{LOGIN_COOKIE}={cookie}"} if cookie else {})}
            answer = await raw(s, "POST", api.url + "/ui/login", fields, sent_headers)
    assert answer.status == 403
    assert SESSION_COOKIE not in answer.cookies()


async def test_failed_logins_are_limited_per_address_and_refilled_with_time(store: Store) -> None:
    """After login_burst failures from one address even a good token gets 429 there, while
    another address logs in; time refills the bucket; good logins spend none of it."""
    clock = Clock()
    settings = settings_with(login_burst=3, login_per_min=6.0)  # one attempt back each 10 s
    async with console_from_peers(store, settings, clock) as console:
        good = (await console.services.tokens.add(Role.INVESTIGATOR)).token
        bad = "dwa_" + "Q" * 43
        async with ConsoleUser.anonymous(console.url) as user:
            user.session.headers[PEER] = "192.0.2.1"
            for _ in range(5):  # good logins in between cost nothing
                assert (await login_answer(user.session, console.url, good)).status == 303
            for _ in range(3):
                assert (await login_answer(user.session, console.url, bad)).status == 401
            limited = await login_answer(user.session, console.url, good)
            user.session.headers[PEER] = "192.0.2.2"
            elsewhere = await login_answer(user.session, console.url, good)
            user.session.headers[PEER] = "192.0.2.1"
            clock.advance(9)
            still = await login_answer(user.session, console.url, good)
            clock.advance(2)
            later = await login_answer(user.session, console.url, good)
    assert limited.status == 429 and "too many failed logins" in limited.text
    assert SESSION_COOKIE not in limited.cookies()
    assert elsewhere.status == 303 and SESSION_COOKIE in elsewhere.cookies()
    assert still.status == 429
    assert later.status == 303


@pytest.mark.parametrize(
    "target",
    [
        "//evil.example",
        "https://evil.example",
        "/ui/../x",
        "/ui/%2e%2e/v1/targets",
        "/ui/.%2E/x",
        "\\\\evil.example",
        "/\\evil.example",
        "/ui/\\..\\x",
        "javascript:alert(1)",
        "/ui/x\r\nSet-Cookie: a=b",
        "/ui/\t/x",
        "",
    ],
)
async def test_a_login_never_sends_the_browser_outside_the_console(store: Store, target: str) -> None:
    """`next=` naming another site, a path outside /ui/ (dot segments, encoded or not,
    backslashes), a script URL or a header injection lands on /ui/findings instead."""
    async with api_server(store, console=True) as api:
        token = await api.token(Role.VIEWER)
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as s:
            form = await raw(s, "GET", str(URL(api.url + "/ui/login").with_query(next=target)))
            shown = hidden_inputs(form.text)["next"]
            posted = await login_answer(s, api.url, token, fields={"next": target})
    assert shown == "/ui/findings"
    assert posted.status == 303 and posted.headers["Location"] == "/ui/findings"


async def test_a_login_returns_to_the_console_page_that_asked_for_it(store: Store) -> None:
    """A page opened logged out sends to the login form, which returns to it (query kept)."""
    async with api_server(store, console=True) as api, ConsoleUser.anonymous(api.url) as user:
        first = await raw(user.session, "GET", api.url + "/ui/report?since=2026-03-01&until=2026-03-31")
        form = await raw(user.session, "GET", api.url + first.headers["Location"])
        token = await api.token(Role.VIEWER)
        answer = await login_answer(user.session, api.url, token, form_path=first.headers["Location"])
    assert first.status == 303
    assert hidden_inputs(form.text)["next"] == "/ui/report?since=2026-03-01&until=2026-03-31"
    assert answer.headers["Location"] == "/ui/report?since=2026-03-01&until=2026-03-31"


async def test_an_unknown_console_page_sends_to_login_or_answers_a_404_page(store: Store) -> None:
    """Logged out, an unknown /ui/ path goes to the login form; logged in, it is the
    console's own 404 page (HTML, with the navigation), never the API's JSON problem."""
    async with api_server(store, console=True) as api:
        async with ConsoleUser.anonymous(api.url) as anonymous:
            out = await raw(anonymous.session, "GET", api.url + "/ui/no/such/page")
        async with ConsoleUser.login(api.url, await api.token(Role.VIEWER)) as user:
            missing = await raw(user.session, "GET", api.url + "/ui/no/such/page")
            number = await raw(user.session, "GET", api.url + "/ui/findings/99999999999999999999")
    assert out.status == 303 and out.headers["Location"].startswith("/ui/login?next=/ui/no/such/page")
    for answer in (missing, number):
        assert answer.status == 404
        assert answer.headers["Content-Type"].startswith("text/html")
        assert "<h1>Not found</h1>" in answer.text and 'action="/ui/logout"' in answer.text


async def test_every_post_through_the_pipeline_is_in_the_audit_trail_with_its_principal(store: Store) -> None:
    """A saved form, a forged one and one refused for its origin are each recorded with the
    reviewer's name, role, token and the answer's status; the login is recorded too."""
    async with api_server(store, console=True) as api:
        made = await api.tokens.add(Role.VIEWER, "vera")
        async with ConsoleUser.login(api.url, made.token) as user:
            await raw(user.session, "POST", api.url + "/ui/settings", {"csrf": user.csrf}, {"Origin": api.url})
            await raw(user.session, "POST", api.url + "/ui/settings", {"csrf": "no"}, {"Origin": api.url})
            await raw(user.session, "POST", api.url + "/ui/settings", {"csrf": user.csrf}, {"Origin": EVIL})
        trail = await api.services.audit.recent(principal="vera")
    entries = [(row.action, row.status, row.role, row.token_id, row.resource) for row in reversed(trail)]
    assert entries == [
        ("POST /ui/login", 303, Role.VIEWER, made.row.id, None),
        ("POST /ui/settings", 303, Role.VIEWER, made.row.id, "preferences"),
        ("POST /ui/settings", 403, Role.VIEWER, made.row.id, "preferences"),
        ("POST /ui/settings", 403, Role.VIEWER, made.row.id, "preferences"),
    ]
    assert all(row.remote == "127.0.0.1" for row in trail)


@pytest.fixture
def log_stream() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    out = io.StringIO()
    configure_logging("debug", stream=out, json=True)
    yield out
    root.handlers[:] = handlers
    root.setLevel(level)
    logging.captureWarnings(False)
    structlog.reset_defaults()


async def test_a_session_id_never_appears_in_a_url_or_the_log(
    store: Store, log_stream: io.StringIO, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through a login, pages, forms (one whose audit entry fails and is logged), refusals
    and a logout, no URL, no redirect and no log line holds the session id or its CSRF token."""
    async with (
        api_server(store, console=True) as api,
        ConsoleUser.login(api.url, await api.token(Role.ADMIN, "ada")) as user,
    ):
        sid, csrf = session_id(user), user.csrf
        urls = [(await user.get(path)).url for path in ("/ui/settings", "/ui/report", "/ui/no-such")]
        urls.append((await user.post("/ui/settings", {"blur_previews": "1"})).url)
        await raw(user.session, "POST", api.url + "/ui/settings", {"csrf": "wrong"})

        async def lost(_entry: AuditEntry) -> None:
            raise RuntimeError("the audit table is gone")

        monkeypatch.setattr(api.audit, "record", lost)
        urls.append((await user.post("/ui/settings", {"blur_previews": "0"})).url)
        monkeypatch.undo()
        out = await raw(user.session, "POST", api.url + "/ui/logout", {"csrf": csrf}, {"Origin": api.url})
    logged = log_stream.getvalue()
    assert "audit entry not recorded" in logged and "POST /ui/settings" in logged  # the log was captured
    assert sid not in logged and csrf not in logged
    assert all(sid not in url and csrf not in url for url in urls)
    assert sid not in out.headers.get("Location", "")


async def test_a_bug_behind_a_page_answers_a_bare_500_page_logged_without_the_session(
    store: Store, log_stream: io.StringIO, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An unexpected error in a handler gives the console's 500 page (HTML, with the headers)
    that says nothing of the error; the log names the path and the error type only."""
    async with (
        api_server(store, console=True) as api,
        ConsoleUser.login(api.url, await api.token(Role.VIEWER)) as user,
    ):

        async def broken(_period: object) -> None:
            raise RuntimeError("internal state /var/lib/secret")

        monkeypatch.setattr(api.services.transparency, "report", broken)
        answer = await raw(user.session, "GET", api.url + "/ui/report")
        sid = session_id(user)
    assert answer.status == 500 and answer.headers["Content-Type"].startswith("text/html")
    assert_secure_headers(answer, "500 page")
    assert "could not answer this request" in answer.text
    assert "secret" not in answer.text and "RuntimeError" not in answer.text
    logged = log_stream.getvalue()
    assert "console request failed" in logged and "/ui/report" in logged
    assert sid not in logged


@pytest.mark.parametrize("chunked", [False, True])
async def test_a_form_larger_than_the_limit_is_refused_with_413(store: Store, chunked: bool) -> None:
    """A form over MAX_FORM_BYTES is a 413 page and changes nothing, whether it declares its
    length or streams it in chunks."""
    async with api_server(store, console=True) as api:
        token = await api.token(Role.ADMIN)
        async with ConsoleUser.login(api.url, token) as user:
            body = f"csrf={user.csrf}&blur_previews=0&note={'n' * MAX_FORM_BYTES}".encode()

            async def chunks() -> AsyncIterator[bytes]:
                for at in range(0, len(body), 8192):
                    yield body[at : at + 8192]

            headers = {"Origin": api.url, "Content-Type": "application/x-www-form-urlencoded"}
            async with user.session.post(
                api.url + "/ui/settings", data=chunks() if chunked else body, headers=headers, allow_redirects=False
            ) as r:
                status, kind, text = r.status, r.headers["Content-Type"], await r.text()
        prefs = await api.services.sessions.preferences(await principal_of(api, token))
    assert status == 413 and kind.startswith("text/html")
    assert f"larger than {MAX_FORM_BYTES} bytes" in text
    assert prefs.blur_previews is True


def _example(path: str) -> str:
    """A page path with each {param} filled with 1."""
    import re

    return re.sub(r"\{\w+\}", "1", path)


POST_PAGES = [page for page in PAGES if page.method == "POST"]


def test_every_post_page_declares_one_of_the_apis_role_sets() -> None:
    """A POST page is for readers (a reviewer's own settings), writers or admins only, and
    never for a platform token."""
    allowed = {READERS, frozenset({Role.ADMIN, Role.INVESTIGATOR}), frozenset({Role.ADMIN})}
    for page in POST_PAGES:
        assert page.roles in allowed, page.path
        assert Role.PLATFORM not in page.roles, page.path


async def test_every_post_page_refuses_a_forged_form_and_a_viewer(store: Store) -> None:
    """Each POST page of every area (as pages are added): without the CSRF token even an
    admin is refused (403); with a valid token a viewer is refused (403) unless the page is
    for all readers; each refusal is in the audit trail."""
    async with api_server(store, console=True) as api:
        async with (
            ConsoleUser.login(api.url, await api.token(Role.ADMIN, "ada")) as admin,
            ConsoleUser.login(api.url, await api.token(Role.VIEWER, "vic")) as viewer,
        ):
            for page in POST_PAGES:
                url = api.url + "/ui" + _example(page.path)
                forged = await raw(admin.session, "POST", url, {"x": "1"}, {"Origin": api.url})
                assert forged.status == 403, page.path
                assert "security token" in forged.text, page.path
                if page.roles == READERS:
                    continue
                refused = await raw(viewer.session, "POST", url, {"csrf": viewer.csrf}, {"Origin": api.url})
                assert refused.status == 403, page.path
                assert "the viewer role may not do this" in refused.text, page.path
                assert 'type="submit"' not in refused.text.split("</header>", 1)[1], page.path
        trail = await api.services.audit.recent(limit=500)
    refusals = {(row.principal, row.action) for row in trail if row.status == 403}
    for page in POST_PAGES:
        assert ("ada", f"POST /ui{page.path}") in refusals
        if page.roles != READERS:
            assert ("vic", f"POST /ui{page.path}") in refusals
    assert POST_PAGES, "the console has POST pages (settings at least)"


async def test_every_get_page_needs_a_session(store: Store) -> None:
    """Each GET page of every area, opened without a session, sends to the login form."""
    async with api_server(store, console=True) as api, ConsoleUser.anonymous(api.url) as anonymous:
        for page in (p for p in PAGES if p.method == "GET"):
            answer = await raw(anonymous.session, "GET", api.url + "/ui" + _example(page.path))
            assert answer.status == 303 and answer.headers["Location"].startswith("/ui/login?next="), page.path
