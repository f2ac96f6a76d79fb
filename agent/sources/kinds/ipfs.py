"""An ipfs:// watch target: one fixed root, scanned until a scan examined all of it."""

from __future__ import annotations

from agent.model.target import Target, TargetError
from agent.sources.base import Discovery, RootCursor, SourceEnv, State, root_discovery


class IpfsSource:
    def __init__(self, env: SourceEnv) -> None:
        self._env = env

    def read_cursor(self, state: State) -> RootCursor:
        return RootCursor.from_state(state)

    async def discover(self, target: Target, cursor: RootCursor) -> Discovery[RootCursor]:
        if target.cid is None:
            raise TargetError(f"{target.url}: an ipfs target without a CID")
        return root_discovery(cursor, str(target.cid), target.path_text, lambda at: at)
