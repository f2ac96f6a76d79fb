"""aiohttp integration of the SSRF guard: the resolver inside the connector, the
guarded session and `guarded_request`.

Layers 2 and 3 of agent.net.guard's design: a resolver that hands aiohttp only
checked addresses (no second lookup a rebinding DNS server could answer), and
sessions that re-check every request and never follow a redirect. The session
itself comes from agent.net.http, like every session of the agent."""

from __future__ import annotations

import socket
import weakref
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

from agent.net.addresses import BlockedDestination, classify_ip, origin
from agent.net.http import Purpose, client_session

if TYPE_CHECKING:
    # Only a type here: agent.net.guard imports this module to re-export its names.
    from agent.net.guard import NetGuard

__all__ = ["GuardedResolver", "guarded_request", "guarded_session"]


class GuardedResolver(AbstractResolver):
    """aiohttp resolver that only ever returns addresses the guard allows.

    aiohttp connects to exactly the addresses a resolver returns, so filtering
    here closes DNS rebinding: the name is looked up once, every answer is
    classified, and only the allowed ones reach connect(). If every answer is
    forbidden, `BlockedDestination` propagates out of the request (it is not
    an OSError, so aiohttp does not wrap it). Allow-listed hosts are passed
    through unfiltered. Use with ``use_dns_cache=False`` so every connection
    gets a fresh, checked answer."""

    def __init__(self, guard: NetGuard, resolver: AbstractResolver | None = None) -> None:
        self._guard = guard
        self._resolver = resolver
        self._owns_resolver = resolver is None

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        if self._resolver is None:
            # ThreadedResolver needs a running loop, so it is made on first use.
            self._resolver = aiohttp.ThreadedResolver()
        answers = await self._resolver.resolve(host, port, family)
        if self._guard.is_allowed_host(host):
            return answers
        kept: list[ResolveResult] = []
        reasons: list[str] = []
        for answer in answers:
            why = classify_ip(answer["host"])
            if why is None:
                kept.append(answer)
            else:
                reasons.append(why)
        if answers and not kept:
            raise BlockedDestination(
                host, "resolves only to forbidden addresses: " + "; ".join(_unique(reasons)), host=host
            )
        return kept

    async def close(self) -> None:
        if self._resolver is not None and self._owns_resolver:
            await self._resolver.close()


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


# Sessions built by guarded_session and the guard each was built with, so
# guarded_request can refuse a plain ClientSession (whose connector would
# resolve and connect without any check).
_GUARDED_SESSIONS: weakref.WeakKeyDictionary[aiohttp.ClientSession, NetGuard] = weakref.WeakKeyDictionary()


def _trace_config(guard: NetGuard) -> aiohttp.TraceConfig:
    """Belt and braces for code that uses the session directly instead of
    `guarded_request`: every request is re-checked (IP literals never reach
    the resolver), and a followed redirect is stopped before the next hop."""

    async def on_start(
        _s: aiohttp.ClientSession, _ctx: SimpleNamespace, params: aiohttp.TraceRequestStartParams
    ) -> None:
        guard.check_url(params.url)

    async def on_redirect(
        _s: aiohttp.ClientSession, _ctx: SimpleNamespace, params: aiohttp.TraceRequestRedirectParams
    ) -> None:
        raise BlockedDestination(
            origin(params.url.scheme, params.url.raw_host or "?", params.url.port),
            guard.check_redirect(params.response.headers.get("Location"), params.url),
        )

    config = aiohttp.TraceConfig()
    config.on_request_start.append(on_start)
    config.on_request_redirect.append(on_redirect)
    return config


def guarded_session(
    guard: NetGuard,
    *,
    timeout: aiohttp.ClientTimeout | float,
    resolver: AbstractResolver | None = None,
    purpose: Purpose = Purpose.WEBHOOK,
    **session_kw: Any,
) -> aiohttp.ClientSession:
    """A ClientSession whose every connection goes through `guard`, made by
    agent.net.http.client_session for `purpose` (its User-Agent).

    `resolver` is the real resolver GuardedResolver wraps (default
    aiohttp.ThreadedResolver; tests inject fakes). Call inside a running loop;
    close it like any session. `trust_env` is forced off: an HTTP(S)_PROXY
    from the environment would make the proxy, not us, resolve the target."""
    for forbidden in ("connector", "trust_env", "trace_configs"):
        if forbidden in session_kw:
            raise TypeError(f"guarded_session does not accept {forbidden!r}")
    connector = aiohttp.TCPConnector(
        resolver=GuardedResolver(guard, resolver),
        # No cache: each connection is resolved and checked afresh, and the
        # checked answer is the one connected to.
        use_dns_cache=False,
    )
    session = client_session(
        purpose,
        connector=connector,
        timeout=timeout,
        trust_env=False,
        trace_configs=[_trace_config(guard)],
        **session_kw,
    )
    _GUARDED_SESSIONS[session] = guard
    return session


@asynccontextmanager
async def guarded_request(
    session: aiohttp.ClientSession, guard: NetGuard, method: str, url: str | URL, **kw: Any
) -> AsyncIterator[aiohttp.ClientResponse]:
    """``async with guarded_request(session, guard, "POST", url, json=...) as resp:``

    Checks `url` before anything touches the network (BlockedDestination is
    raised on entering the block), never follows redirects (a 3xx is handed
    back as is; see `redirect_target_refused`), and only runs on a session
    from `guarded_session` built with the same guard. `proxy` and
    `allow_redirects=True` are refused: both would route around the guard."""
    if _GUARDED_SESSIONS.get(session) is not guard:
        raise TypeError("guarded_request needs a session made by guarded_session with the same guard")
    if kw.pop("allow_redirects", False):
        raise ValueError("guarded_request never follows redirects")
    if kw.get("proxy") is not None:
        raise ValueError("guarded_request does not use proxies")
    target = guard.check_url(url)
    async with session.request(method, target.url, allow_redirects=False, **kw) as resp:
        yield resp
