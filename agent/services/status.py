"""What `dweb-agent status` shows: targets, list versions, counts, and whether an agent answers."""

from __future__ import annotations

import asyncio
import json
import urllib.request
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from agent.config import Settings
    from agent.model.records import ListVersionRow, TargetRow
    from agent.store import Store


@dataclass(frozen=True, slots=True)
class AgentHealth:
    """The agent's /healthz answer (`running` False when nothing answered at `url`)."""

    url: str
    running: bool
    # The health document as the agent sent it (JSON edge: rendered as received).
    health: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class StatusSnapshot:
    targets: list[TargetRow]
    lists: list[ListVersionRow]
    items: int
    findings: int
    database: str
    agent: AgentHealth


class StatusService:
    def __init__(self, store: Store, settings: Settings) -> None:
        self._store = store
        self._settings = settings

    async def snapshot(self) -> StatusSnapshot:
        store = self._store
        return StatusSnapshot(
            targets=list(await store.targets.all()),
            lists=list(await store.lists.latest_versions()),
            items=await store.items.count(),
            findings=await store.findings.count(),
            database=store.dialect,
            # urllib blocks: off the event loop.
            agent=await asyncio.to_thread(self.agent_health),
        )

    def agent_health(self) -> AgentHealth:
        """Ask the configured health endpoint (2 s at most): is an agent running on this config?"""
        a = self._settings.agent
        url = f"http://{a.health_host}:{a.health_port}/healthz"
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                return AgentHealth(url, True, json.loads(resp.read()))
        except OSError:
            return AgentHealth(url, False)
