"""A real TCAP-like hash list API (aiohttp, 127.0.0.1, port 0) for tests.

Speaks the page format of `GET /api/hash-list/v2/all`: `{"count", "next",
"previous", "checkpoint", "results"}`, records ordered by (updated_on, id)
ascending, `after=<updated_on>,<id>` returns only records changed after that
point, `limit`/`offset` paging with absolute `next` links. Every page carries
the checkpoint of its last record (as the real API does); a knob keeps it to
the last page only. Deleting a record marks it `deleted: true` and moves it to
the end of the change feed, so a pull from a checkpoint sees the deletion.

Login as the real API does (Meta's python-threatexchange TAT client): `POST
/token-auth/tcap/` with a form-encoded username and password answers
`{"user", "token"}`, the token a JWT-shaped string whose `exp` comes from the
server's injectable clock. Issued tokens are accepted until they expire or are
revoked (401, as the real API answers); logins are counted, and the login
answer can be replaced (huge, not JSON, no token); a knob revokes every token
when a given page is asked for.

Knobs: rate limit once (429 with Retry-After), fail with 500 (always, or at one
offset so a pull breaks mid-way), send `next` links on another host, answer
200 with HTML. Every
request is logged."""

from __future__ import annotations

import base64
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

PATH = "/api/hash-list/v2/all"
LOGIN_PATH = "/token-auth/tcap/"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass(frozen=True)
class TcapRequest:
    query: dict[str, str]
    authorized: bool
    status: int


@dataclass
class TcapServer:
    token: str = "tcap-test-token-0123456789"
    auth_scheme: str = "Bearer"
    page_size: int = 2
    checkpoint_param: str = "after"
    checkpoint_every_page: bool = True
    rate_limit_once: str | None = None  # Retry-After value of one 429 answer
    fail_500: bool = False
    fail_500_at_offset: int | None = None  # 500 for the page at this offset only
    next_host: str | None = None  # advertise `next` links on this host instead
    serve_html: bool = False  # answer 200 with an HTML page (a captive portal, a broken proxy)
    username: str = "tcap-analyst"
    password: str = "pw-Zq8#tcap-secret"
    token_lifetime_s: float = 3600.0
    clock: Callable[[], float] = time.time
    revoke_at_offset: int | None = None  # revoke every token when this page is first asked for
    login_answer: bytes | None = None  # replaces the login's JSON answer (status 200)
    logins: int = 0  # successful logins
    login_forms: list[dict[str, str]] = field(default_factory=list)
    issued: dict[str, float] = field(default_factory=dict)  # token -> exp
    requests: list[TcapRequest] = field(default_factory=list)
    records: dict[int, dict[str, Any]] = field(default_factory=dict)
    url: str = ""
    _clock: int = 0
    _next_id: int = 1000
    _runner: web.AppRunner | None = None

    # -- data -------------------------------------------------------------

    def _tick(self) -> float:
        # A logical clock: deterministic, strictly increasing timestamps.
        self._clock += 1
        return 1_704_900_000.0 + self._clock + 0.25

    def add(
        self, hash_digest: str, algorithm: str = "PDQ", *, ideology: str = "Islamist", file_type: str = "png"
    ) -> int:
        self._next_id += 1
        now = self._tick()
        self.records[self._next_id] = {
            "hash_digest": hash_digest,
            "algorithm": algorithm,
            "ideology": ideology,
            "file_type": file_type,
            "deleted": False,
            "updated_on": now,
            "created_on": now,
            "id": self._next_id,
        }
        return self._next_id

    def delete(self, record_id: int) -> None:
        self.records[record_id].update(deleted=True, updated_on=self._tick())

    def update(self, record_id: int, **changes: Any) -> None:
        self.records[record_id].update(changes, updated_on=self._tick())

    # -- HTTP -------------------------------------------------------------

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get(PATH, self._handle)
        app.router.add_post(LOGIN_PATH, self._login)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}{PATH}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def revoke_all(self) -> None:
        """Every issued token stops being accepted (a password change, a server-side logout)."""
        self.issued.clear()

    def issue(self, exp: float | None) -> str:
        """A JWT-shaped token (unsigned: the client must not rely on the signature) accepted until `exp`."""
        claims: dict[str, Any] = {"user_id": 7, "jti": secrets.token_hex(8)}
        if exp is not None:
            claims["exp"] = int(exp)
        header = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
        token = f"{header}.{_b64(json.dumps(claims).encode())}.{_b64(secrets.token_bytes(16))}"
        self.issued[token] = exp if exp is not None else float("inf")
        return token

    async def _login(self, request: web.Request) -> web.Response:
        form = {k: str(v) for k, v in (await request.post()).items()}
        self.login_forms.append(form)
        if form.get("username") != self.username or form.get("password") != self.password:
            return web.json_response({"non_field_errors": ["Unable to log in with provided credentials."]}, status=400)
        self.logins += 1
        if self.login_answer is not None:
            return web.Response(body=self.login_answer, content_type="application/json")
        token = self.issue(self.clock() + self.token_lifetime_s)
        return web.json_response({"user": {"username": self.username}, "token": token})

    def _authorized(self, header: str | None) -> bool:
        if header == f"{self.auth_scheme} {self.token}":
            return True
        scheme, _, token = (header or "").partition(" ")
        exp = self.issued.get(token)
        return scheme == "Bearer" and exp is not None and self.clock() < exp

    def _log(self, request: web.Request, authorized: bool, status: int) -> None:
        self.requests.append(TcapRequest(dict(request.query), authorized, status))

    async def _handle(self, request: web.Request) -> web.Response:
        if self.revoke_at_offset is not None and request.query.get("offset") == str(self.revoke_at_offset):
            self.revoke_at_offset = None
            self.revoke_all()
        authorized = self._authorized(request.headers.get("Authorization"))
        if not authorized:
            self._log(request, False, 401)
            return web.json_response({"detail": "Given token not valid for any token type"}, status=401)
        if self.rate_limit_once is not None:
            retry_after, self.rate_limit_once = self.rate_limit_once, None
            self._log(request, True, 429)
            return web.json_response(
                {"detail": "Request was throttled."}, status=429, headers={"Retry-After": retry_after}
            )
        offset = int(request.query.get("offset", "0"))
        if self.fail_500 or self.fail_500_at_offset == offset:
            self._log(request, True, 500)
            return web.Response(status=500, text="<h1>Server Error (500)</h1>", content_type="text/html")
        if self.serve_html:
            self._log(request, True, 200)
            return web.Response(text="<html><body>Maintenance</body></html>", content_type="text/html")
        limit = int(request.query.get("limit", str(self.page_size)))
        after = request.query.get(self.checkpoint_param, "")
        feed = sorted(self.records.values(), key=lambda r: (r["updated_on"], r["id"]))
        if after:
            ts, _, last_id = after.partition(",")
            cursor = (float(ts), int(last_id))
            feed = [r for r in feed if (r["updated_on"], r["id"]) > cursor]
        page = feed[offset : offset + limit]
        more = offset + limit < len(feed)
        next_url = None
        if more:
            query = {k: v for k, v in request.query.items() if k not in ("offset", "limit")}
            query.update(limit=str(limit), offset=str(offset + limit))
            host = self.next_host or request.host
            next_url = f"{request.scheme}://{host}{PATH}?{urlencode(query)}"
        checkpoint = None
        if page and (self.checkpoint_every_page or not more):
            checkpoint = f"{page[-1]['updated_on']},{page[-1]['id']}"
        self._log(request, True, 200)
        return web.json_response(
            {
                "count": len(feed),
                "next": next_url,
                "previous": None,
                "checkpoint": checkpoint,
                "results": page,
            }
        )
