"""A console user without a browser: an aiohttp client with its own cookie jar that logs in
through the login form and posts the pages' forms with their CSRF token, as a browser would.

    async with api_server(store, console=True) as api:
        async with ConsoleUser.login(api.url, await api.token(Role.INVESTIGATOR)) as user:
            page = await user.get("/ui/findings")
            answer = await user.post("/ui/findings/1/review", {"verdict": "confirmed"})
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from html.parser import HTMLParser

import aiohttp


class _Inputs(HTMLParser):
    """The hidden inputs of a page (name -> value), the last one of each name winning."""

    def __init__(self) -> None:
        super().__init__()
        self.hidden: dict[str, str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag != "input":
            return
        values = dict(attrs)
        if values.get("type") == "hidden" and values.get("name"):
            self.hidden[str(values["name"])] = values.get("value") or ""


def hidden_inputs(html: str) -> dict[str, str]:
    parser = _Inputs()
    parser.feed(html)
    return parser.hidden


@dataclass
class Page:
    status: int
    url: str
    text: str
    headers: Mapping[str, str] = field(default_factory=dict)

    @property
    def csrf(self) -> str:
        return hidden_inputs(self.text).get("csrf", "")


@dataclass
class ConsoleUser:
    base: str
    session: aiohttp.ClientSession
    csrf: str = ""

    @classmethod
    @asynccontextmanager
    async def login(cls, base: str, token: str) -> AsyncIterator[ConsoleUser]:
        """Logged in with `token` (AssertionError when the login is refused)."""
        # unsafe=True: the jar keeps cookies of an IP-address host (127.0.0.1).
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
            user = cls(base, session)
            page = await user.submit_login(token)
            assert "/ui/login" not in page.url, f"login refused: {page.status} {page.text[:400]}"
            user.csrf = page.csrf
            yield user

    @classmethod
    @asynccontextmanager
    async def anonymous(cls, base: str) -> AsyncIterator[ConsoleUser]:
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
            yield cls(base, session)

    async def submit_login(self, token: str) -> Page:
        form = await self.get("/ui/login")
        fields = hidden_inputs(form.text)
        return await self.send("POST", "/ui/login", {**fields, "token": token}, origin=True)

    async def get(self, path: str, **params: str) -> Page:
        async with self.session.get(self.base + path, params=params or None) as r:
            page = Page(r.status, str(r.url), await r.text(errors="replace"), dict(r.headers))
        if page.csrf:
            self.csrf = page.csrf
        return page

    async def post(self, path: str, fields: Mapping[str, str], *, csrf: bool = True, origin: bool = True) -> Page:
        """POST a form (with the session's CSRF token unless `csrf` is False, and this
        site's Origin unless `origin` is False), following the redirect that answers it."""
        data = dict(fields)
        if csrf:
            data.setdefault("csrf", self.csrf)
        return await self.send("POST", path, data, origin=origin)

    async def send(
        self, method: str, path: str, data: Mapping[str, str], *, origin: bool = True, headers: Mapping[str, str] = {}
    ) -> Page:
        sent = dict(headers)
        if origin:
            sent.setdefault("Origin", self.base)
        async with self.session.request(method, self.base + path, data=dict(data), headers=sent) as r:
            page = Page(r.status, str(r.url), await r.text(errors="replace"), dict(r.headers))
        if page.csrf:
            self.csrf = page.csrf
        return page
