"""A kubo:// watch target: every pin of the node, each walked through the node's verified blocks."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from agent.ipfs.cid import parse_cid
from agent.model.target import Target
from agent.sources.base import Discovery, PinScan, Scanned, Settled, SourceEnv, State
from agent.sources.kubo import KuboBlockSource, KuboClient


@dataclass(frozen=True, slots=True)
class KuboCursor:
    # Pins whose scan examined everything (state key "pins_done"), sorted.
    pins_done: tuple[str, ...] = ()

    def to_state(self) -> dict[str, Any]:
        return {"pins_done": list(self.pins_done)}


class KuboSource:
    def __init__(self, env: SourceEnv) -> None:
        self._env = env

    def read_cursor(self, state: State) -> KuboCursor:
        return KuboCursor(tuple(str(p) for p in state.get("pins_done") or ()))

    async def discover(self, target: Target, cursor: KuboCursor) -> Discovery[KuboCursor]:
        rpc = KuboClient(target.name, self._env.http)
        pins = await rpc.pin_ls()
        done = set(cursor.pins_done)
        new = sorted(cid for cid in pins if cid not in done)
        scans = tuple(PinScan(pin, parse_cid(pin), KuboBlockSource(rpc), f"{target.url}/pin/{pin}") for pin in new)

        def settle(scanned: Scanned) -> Settled[KuboCursor]:
            # Unpinned ones are forgotten: re-pinning scans again (cheaply, the store knows the blocks).
            kept = (done | scanned.pins_complete) & set(pins)
            return Settled(KuboCursor(tuple(sorted(kept))), f"{len(pins)} pins, {len(new)} new")

        return Discovery(settle, pins=scans)
