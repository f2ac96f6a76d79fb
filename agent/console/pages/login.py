"""Logging in with an API token, logging out, and the console's front door.

The login form is itself protected: a random value in a short-lived cookie must come back
in the form (a page of another site can neither read the cookie nor set the field), and
the origin check of every POST applies. Failed logins are rate-limited per address."""

from __future__ import annotations

import hmac
import re
import secrets
from typing import Any
from urllib.parse import unquote, urlsplit

import aiohttp_jinja2
from aiohttp import web

from agent.api.context import ApiContext
from agent.api.ratelimit import RateLimiter
from agent.console.routing import SESSION_COOKIE, UI, Refused, page_globals, read_form
from agent.console.security import same_origin
from agent.services.errors import Invalid

LOGIN_COOKIE = "dweb_login"
_LOGIN_COOKIE_S = 3600
_MAX_TOKEN = 512
# A console path as the pipeline sends it (path and raw query, percent-encoded): printable
# ASCII without spaces. Browsers drop tabs and newlines from a URL and read a backslash as
# a slash, so a value with any of them could mean another place than it seems to.
_NEXT = re.compile(rf"{UI}/[\x21-\x5b\x5d-\x7e]{{0,2000}}")


def safe_next(value: str | None) -> str:
    """Where to go after login: a console path only. Never another site, never a path
    whose dot segments (`..`, `%2e%2e`) a browser would resolve to outside /ui/."""
    home = f"{UI}/findings"
    if not value or not _NEXT.fullmatch(value):
        return home
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or any(seg in (".", "..") for seg in unquote(parts.path).split("/")):
        return home
    return value


class LoginPages:
    def __init__(self, context: ApiContext) -> None:
        self.context = context
        settings = context.settings.console
        self.failures = RateLimiter(settings.login_per_min / 60.0, settings.login_burst, context.clock)

    def _secure(self, request: web.Request) -> bool:
        return request.secure or self.context.settings.console.secure_cookie

    def _render(self, request: web.Request, values: dict[str, Any], status: int = 200) -> web.Response:
        nonce = secrets.token_urlsafe(24)
        context = {**page_globals(request, None), "login_nonce": nonce, "error": None, **values}
        response = aiohttp_jinja2.render_template("login.html", request, context, status=status)
        response.set_cookie(
            LOGIN_COOKIE,
            nonce,
            max_age=_LOGIN_COOKIE_S,
            path=f"{UI}/",
            httponly=True,
            samesite="Strict",
            secure=self._secure(request),
        )
        return response

    async def home(self, request: web.Request) -> web.StreamResponse:
        raise web.HTTPSeeOther(f"{UI}/findings")

    async def form(self, request: web.Request) -> web.StreamResponse:
        return self._render(request, {"next": safe_next(request.query.get("next"))})

    async def submit(self, request: web.Request) -> web.StreamResponse:
        remote = self.context.remote_of(request) or "unknown"
        if not same_origin(request):
            return self._render(request, {"next": f"{UI}/findings", "error": "refused: sent from another site"}, 403)
        form = await read_form(request)
        nonce, sent = request.cookies.get(LOGIN_COOKIE, ""), form.get("login_nonce")
        target = safe_next(form.get("next"))
        if not nonce or not isinstance(sent, str) or not hmac.compare_digest(nonce.encode(), sent.encode()):
            error = "the login form had expired: it is fresh now, enter the token again"
            return self._render(request, {"next": target, "error": error}, 403)
        wait = self.failures.take(remote)
        if wait is not None:
            error = f"too many failed logins from this address: wait {max(1, int(wait) + 1)} s"
            return self._render(request, {"next": target, "error": error}, 429)
        token = form.get("token")
        try:
            if not isinstance(token, str) or not token.strip() or len(token) > _MAX_TOKEN:
                raise Invalid("enter an API token", field="token")
            made = await self.context.services.sessions.login(token)
        except Invalid as exc:
            return self._render(request, {"next": target, "error": exc.message}, 401)
        # A good login gives back what the failure bucket spent on it.
        self.failures.refund(remote)
        principal = made.session.principal
        await self.context.record_call(request, principal, f"POST {UI}/login", 303, None)
        response = web.HTTPSeeOther(target)
        response.set_cookie(
            SESSION_COOKIE,
            made.session_id,
            path=f"{UI}/",
            httponly=True,
            samesite="Strict",
            secure=self._secure(request),
        )
        response.del_cookie(LOGIN_COOKIE, path=f"{UI}/")
        raise response

    async def logout(self, request: web.Request) -> web.StreamResponse:
        sessions = self.context.services.sessions
        session = await sessions.resolve(request.cookies.get(SESSION_COOKIE))
        if session is not None:
            if not same_origin(request) or not sessions.csrf_ok(session, (await read_form(request)).get("csrf")):
                raise Refused(403, "refused: log out with the console's own button")
            await sessions.logout(request.cookies.get(SESSION_COOKIE))
            await self.context.record_call(request, session.principal, f"POST {UI}/logout", 303, None)
        response = web.HTTPSeeOther(f"{UI}/login")
        response.del_cookie(SESSION_COOKIE, path=f"{UI}/")
        raise response
