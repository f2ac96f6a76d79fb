"""The one place the agent's outgoing HTTP sessions are made.

Every ClientSession the agent opens comes from `client_session`, so what the
agent tells servers about itself (the User-Agent) is decided here, by what the
session is for, and not by whoever happened to write a session. The SSRF
guard's session (agent.net.connector.guarded_session) is built on it too.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any, Final

import aiohttp

from agent import __version__

__all__ = ["Purpose", "client_session", "user_agent"]


class Purpose(StrEnum):
    """What a session is for; it decides the User-Agent and the default timeout."""

    # Verified retrieval for one `dweb-agent scan` (gateways, Arweave, IPNS).
    SCAN = "scan"
    # The daemon's shared session: polls, gateways, list syncs, takedown probes.
    DAEMON = "daemon"
    # Downloading the operator's lists for a one-shot scan.
    LISTS = "lists"
    # Webhook deliveries (always through the SSRF guard).
    WEBHOOK = "webhook"


_USER_AGENTS: Final[Mapping[Purpose, str]] = {
    # Gateways log this; it says the agent verifies what it fetches (it is not a browser).
    Purpose.SCAN: "dweb-agent (+verified retrieval)",
    Purpose.DAEMON: f"dweb-agent/{__version__}",
    Purpose.LISTS: f"dweb-agent/{__version__}",
    Purpose.WEBHOOK: f"dweb-agent/{__version__}",
}

# A list download may be tens of MiB from a slow host; five minutes in all.
# None elsewhere: those callers bound each request themselves (gateway meters,
# per-request timeouts), and aiohttp's default then applies to the rest.
_DEFAULT_TIMEOUTS: Final[Mapping[Purpose, aiohttp.ClientTimeout | None]] = {
    Purpose.LISTS: aiohttp.ClientTimeout(total=300),
}


def user_agent(purpose: Purpose) -> str:
    """The User-Agent a session for `purpose` sends."""
    return _USER_AGENTS[purpose]


def client_session(
    purpose: Purpose,
    *,
    timeout: aiohttp.ClientTimeout | float | None = None,
    headers: Mapping[str, str] | None = None,
    **session_kw: Any,
) -> aiohttp.ClientSession:
    """A ClientSession for `purpose`. Call inside a running loop; close it like any session.

    `timeout` (seconds or a ClientTimeout) overrides the purpose's default.
    `headers` are sent on every request; a User-Agent among them is refused,
    because the purpose chooses it. Other keywords go to aiohttp.ClientSession
    (the guard passes its connector and trace configs this way)."""
    if headers is not None and any(k.lower() == "user-agent" for k in headers):
        raise TypeError("client_session chooses the User-Agent from the purpose; do not pass one")
    if isinstance(timeout, (int, float)):
        timeout = aiohttp.ClientTimeout(total=float(timeout))
    elif timeout is None:
        timeout = _DEFAULT_TIMEOUTS.get(purpose)
    if timeout is not None:
        session_kw["timeout"] = timeout
    return aiohttp.ClientSession(headers={**(headers or {}), "User-Agent": user_agent(purpose)}, **session_kw)
