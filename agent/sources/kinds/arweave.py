"""An arweave+http(s):// watch target: new transactions matching its tags, fetched and
checked against the gateway's digest, each under its `ar:<txid>` item key."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from typing import Any

import structlog

from agent.model.item_key import arweave_key
from agent.model.report import ItemSource
from agent.model.target import Target
from agent.sources.arweave import ArweaveCursor, new_transactions
from agent.sources.arweave_client import ArweaveClient
from agent.sources.base import Blob, Discovery, Scanned, Settled, SourceEnv, State

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class ArweaveState:
    # Where the tag query stands (state key "cursor", ArweaveCursor's JSON).
    position: ArweaveCursor = field(default_factory=ArweaveCursor)
    # Transactions whose fetch failed, tried again first next poll (state key "retry").
    retry: tuple[str, ...] = ()

    def to_state(self) -> dict[str, Any]:
        return {"cursor": self.position.to_json(), "retry": list(self.retry)}


class ArweaveSource:
    def __init__(self, env: SourceEnv) -> None:
        self._env = env

    def read_cursor(self, state: State) -> ArweaveState:
        return ArweaveState(ArweaveCursor.from_json(state.get("cursor")), tuple(state.get("retry") or ()))

    async def discover(self, target: Target, cursor: ArweaveState) -> Discovery[ArweaveState]:
        settings = self._env.settings
        client = ArweaveClient(target.name, self._env.http, graphql_path=target.endpoint_path or "/graphql")
        position = cursor.position
        if position.height is None and position.cursor is None and target.min_height is not None:
            position = ArweaveCursor(height=target.min_height)
        txs, next_position = await new_transactions(
            client,
            target.tags,
            position,
            max_pages=settings.arweave.max_pages_per_poll,
            page_size=settings.arweave.page_size,
        )
        pending = list(dict.fromkeys([*cursor.retry, *(tx.id for tx in txs)]))
        failed: list[str] = []

        async def blobs() -> AsyncGenerator[Blob, None]:
            for txid in pending:
                key = arweave_key(txid)
                if await self._env.known(key):
                    continue
                try:
                    content = await client.fetch(txid, max_bytes=settings.limits.max_item_bytes)
                except Exception as exc:  # noqa: BLE001 - one failing must not stop the others
                    # It is tried again first next poll (the cursor's retry list).
                    log.warning("arweave.fetch_failed", target=target.url, txid=txid, error=str(exc))
                    failed.append(txid)
                    continue
                gateway = content.gateway
                yield Blob(
                    key, content.data, ItemSource(gateway=gateway, verified=content.digest_checked, gateways=[gateway])
                )

        def settle(_: Scanned) -> Settled[ArweaveState]:
            note = f"{len(txs)} new transactions, {len(failed)} to retry"
            return Settled(ArweaveState(next_position, tuple(failed)), note)

        return Discovery(settle, blobs=blobs())
