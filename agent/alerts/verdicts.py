"""What one delivery attempt came to, and how its failure is worded for an operator.

The words end up in the audit trail (`webhooks deliveries`), the logs and the CLI,
so they say what to change, and never carry a webhook URL's path or query (they
often hold a token)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Final

import aiohttp
from yarl import URL

from agent.model.status import AttemptOutcome
from agent.net.addresses import BlockedDestination

GONE_REASON: Final = "endpoint answered 410 Gone"
GUARD_REFUSAL_PREFIX: Final = "refused by the SSRF guard: "


@dataclass(frozen=True, slots=True)
class Verdict:
    outcome: AttemptOutcome
    status: int | None
    error: str | None
    next_at: datetime | None = None
    # Set when the subscription must be disabled, with the reason shown to the operator.
    disable: str | None = None
    # False for failures of our own configuration (the SSRF guard's refusal):
    # the endpoint did nothing wrong, so its failure streak neither starts nor
    # leads to disabling it.
    endpoint_failed: bool = True


def guard_refusal(exc: BlockedDestination) -> str:
    """The refusal, the address refused, and what an operator changes to allow it."""
    # Bounded like every stored error, but the hint is never the part cut off.
    text = f"{GUARD_REFUSAL_PREFIX}{exc.url}: {exc.reason}"[:300]
    if exc.host is not None:
        hint = (
            f"; if this endpoint is yours, add {exc.host!r} to [alerts] allow_hosts "
            "(or DWEB_AGENT_ALERTS_ALLOW_HOSTS) of the agent that delivers"
        )
    else:
        hint = "; [alerts] allow_hosts cannot allow this, the URL itself must change (webhooks remove, then add)"
    return text + hint


def http_error(status: int) -> str:
    return f"HTTP {status}" + (" (redirects are not followed)" if 300 <= status < 400 else "")


def describe_error(exc: BaseException, url: str) -> str:
    """The error for the audit trail and logs, without the URL's path or query:
    webhook URLs often carry a token there (aiohttp puts the URL in messages)."""
    text = str(exc) or type(exc).__name__
    try:
        parsed = URL(url)
        spellings, origin = {url, str(parsed)}, str(parsed.origin())
    except ValueError:
        spellings, origin = {url}, "<url>"
    for spelling in sorted(spellings, key=len, reverse=True):
        text = text.replace(spelling, origin)
    return f"{_kind_of(exc)}{type(exc).__name__}: {text}"[:500]


def _kind_of(exc: BaseException) -> str:
    """What went wrong in words an operator acts on, before the library's own message."""
    # Most specific first: a certificate error is also an SSL and a connector error.
    if isinstance(exc, aiohttp.ClientSSLError):
        return "TLS error: "
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return "DNS lookup failed: "
    if isinstance(exc, aiohttp.ClientConnectorError):
        if isinstance(exc.os_error, ConnectionRefusedError):
            return "connection refused: "
        return "could not connect: "
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return "the endpoint closed the connection without answering: "
    return ""
