"""Arweave watch targets: resumable tag-query polling and the Source that feeds the scan.

The client (GraphQL queries, digest-checked fetches) is agent.sources.arweave_client;
its types and errors agent.sources.arweave_types."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from agent.sources.arweave_client import ArweaveClient
from agent.sources.arweave_types import (
    MAX_PAGE_SIZE,
    ArweaveQueryError,
    ArweaveTx,
    int_or_none,
)

__all__ = [
    "ArweaveCursor",
    "new_transactions",
]


@dataclass(frozen=True, slots=True)
class ArweaveCursor:
    """Where a tag query's polling stands; save it after each poll and pass it to the next.

    `height` is the block floor the cursor chain was started with (a cursor is only
    meaningful with the filters it was issued under), `cursor` the last edge handed
    out, `last_height` its block, and `seen` the ids already handed out at
    `last_height`: they keep a restart from `last_height` (when a gateway rejects
    the cursor) from returning anything twice."""

    height: int | None = None
    cursor: str | None = None
    last_height: int | None = None
    seen: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"height": self.height, "cursor": self.cursor, "last_height": self.last_height, "seen": list(self.seen)}

    @classmethod
    def from_json(cls, value: Mapping[str, Any] | None) -> ArweaveCursor:
        if not value:
            return cls()
        return cls(
            height=int_or_none(value.get("height")),
            cursor=value.get("cursor") or None,
            last_height=int_or_none(value.get("last_height")),
            seen=tuple(str(s) for s in value.get("seen") or ()),
        )


async def new_transactions(
    client: ArweaveClient,
    tags: Mapping[str, Sequence[str]],
    state: ArweaveCursor,
    *,
    max_pages: int = 10,
    page_size: int = MAX_PAGE_SIZE,
) -> tuple[list[ArweaveTx], ArweaveCursor]:
    """Confirmed transactions matching `tags` that no earlier poll returned, oldest
    first, and the state to save for the next poll.

    At most `max_pages` pages per poll; the rest come next time. A pending
    transaction (no block yet) ends the poll before it, so it is returned once,
    when mined. If the gateway refuses the saved cursor, the chain restarts at
    the last block seen and the `seen` ids drop what was already returned.
    Not covered: an item a gateway indexes late at a height already passed (an
    ar.io bundle unpacked after newer blocks) sorts before the cursor and is missed."""
    floor, cursor, last_height, seen = state.height, state.cursor, state.last_height, set(state.seen)
    out: list[ArweaveTx] = []
    restarted = False
    for _ in range(max(1, max_pages)):
        try:
            page = await client.query(tags, min_block_height=floor, after=cursor, first=page_size)
        except ArweaveQueryError:
            if cursor is None or restarted:
                raise
            # The cursor is unusable here (expired, or from another gateway): restart from
            # the last block we handed out; `seen` filters the ones already returned.
            floor, cursor, restarted = last_height if last_height is not None else floor, None, True
            continue
        stop = False
        for tx in page.txs:
            if tx.block_height is None:
                stop = True  # pending: its place in height order is not final yet
                break
            cursor = tx.cursor
            if tx.block_height != last_height:
                last_height, seen = tx.block_height, set()
            if tx.id in seen:
                continue
            seen.add(tx.id)
            out.append(tx)
        if stop or not page.has_next_page or not page.txs:
            break
    new_state = ArweaveCursor(height=floor, cursor=cursor, last_height=last_height, seen=tuple(sorted(seen)))
    return out, new_state
