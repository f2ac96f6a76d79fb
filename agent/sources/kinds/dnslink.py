"""A dnslink:// watch target: the domain's DNSLink (through IPNS when it names a key) says the root."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from agent.ipfs.cid import CID
from agent.model.target import Target, TargetError
from agent.sources.base import Discovery, RootCursor, SourceEnv, State, join_paths, root_discovery
from agent.sources.dnslink import resolve_dnslink
from agent.sources.ipns import resolve_ipns


@dataclass(frozen=True, slots=True)
class DnslinkCursor:
    at: RootCursor = field(default_factory=RootCursor)
    # The DNSLink value last resolved (state key "dnslink").
    dnslink: str | None = None

    def to_state(self) -> dict[str, Any]:
        value = {} if self.dnslink is None else {"dnslink": self.dnslink}
        return {**value, **self.at.to_state()}


class DnslinkSource:
    def __init__(self, env: SourceEnv) -> None:
        self._env = env

    def read_cursor(self, state: State) -> DnslinkCursor:
        value = state.get("dnslink")
        return DnslinkCursor(RootCursor.from_state(state), value if isinstance(value, str) else None)

    async def discover(self, target: Target, cursor: DnslinkCursor) -> Discovery[DnslinkCursor]:
        d = self._env.settings.dnslink
        link = await resolve_dnslink(target.name, nameservers=d.nameservers or None, port=d.port, timeout=d.timeout_s)
        root: CID | None = link.cid
        path = link.path
        if root is None and link.ipns_name:
            resolution = await resolve_ipns(link.ipns_name, self._env.settings.gateways.urls, self._env.http)
            root, path = resolution.cid, join_paths(resolution.path, path)
        if root is None:
            raise TargetError(f"{target.name}: dnslink {link.value!r} names no content")
        value = link.value
        return root_discovery(
            cursor.at, str(root), join_paths(path, target.path_text), lambda at: DnslinkCursor(at, value)
        )
