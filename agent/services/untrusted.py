"""What an API caller names is untrusted: the one SSRF check every service applies to it.

A URL is refused when the guard refuses it as written (a private or loopback literal, a
scheme or port it does not allow) or when its host name resolves now to such an address
("localhost", a name pointed at 169.254.169.254). The fetch itself goes through the guard
again at every connection (agent.net.connector), so a name that does not resolve now, or
is re-pointed later (DNS rebinding), is refused then; this check answers the caller early
and precisely."""

from __future__ import annotations

from typing import TYPE_CHECKING

from agent.services.errors import Invalid

if TYPE_CHECKING:
    from aiohttp.abc import AbstractResolver

    from agent.config import Settings
    from agent.net.addresses import BlockedDestination
    from agent.net.guard import NetGuard


def api_guard(settings: Settings) -> NetGuard:
    """The guard for what an API caller names (scan gateways, list URLs, targets): [api]
    allow_hosts, and the hosts of the operator's own [gateways] urls (the operator chose them).
    Invalid naming the setting when an allow_hosts entry is malformed."""
    from yarl import URL

    from agent.net.guard import NetGuard

    hosts = list(settings.api.allow_hosts)
    for url in settings.gateways.urls:
        try:
            host = URL(url).raw_host
        except (ValueError, TypeError):
            continue  # a gateway URL that cannot be parsed names no host to trust
        if host:
            hosts.append(host)
    try:
        return NetGuard(allow_hosts=frozenset(hosts))
    except ValueError as exc:  # the operator's entry: named, so it can be fixed
        raise Invalid(f"[api] allow_hosts: {exc}") from exc


async def refusal(
    guard: NetGuard, url: str, *, resolve: bool = True, resolver: AbstractResolver | None = None
) -> BlockedDestination | None:
    """Why the guard refuses `url` (None: allowed). With `resolve`, a host name is resolved
    now (through `resolver`, the system's by default) and refused if it names only addresses
    the guard forbids; a name that does not resolve at all is allowed here (its fetch fails
    later like any other)."""
    from agent.net.addresses import BlockedDestination
    from agent.net.connector import GuardedResolver

    try:
        checked = guard.check_url(url)
        if resolve and checked.ip is None and not checked.allowed_host:
            guarded = GuardedResolver(guard, resolver)
            try:
                await guarded.resolve(checked.host, checked.port)
            finally:
                await guarded.close()
    except BlockedDestination as exc:
        return exc
    except OSError:
        return None
    return None
