"""TCAP login: a JWT obtained from a username and password, re-used until shortly before it expires.

The wire format follows the client Tech Against Terrorism contributed to Meta's
python-threatexchange (`threatexchange/exchanges/clients/techagainstterrorism/api.py`,
`TATEndpoint.authenticate = "token-auth/tcap/"` under the API's root and
`TATHashListAPI.authenticate`): `POST <root>/token-auth/tcap/` with a form-encoded body
`username=…&password=…&resend=False` (requests' `data=` dict), answered by JSON whose
`token` field is the JWT (next to `user`); the JWT then goes out as `Authorization: Bearer`.

The JWT's payload is decoded only to learn its `exp` (when to log in again); nothing in
it is trusted otherwise, and a token with no readable `exp` is renewed after `max_age_s`.
The password and the token are secrets: no message, log line or repr carries them."""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import time
from collections.abc import Callable
from typing import TypeGuard
from urllib.parse import urlsplit, urlunsplit

import aiohttp
import structlog

from agent.lists.fetch import ListTooLarge, read_bounded
from agent.lists.tcap_client import ListSyncError, display_url

log = structlog.get_logger(__name__)

Clock = Callable[[], float]

LOGIN_PATH = "/token-auth/tcap/"
DEFAULT_MAX_AGE_S = 50 * 60.0
# Log in again this long before `exp`, so a token does not expire between our check and
# the server's (clock skew, a slow page).
DEFAULT_REFRESH_MARGIN_S = 60.0
DEFAULT_TIMEOUT_S = 30.0
# A login answer is a token and a small user object; anything bigger is not one.
MAX_LOGIN_BYTES = 64 * 1024
MAX_TOKEN_CHARS = 8 * 1024


def login_url_for(list_url: str) -> str:
    """The login endpoint on the hash list API's host (the list URL's path and query dropped)."""
    parts = urlsplit(list_url.removeprefix("tcap+"))
    return urlunsplit((parts.scheme, parts.netloc, LOGIN_PATH, "", ""))


def jwt_expiry(token: str) -> float | None:
    """The `exp` claim of a JWT-shaped token (unix seconds), None when absent or unreadable.
    The signature is not checked: this is for timing only, the server decides validity."""
    pieces = token.split(".")
    if len(pieces) != 3:
        return None
    payload = pieces[1]
    try:
        raw = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
        claims = json.loads(raw)
    except (binascii.Error, ValueError):
        return None
    exp = claims.get("exp") if isinstance(claims, dict) else None
    if isinstance(exp, bool) or not isinstance(exp, int | float) or exp != exp:  # exp != exp: NaN
        return None
    return float(exp)


def _usable_token(value: object) -> TypeGuard[str]:
    # The token goes into a header: no whitespace or control characters that could split it.
    return (
        isinstance(value, str)
        and 0 < len(value) <= MAX_TOKEN_CHARS
        and value.isascii()
        and value.isprintable()
        and " " not in value
    )


class TcapLogin:
    """Fetches the JWT on first use and re-uses it until `refresh_margin_s` before its `exp`.
    Concurrent callers share one login; `invalidate(token)` after a 401 makes the next
    `token()` log in again (once, however many callers saw that token refused)."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        login_url: str,
        username: str,
        password: str,
        *,
        max_age_s: float = DEFAULT_MAX_AGE_S,
        refresh_margin_s: float = DEFAULT_REFRESH_MARGIN_S,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        clock: Clock = time.time,
    ) -> None:
        parts = urlsplit(login_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {display_url(login_url)}")
        if not username or not password:
            raise ValueError("TCAP login needs a username and a password")
        self._session = session
        self._login_url = login_url
        self._username = username
        self._password = password
        self._max_age_s = max_age_s
        self._refresh_margin_s = refresh_margin_s
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._clock = clock
        self._lock = asyncio.Lock()
        self._token: str | None = None
        self._renew_at = 0.0
        self.logins = 0
        self.endpoint = display_url(login_url)

    def __repr__(self) -> str:
        return f"TcapLogin({self.endpoint!r})"

    async def token(self) -> str:
        """A token believed valid now, logging in when there is none or it is about to expire."""
        async with self._lock:
            if self._token is None or self._clock() >= self._renew_at:
                self._token = None
                token = await self._login()
                now = self._clock()
                exp = jwt_expiry(token)
                self._renew_at = exp - self._refresh_margin_s if exp is not None else now + self._max_age_s
                self._token = token
                log.info("tcap.logged_in", endpoint=self.endpoint, renew_in_s=round(self._renew_at - now))
            return self._token

    def invalidate(self, token: str) -> None:
        """The server refused `token`: drop it unless another caller already replaced it."""
        if self._token == token:
            self._token = None

    def redact(self, text: str) -> str:
        """`text` with the password and the current token replaced, for messages built from server data."""
        for secret in (self._password, self._token):
            if secret:
                text = text.replace(secret, "[redacted]")
        return text

    async def _login(self) -> str:
        form = {"username": self._username, "password": self._password, "resend": "False"}
        where = f"TCAP login at {self.endpoint}"
        try:
            async with self._session.post(
                self._login_url,
                data=form,
                headers={"Accept": "application/json"},
                allow_redirects=False,  # a redirect could carry the password elsewhere
                timeout=self._timeout,
            ) as response:
                status = response.status
                if status != 200:
                    # The body is not quoted: a server may echo the submitted form.
                    raise ListSyncError(f"{where} failed: HTTP {status}")
                try:
                    body = await read_bounded(response, MAX_LOGIN_BYTES)
                except ListTooLarge as exc:
                    raise ListSyncError(f"{where}: answer too large ({exc})") from None
        except aiohttp.ClientError as exc:
            # Not chained: aiohttp errors carry the request.
            raise ListSyncError(self.redact(f"{where}: request failed: {type(exc).__name__}")) from None
        except TimeoutError:
            raise ListSyncError(f"{where}: timed out") from None
        self.logins += 1
        try:
            data = json.loads(body)
        except (UnicodeDecodeError, ValueError):
            raise ListSyncError(f"{where}: answer is not JSON") from None
        token = data.get("token") if isinstance(data, dict) else None
        if token is None:
            raise ListSyncError(f"{where}: answer has no token")
        if not _usable_token(token):
            raise ListSyncError(f"{where}: answer's token is not a usable header value")
        return token
