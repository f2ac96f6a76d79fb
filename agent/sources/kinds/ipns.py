"""An ipns:// watch target: the name's signed record says the root; a new root is scanned."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from agent.model.target import Target
from agent.sources.base import Discovery, RootCursor, SourceEnv, State, join_paths, root_discovery
from agent.sources.ipns import resolve_ipns


@dataclass(frozen=True, slots=True)
class IpnsCursor:
    at: RootCursor = field(default_factory=RootCursor)
    # The sequence number of the record last resolved (state key "sequence").
    sequence: int | None = None

    def to_state(self) -> dict[str, Any]:
        sequence = {} if self.sequence is None else {"sequence": self.sequence}
        return {**sequence, **self.at.to_state()}


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


class IpnsSource:
    def __init__(self, env: SourceEnv) -> None:
        self._env = env

    def read_cursor(self, state: State) -> IpnsCursor:
        return IpnsCursor(RootCursor.from_state(state), _int(state.get("sequence")))

    async def discover(self, target: Target, cursor: IpnsCursor) -> Discovery[IpnsCursor]:
        resolution = await resolve_ipns(target.name, self._env.settings.gateways.urls, self._env.http)
        path = join_paths(resolution.path, target.path_text)
        return root_discovery(cursor.at, str(resolution.cid), path, lambda at: IpnsCursor(at, resolution.sequence))
