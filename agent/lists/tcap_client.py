"""Client for Tech Against Terrorism's TCAP hash list API (v2).

What the real API does (terrorismanalytics.org docs, and the client TAT
contributed to Meta's python-threatexchange,
`threatexchange/exchanges/clients/techagainstterrorism/api.py`):

- `GET <host>/api/hash-list/v2/all` returns pages `{"count", "next",
  "previous", "checkpoint", "results": [...]}`; records carry `hash_digest`,
  `algorithm` (PDQ, MD5, SHA256, SHA512), `ideology`, `file_type`, `deleted`,
  `updated_on`, `id`.
- Changes since a previous poll are requested with `after=<checkpoint>` and
  `order=asc`; a checkpoint is `"<updated_on>,<id>"` of the last record of a
  page, so it is an opaque keyset cursor we store and send back unchanged.
- Auth is a JWT obtained from `POST token-auth/tcap/` with a username and
  password, sent as `Authorization: Bearer <token>`.

This client takes a fixed token or a TokenSource (agent.lists.tcap_auth's
login, which obtains and renews the JWT; a refused token is invalidated and
the page retried once with a fresh one), pages either by following `next` or by keyset
(`after=<checkpoint of the previous page>`), applies each page with
`apply_tcap_page` and returns the new list with what it added and removed.

A pull is all or nothing: any failure raises ListSyncError and the caller
keeps the list and the checkpoint it had, so a change is never skipped.
The token is a secret: it never appears in a message, a log line or a repr."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Literal, Protocol
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

import aiohttp
import structlog

from agent.lists.fetch import ListTooLarge, read_bounded
from agent.lists.formats.tcap import apply_tcap_page, parse_tcap_page
from agent.lists.limits import MiB, ParseLimits, ProblemLog, TooLarge
from agent.lists.model import HashList, ListEntry, ParseProblem
from agent.net.backoff import Backoff
from agent.net.retry_after import parse_retry_after

log = structlog.get_logger(__name__)

Paging = Literal["next", "checkpoint"]
Sleep = Callable[[float], Awaitable[None]]

DEFAULT_PAGE_LIMIT = 10_000
DEFAULT_MAX_PAGE_BYTES = 64 * MiB
DEFAULT_MAX_RETRY_AFTER = 60.0
# parse_tcap_page's messages for input that is not a page at all.
_NOT_A_PAGE = ("not valid JSON", "no results array")


class ListSyncError(Exception):
    """A list source could not be brought up to date. The previous version of
    the list (and its checkpoint) stays in use; the message is safe to log."""


class TokenSource(Protocol):
    """Hands out the bearer token; told when the server refused one."""

    async def token(self) -> str: ...

    def invalidate(self, token: str) -> None: ...


class _FixedToken:
    def __init__(self, token: str) -> None:
        self._token = token

    async def token(self) -> str:
        return self._token

    def invalidate(self, token: str) -> None:
        # A configured token cannot be renewed; the refusal is reported as it is.
        pass


@dataclass(frozen=True, slots=True)
class TcapPull:
    """The list after applying every page of one pull.

    `added` are live entries that are new or whose value changed (what a
    retroactive scan must look for); `removed` are ids of entries that were
    live before and are gone now. `complete` is False when the pull stopped
    at `page_limit`: the list and checkpoint are consistent with each other
    and the next pull continues from there."""

    list: HashList
    checkpoint: str | None
    added: tuple[ListEntry, ...]
    removed: tuple[str, ...]
    pages: int
    complete: bool = True
    problems: tuple[ParseProblem, ...] = ()


def display_url(url: str) -> str:
    """scheme://host[:port]/path only: query strings and user info may hold
    credentials, so they never reach messages or logs."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def diff_entries(
    before: tuple[ListEntry, ...], after: tuple[ListEntry, ...]
) -> tuple[tuple[ListEntry, ...], tuple[str, ...]]:
    """(added, removed ids) between two sets of live entries, keyed by entry id.
    An entry whose id stays but whose type or value changed counts as added:
    content must be re-checked against its new value."""
    old = {e.entry_id: e for e in before}
    new = {e.entry_id: e for e in after}
    added = tuple(
        e
        for entry_id, e in new.items()
        if (prev := old.get(entry_id)) is None
        or (prev.signal_type, prev.value, prev.frames) != (e.signal_type, e.value, e.frames)
    )
    removed = tuple(entry_id for entry_id in old if entry_id not in new)
    return added, removed


class TcapClient:
    def __init__(
        self,
        base_url: str,
        token: str | TokenSource,
        session: aiohttp.ClientSession,
        *,
        page_limit: int = DEFAULT_PAGE_LIMIT,
        max_page_bytes: int = DEFAULT_MAX_PAGE_BYTES,
        auth_scheme: str = "Bearer",
        checkpoint_param: str = "after",
        params: Mapping[str, str] | None = None,
        paging: Paging = "next",
        max_retry_after: float = DEFAULT_MAX_RETRY_AFTER,
        max_retries: int = 3,
        sleep: Sleep = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        """`base_url` is the hash list endpoint (e.g.
        https://app.terrorismanalytics.org/api/hash-list/v2/all). `params` are
        extra query parameters for the first request; the default asks for
        ascending order, which checkpoints rely on."""
        if not token:
            raise ValueError("TCAP needs a token")
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {display_url(base_url)}")
        self._base_url = base_url
        self._tokens: TokenSource = _FixedToken(token) if isinstance(token, str) else token
        self._renewable = not isinstance(token, str)
        # Every token this client sent, for redaction: a renewed one replaces, not erases, the old.
        self._sent: set[str] = {token} if isinstance(token, str) else set()
        self._auth_scheme = auth_scheme
        self._session = session
        self._page_limit = page_limit
        self._limits = ParseLimits(max_bytes=max_page_bytes)
        self._checkpoint_param = checkpoint_param
        self._params = dict(params) if params is not None else {"order": "asc"}
        self._paging: Paging = paging
        self._max_retry_after = max_retry_after
        self._max_retries = max_retries
        self._sleep = sleep
        # A 429 without Retry-After waits 1 s, 2 s, 4 s, ... (never past what a
        # Retry-After may ask), jittered so clients refused together do not return together.
        self._backoff = Backoff(base_s=1.0, cap_s=max_retry_after, jitter=0.25)
        self._rng = rng if rng is not None else random.Random()  # noqa: S311 - jitter, not a secret
        self.label = f"tcap:{display_url(base_url)}"

    def __repr__(self) -> str:
        return f"TcapClient({self.label!r})"

    def _redact(self, text: str) -> str:
        # Belt and braces: our messages never interpolate the token, but a
        # server can echo request data back into an error body or URL.
        for token in self._sent:
            text = text.replace(token, "[redacted]")
        return text

    def _url_with(self, checkpoint: str | None) -> str:
        parts = urlsplit(self._base_url)
        query = [
            (k, v)
            for k, v in parse_qsl(parts.query, keep_blank_values=True)
            if k != self._checkpoint_param and k not in self._params
        ]
        query.extend(self._params.items())
        if checkpoint:
            query.append((self._checkpoint_param, checkpoint))
        return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), ""))

    def _follow(self, next_url: str) -> str:
        """The `next` link, held to the API's host so the token is never sent
        elsewhere, and to the configured scheme and port: servers behind a TLS
        proxy often advertise http:// links, and following one would send the
        token in clear text."""
        base = urlsplit(self._base_url)
        target = urlsplit(urljoin(self._base_url, next_url))
        if (target.hostname or "").lower() != (base.hostname or "").lower():
            raise ListSyncError(
                f"{self.label}: next page is on another host ({target.hostname}); not sending the token there"
            )
        return urlunsplit((base.scheme, base.netloc, target.path, target.query, ""))

    async def pull(self, list_so_far: HashList, checkpoint: str | None) -> TcapPull:
        """Apply every change since `checkpoint` (None: everything) to
        `list_so_far`. Raises ListSyncError; nothing is half-applied."""
        before = list_so_far.live_entries()
        hash_list = list_so_far
        url: str | None = self._url_with(checkpoint)
        last_checkpoint: str | None = None
        problems = ProblemLog()
        pages = 0
        complete = True
        while url is not None:
            if pages >= self._page_limit:
                if last_checkpoint is None:
                    raise ListSyncError(
                        f"{self.label}: more than {self._page_limit} pages and no checkpoint to resume from"
                    )
                complete = False
                break
            data = await self._get(url)
            try:
                page = parse_tcap_page(data, list_name=list_so_far.name, source=self.label, limits=self._limits)
            except TooLarge as exc:
                raise ListSyncError(self._redact(str(exc))) from None
            if not page.entries and page.problems and page.problems[0].message.startswith(_NOT_A_PAGE):
                # Not a page at all (an HTML error page, a JSON error object):
                # applying it would advance the checkpoint over nothing.
                raise ListSyncError(self._redact(f"{self.label}: bad page: {page.problems[0].message}"))
            hash_list = apply_tcap_page(hash_list, page)
            problems.extend(page.problems)
            pages += 1
            if page.checkpoint:
                last_checkpoint = page.checkpoint
            if not page.next:
                url = None
            elif self._paging == "checkpoint":
                if not page.checkpoint:
                    raise ListSyncError(f"{self.label}: keyset paging needs a checkpoint on every page")
                url = self._url_with(page.checkpoint)
            else:
                url = self._follow(page.next)
        added, removed = diff_entries(before, hash_list.live_entries())
        new_checkpoint = last_checkpoint or checkpoint
        log.info(
            "tcap.pulled",
            source=self.label,
            pages=pages,
            added=len(added),
            removed=len(removed),
            complete=complete,
            problems=problems.total,
        )
        return TcapPull(hash_list, new_checkpoint, added, removed, pages, complete, problems.result())

    async def _get(self, url: str) -> bytes:
        shown = display_url(url)
        relogged = False
        attempt = 0
        while attempt <= self._max_retries:
            token = await self._tokens.token()
            self._sent.add(token)
            auth = f"{self._auth_scheme} {token}" if self._auth_scheme else token
            headers = {"Authorization": auth, "Accept": "application/json"}
            try:
                # No redirects: a redirect could carry the Authorization header
                # to a host we did not choose.
                async with self._session.get(url, headers=headers, allow_redirects=False) as response:
                    status = response.status
                    if status in (401, 403) and self._renewable and not relogged:
                        # Revoked or expired early: log in again once and retry this page.
                        self._tokens.invalidate(token)
                        relogged = True
                        log.info("tcap.token_refused", source=self.label, status=status)
                        continue
                    if status in (401, 403):
                        raise ListSyncError(f"TCAP refused the token ({status})")
                    if status == 429:
                        asked = parse_retry_after(response.headers.get("Retry-After"))
                        if attempt >= self._max_retries:
                            raise ListSyncError(f"{self.label}: still rate limited (429) after {attempt} retries")
                        if asked is not None and asked > self._max_retry_after:
                            raise ListSyncError(
                                f"{self.label}: rate limited (429), asked to wait {asked:.0f}s "
                                f"(more than {self._max_retry_after:.0f}s); next refresh will retry"
                            )
                        delay = self._backoff.delay(attempt + 1, self._rng, retry_after=asked)
                        log.info("tcap.rate_limited", source=self.label, retry_after=delay)
                    elif status >= 500:
                        raise ListSyncError(f"{self.label}: server error ({status}); checkpoint kept")
                    elif status != 200:
                        raise ListSyncError(f"{self.label}: unexpected status {status} for {shown}")
                    else:
                        return await self._read_bounded(response)
            except aiohttp.ClientError as exc:
                # Not chained: aiohttp errors carry the request, headers included.
                raise ListSyncError(
                    self._redact(f"{self.label}: request failed: {type(exc).__name__}: {exc}")
                ) from None
            except TimeoutError:
                raise ListSyncError(f"{self.label}: request timed out") from None
            # Only a 429 gets here; wait outside the `async with` so the
            # connection goes back to the pool meanwhile.
            await self._sleep(delay)
            attempt += 1
        raise ListSyncError(f"{self.label}: gave up")  # pragma: no cover - the loop returns or raises

    async def _read_bounded(self, response: aiohttp.ClientResponse) -> bytes:
        try:
            return await read_bounded(response, self._limits.max_bytes)
        except ListTooLarge as exc:
            raise ListSyncError(f"{self.label}: page {exc}") from None
